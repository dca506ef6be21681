"""ganlab/atomic_write.py: every file ganlab keeps is written whole or not at all, and a full disk is named."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
import torch

from ganlab.atomic_write import atomic_write, size_text
from tests.conftest import fill_disk


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


def test_a_write_lands_whole_and_replaces_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.json"  # the folder is made
    atomic_write(target, lambda f: f.write(b'{"a": 1}'))
    atomic_write(target, lambda f: f.write(b'{"a": 2}'))
    assert json.loads(target.read_text()) == {"a": 2}
    assert leftovers(target.parent) == []


@pytest.mark.parametrize("error", [ValueError("a bug in the writer"), KeyboardInterrupt()])
def test_any_failure_keeps_the_old_file_removes_the_temp_file_and_raises_as_it_came(
    tmp_path: Path, error: BaseException
) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def half_then_fail(f: object) -> None:
        f.write(b"new, but only half")  # type: ignore[attr-defined]
        raise error

    with pytest.raises(type(error)) as raised:
        atomic_write(target, half_then_fail)
    assert raised.value is error  # not turned into a disk error: the disk has room
    assert target.read_bytes() == b"old" and leftovers(tmp_path) == []


def test_a_full_disk_is_an_enospc_that_names_the_folder_and_the_space(small_disk: Path) -> None:
    """torch.save on a real full filesystem fails as a RuntimeError of its zip writer ('unexpected pos'):
    atomic_write turns it into an OSError(ENOSPC) from the free space, and leaves the old file whole."""
    folder = small_disk / "checkpoints"
    target = folder / "last.pt"
    atomic_write(target, lambda f: torch.save({"step": 4}, f))
    fill_disk(small_disk, leave=64 * 1024)
    big = {"step": 6, "weights": torch.zeros(250_000)}  # 1 MB of float32
    with pytest.raises(OSError) as raised:
        atomic_write(target, lambda f: torch.save(big, f))
    err = raised.value
    assert isinstance(err.__cause__, RuntimeError | OSError)  # torch 2.14 on tmpfs: RuntimeError, no errno
    assert err.errno == errno.ENOSPC and err.filename == str(target)
    assert err.strerror.startswith(f"No space left in {folder}: the file needs about 1.0 MB, ")
    assert err.strerror.endswith(" kB free")
    assert torch.load(target, weights_only=True) == {"step": 4}
    assert leftovers(folder) == []


def test_sizes_read_as_people_write_them() -> None:
    assert [size_text(n) for n in (0, 999, 1234, 5_600_000, 3 * 10**9)] == [
        "0 bytes",
        "999 bytes",
        "1.2 kB",
        "5.6 MB",
        "3.0 GB",
    ]
