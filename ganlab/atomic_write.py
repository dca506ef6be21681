"""Writing a file whole or not at all, and saying plainly when the disk is full.

Every file ganlab writes for later (checkpoints, status.json, sample pictures, metrics.json, reports, caches)
goes through `atomic_write`: a reader, a resume or a kill never sees half a file, and a write that fails for
want of space becomes an `OSError(ENOSPC)` whose text names the folder and the space needed. Writers below
ganlab report a full disk in their own ways (torch's zip writer as `RuntimeError: ... unexpected pos ...`), so
the space is judged from the filesystem after the failure, not from the error's text.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def remove_stale_temps(folder: Path, name: str = "*") -> None:
    """Delete the temp files of writes to `folder/<name>` that a kill interrupted (this module names them)."""
    for stale in Path(folder).glob(f".{name}.tmp-*"):
        stale.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> None:
    """`write(f)` into a temp file beside `path` (same folder: the rename cannot cross filesystems), fsync it,
    rename it over `path`, fsync the folder (the rename itself is durable).

    On any failure the temp file is removed and an old file at `path` stays as it was. A failure for want of
    space is raised as `full_disk_error` describes; any other error is raised as it came."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:  # KeyboardInterrupt too: never leave the temp file behind
        written = _file_size(tmp)
        tmp.unlink(missing_ok=True)  # first: the space it held counts as free below
        if isinstance(err, Exception):
            full = full_disk_error(err, path, needed=lambda: _measure(write), written=written)
            if full is not None:
                raise full from err
        raise
    _fsync_folder(path.parent)


def full_disk_error(
    err: BaseException,
    path: Path,
    needed: Callable[[], int | None] | None = None,
    written: int | None = None,
) -> OSError | None:
    """An `OSError(ENOSPC or EDQUOT, text, path)` if writing `path` failed for want of space, else None.

    It did if `err` (or an error it arose from) has errno ENOSPC or EDQUOT, or if the folder now has less free
    space than the file needs (`needed()`: its full size, or None if unknown). The text names the folder,
    the size of the file and the free space, e.g. "No space left in /x/checkpoints: the file needs about
    1.2 MB, 304.0 kB free"."""
    folder = path.parent
    code = _space_errno(err)
    try:
        usage = os.statvfs(folder)
        free: int | None = shutil.disk_usage(folder).free
    except OSError:  # the folder is gone: nothing more to say about its space
        usage, free = None, None
    if code is None and free is None:
        return None
    size = needed() if needed is not None else None  # may write the file again (into a counter): only now
    if code is None:
        if size is None or free is None or free >= size:
            return None  # not a matter of space: the caller re-raises the original error
        code = errno.ENOSPC
    if code == errno.EDQUOT:
        text = f"Disk quota exceeded in {folder}"
    elif usage is not None and usage.f_files and usage.f_favail == 0:
        text = f"No space left in {folder}: the filesystem has no free inodes (too many files)"
    else:
        text = f"No space left in {folder}"
    if size is not None:
        text += f": the file needs about {size_text(size)}"
    elif written:
        text += f": {size_text(written)} were written before it ran out"
    if free is not None and code == errno.ENOSPC:
        text += f"{',' if size is not None or written else ':'} {size_text(free)} free"
    return OSError(code, text, str(path))


def size_text(n: int) -> str:
    """Bytes for people: `512 bytes`, `4.1 kB`, `1.2 MB`, `3.0 GB`."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _space_errno(err: BaseException) -> int | None:
    """ENOSPC or EDQUOT from `err` or the errors it was raised from or while handling (torch's RuntimeError
    comes with the OSError of the failed write as its context)."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in SPACE_ERRNOS:
            return current.errno
        current = current.__cause__ or current.__context__
    return None


class _Counter(io.RawIOBase):
    """A sink that only counts what is written to it: the size a file would have."""

    def __init__(self) -> None:
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        n = memoryview(data).nbytes
        self.count += n
        return n

    def tell(self) -> int:
        return self.count


def _measure(write: Callable[[BinaryIO], object]) -> int | None:
    """The size of the file `write` makes, by writing it again into a counter: exact, and it costs memory for
    no copy. None if that fails too (the writer needs to seek, or its error was not about space)."""
    sink = _Counter()
    try:
        write(sink)  # type: ignore[arg-type]
    except Exception:
        return None
    return sink.count


def _file_size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
