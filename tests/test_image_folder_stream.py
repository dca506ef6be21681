"""The streaming image folder: worker processes started in the constructor and given work at the first draw,
an endless shuffled stream, its first-batch and shutdown times recorded and logged, an idempotent close() that
leaves no worker alive, and data.cache=auto choosing between the cache and the stream."""

from __future__ import annotations

import logging
import multiprocessing
import os
from pathlib import Path

import pytest
import torch

from ganlab.checkpoint import load_checkpoint
from ganlab.data import image_folder
from ganlab.data.base import InMemoryImages, close_source
from ganlab.data.image_folder import ImageFolderData
from ganlab.errors import ConfigError
from ganlab.train import train
from tests.conftest import compose_cfg, exits_2
from tests.test_data_cache import write_folder

N = 12


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_folder(tmp_path / "imgs", n=N)  # 12 distinct random PNGs, two class sub-folders
    return tmp_path / "imgs"


def stream(folder: Path, workers: int = 2, **kwargs: object) -> ImageFolderData:
    return ImageFolderData(str(folder), image_size=8, num_workers=workers, cache=False, **kwargs)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def parent_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))


def test_first_batch_and_shutdown_times_are_recorded_and_logged(folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="ganlab"):
        data = stream(folder)
        assert data.start_s is not None and data.first_batch_s is None and data.shutdown_s is None
        assert len(data.worker_pids) == 2  # started by the constructor, before any draw
        images, labels = data.sample_labeled(5)
        assert images.shape == (5, 3, 8, 8) and labels.shape == (5,)
        data.sample(5)
        timings = data.timings()
        assert timings["batches"] == 2 and timings["first_batch_s"] >= timings["first_wait_s"] > 0
        assert timings["wait_s"] >= timings["first_wait_s"]
        data.close()
    assert data.shutdown_s is not None and data.timings()["shutdown_s"] == data.shutdown_s
    messages = [r.getMessage() for r in caplog.records if r.name == "ganlab"]
    assert sum("first batch" in m and "2 workers" in m for m in messages) == 1
    assert sum(m.startswith("image_folder: stopped 2 workers in") and "for 2 batches" in m for m in messages) == 1


def test_close_is_idempotent_and_leaves_no_worker_alive(folder: Path) -> None:
    data = stream(folder)
    data.sample(4)
    pids = data.worker_pids
    assert len(pids) == 2 and set(pids) <= {p.pid for p in multiprocessing.active_children()}
    data.close()
    first = data.shutdown_s
    data.close()  # nothing left to stop: no second shutdown
    assert data.shutdown_s == first and data.worker_pids == ()
    assert not set(pids) & {p.pid for p in multiprocessing.active_children()}
    assert all(gone(pid) for pid in pids)  # exited and reaped, not zombies
    assert data.sample(3).shape == (3, 3, 8, 8)  # a draw after close() starts a new stream...
    again = data.worker_pids
    assert len(again) == 2 and not set(again) & set(pids)
    close_source(data)  # ...which closes as well
    assert all(gone(pid) for pid in again)


def test_the_stream_is_endless_shuffled_passes_in_a_seeded_order(folder: Path) -> None:
    known = [image for image, _ in stream(folder, workers=0).dataset]

    def indices(data: ImageFolderData, batches: int) -> list[int]:
        drawn = [image for _ in range(batches) for image in data.sample(5)]
        return [next(i for i, k in enumerate(known) if torch.equal(k, image)) for image in drawn]

    torch.manual_seed(3)
    parallel = stream(folder, workers=2)
    order = indices(parallel, 12)  # 60 images: 5 passes, batches running on from one pass into the next
    parallel.close()
    for p in range(5):
        assert sorted(order[p * N : (p + 1) * N]) == list(range(N))
    assert order[:N] != order[N : 2 * N]  # each pass is shuffled anew
    torch.manual_seed(3)
    serial = stream(folder, workers=0)  # the same seed gives the same order, whatever the workers
    assert indices(serial, 12) == order


@pytest.mark.slow  # a forkserver and its workers start from scratch: 8 s
def test_workers_started_by_a_forkserver_decode_and_stream_the_same_images(folder: Path) -> None:
    """Python 3.14 makes forkserver the default start method on Linux (spawn is macOS's), and data.start_method
    chooses it anywhere: the workers then get the file list by pickling and import torch afresh, where fork
    shares it. Both the cache's decoding and the stream must still work there, and give the images and the
    seeded order that fork does."""
    torch.manual_seed(3)
    forked = stream(folder, start_method="fork")
    expected = [forked.sample(5) for _ in range(3)]
    forked.close()
    cached = ImageFolderData(str(folder), image_size=8, num_workers=2, cache=True).memory.images
    served_cache = ImageFolderData(str(folder), image_size=8, num_workers=2, cache=True, start_method="forkserver")
    assert torch.equal(served_cache.memory.images, cached)
    torch.manual_seed(3)
    served = stream(folder, start_method="forkserver")
    assert all(torch.equal(served.sample(5), batch) for batch in expected)
    pids = served.worker_pids
    assert len(pids) == 2 and all(parent_of(pid) != os.getpid() for pid in pids)  # the fork server's children
    served.close()
    assert all(gone(pid) for pid in pids)


def test_an_unknown_start_method_exits_2_before_any_worker_starts(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {p.pid for p in multiprocessing.active_children()}
    argv = ["train", "debug=fast", "data=image_folder", f"data.root={folder}", "data.image_size=8", "data.cache=false"]
    err = exits_2([*argv, "data.start_method=thread", f"hydra.run.dir={tmp_path / 'run'}"], capsys)
    assert "data.start_method" in err and "'thread'" in err
    assert all(method in err for method in multiprocessing.get_all_start_methods())
    assert {p.pid for p in multiprocessing.active_children()} <= before


def test_fork_chosen_by_name_starts_children_of_this_process(folder: Path) -> None:
    data = stream(folder, start_method="fork")
    assert data.sample(4).shape == (4, 3, 8, 8)
    pids = data.worker_pids
    assert len(pids) == 2 and all(parent_of(pid) == os.getpid() for pid in pids)
    data.close()


def test_the_constructor_leaves_the_global_rng_alone(folder: Path) -> None:
    torch.manual_seed(0)
    before = torch.get_rng_state()
    data = stream(folder)  # forks its workers, draws nothing: G's initial weights do not depend on the data
    assert torch.equal(torch.get_rng_state(), before)
    data.close()


def test_a_new_batch_size_reuses_the_workers(folder: Path) -> None:
    data = stream(folder)
    pids = data.worker_pids
    assert data.sample(4).shape == (4, 3, 8, 8)
    assert data.sample(20).shape == (20, 3, 8, 8)  # more than the folder holds
    assert data.sample(4).shape == (4, 3, 8, 8)
    assert data.worker_pids == pids
    data.close()


def test_cache_auto_caches_a_small_folder_else_streams(
    folder: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="ganlab"):
        cached = ImageFolderData(str(folder), image_size=8, num_workers=0, cache="auto")
        assert cached.memory is not None and cached.device_resident and cached.worker_pids == ()
        monkeypatch.setattr(image_folder, "AUTO_CACHE_FRACTION", 1e-12)
        streamed = ImageFolderData(str(folder), image_size=8, num_workers=2, cache="auto")
        assert streamed.memory is None and not streamed.device_resident and len(streamed.worker_pids) == 2
        streamed.close()
        monkeypatch.setattr(image_folder, "AUTO_CACHE_FRACTION", 0.25)
        monkeypatch.setattr(image_folder, "available_memory", lambda: None)  # unknown: stream
        assert ImageFolderData(str(folder), image_size=8, num_workers=0, cache="auto").memory is None
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("data.cache=auto: caching 12 images") for m in messages)
    assert any(m.startswith("data.cache=auto: streaming 12 images") and "host memory" in m for m in messages)
    assert any("available memory is unknown" in m for m in messages)
    with pytest.raises(ConfigError, match="data.cache must be true, false or auto, got 'yes'"):
        ImageFolderData(str(folder), image_size=8, num_workers=0, cache="yes")


def test_in_memory_sources_close_as_a_no_op() -> None:
    data = InMemoryImages(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), None, None, "cpu")
    data.close()
    data.close()
    close_source(object())  # a source without close(): nothing to do
    assert data.sample(2).shape == (2, 1, 4, 4)


def test_cache_auto_resumes_as_before(folder: Path, tmp_path: Path) -> None:
    """auto (the default) caches this folder, so a resumed run is the uninterrupted one, bitwise on the CPU;
    and a checkpoint written with data.cache=false resumes under auto, and with another data.start_method (how
    the data arrives, not what it is)."""
    common = ("model=dcgan", "data=image_folder", f"data.root={folder}", "data.image_size=16",
              "data.num_workers=0", "trainer.batch_size=4", "trainer.checkpoint_every=2")  # fmt: skip
    train(compose_cfg(*common, "trainer.steps=4"), tmp_path / "straight")
    train(compose_cfg(*common, "trainer.steps=2"), tmp_path / "resumed")
    train(compose_cfg(*common, "trainer.steps=4", f"resume={tmp_path / 'resumed'}"), tmp_path / "resumed")
    straight = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    resumed = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")
    assert straight["config"]["data"]["cache"] == "auto" and resumed["step"] == 4
    for key, value in straight["G"].items():
        assert torch.equal(value, resumed["G"][key]), key
    train(compose_cfg(*common, "data.cache=false", "trainer.steps=2"), tmp_path / "streamed")
    resume = ("trainer.steps=3", "data.start_method=fork", f"resume={tmp_path / 'streamed'}")
    train(compose_cfg(*common, *resume), tmp_path / "streamed")
    assert load_checkpoint(tmp_path / "streamed" / "checkpoints" / "last.pt")["step"] == 3
