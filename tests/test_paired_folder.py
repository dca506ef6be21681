"""data=paired_folder (pix2pix's paired images) and its translation evaluator (L1 and FID on held-out pairs)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor, nn

from ganlab.condition import Paired
from ganlab.data.base import split_indices
from ganlab.data.paired_folder import PairedFolderData
from ganlab.errors import ConfigError
from ganlab.evaluation import LOWER_IS_BETTER, make_evaluator
from ganlab.evaluators.translation import TaskEvaluator
from ganlab.metrics.extractors import default_features
from tests.conftest import compose_cfg


def invert(a: np.ndarray) -> np.ndarray:
    return 255 - a


def write_pairs(
    root: Path,
    n: int = 12,
    size: tuple[int, int] = (16, 16),  # (width, height)
    channels: int = 1,
    f: Callable[[np.ndarray], np.ndarray] = invert,
    seed: int = 0,
) -> list[np.ndarray]:
    """n pairs root/A/<name>.png, root/B/<name>.png with B = f(A), names p00, p01, ...; every third pair in a
    sub-folder, and B's of every fourth saved as BMP (a pair is matched by name whatever its suffix). Returns the
    A images in name order."""
    rng = np.random.default_rng(seed)
    images = []
    for i in range(n):
        shape = (size[1], size[0]) if channels == 1 else (size[1], size[0], channels)
        a = rng.integers(0, 256, size=shape, dtype=np.uint8)
        name = f"sub/p{i:02d}" if i % 3 == 0 else f"p{i:02d}"
        for folder, image, suffix in (("A", a, ".png"), ("B", f(a), ".bmp" if i % 4 == 0 else ".png")):
            path = root / folder / f"{name}{suffix}"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.ascontiguousarray(image)).save(path)
        images.append(a)
    order = sorted(range(n), key=lambda i: f"sub/p{i:02d}" if i % 3 == 0 else f"p{i:02d}")
    return [images[i] for i in order]


def grey(root: Path, **kwargs: object) -> PairedFolderData:
    return PairedFolderData(str(root), image_size=16, channels_a=1, channels_b=1, **kwargs)


def test_pairs_are_matched_by_name_and_cropped_alike(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    originals = write_pairs(tmp_path, size=(24, 16))  # wider than high: the centre crop cuts 4 columns a side
    Image.fromarray(np.zeros((16, 24), np.uint8)).save(tmp_path / "A" / "lonely.png")
    with caplog.at_level(logging.WARNING, logger="ganlab"):
        data = grey(tmp_path, heldout=0.25)
    assert "skipped 1 images" in caplog.text and "lonely.png" in caplog.text
    assert data.task == "translation" and data.num_classes is None and data.labels is None
    assert isinstance(data.conditioning(), Paired) and data.device_resident
    assert data.shape == data.condition_shape == (1, 16, 16)
    assert len(data) == 9 and data.evaluation_size == 3

    # every pair, training and held out: B is exactly the inverse of A after the shared crop
    assert torch.equal(data.train_targets, 255 - data.train_conditions)
    assert torch.equal(data.heldout_targets, 255 - data.heldout_conditions)
    decoded = torch.cat([data.train_conditions, data.heldout_conditions])[:, 0].numpy()
    crops = {a[:, 4:20].tobytes() for a in originals}
    assert {d.tobytes() for d in decoded} == crops  # the centre 16x16 of each A, nothing else

    torch.manual_seed(0)
    target, condition = data.sample_pair(64)
    assert target.shape == condition.shape == (64, 1, 16, 16) and target.dtype == torch.float32
    assert target.min() >= -1 and target.max() <= 1
    assert torch.allclose(target, -condition, atol=1e-6)  # to [-1, 1]: the inverse is the negative


def test_a_shared_resize_keeps_colour_pairs_aligned(tmp_path: Path) -> None:
    write_pairs(tmp_path, n=4, size=(48, 32), channels=3, f=lambda a: a[..., ::-1])  # B: A with RGB -> BGR
    data = PairedFolderData(str(tmp_path), image_size=16, heldout=0.25)
    assert data.shape == (3, 16, 16)
    assert torch.equal(data.train_targets, data.train_conditions.flip(1))
    target, condition = data.sample_pair(8)
    assert torch.equal(target, condition.flip(1))


def test_the_held_out_split_is_fixed_and_never_trains(tmp_path: Path) -> None:
    write_pairs(tmp_path, n=20)
    first, second = grey(tmp_path, heldout=0.2), grey(tmp_path, heldout=0.2)
    assert len(first) == 16 and first.evaluation_size == 4
    assert torch.equal(first.heldout_conditions, second.heldout_conditions)
    assert first.fingerprint() == second.fingerprint()
    train = {x.numpy().tobytes() for x in first.train_conditions}
    held = {x.numpy().tobytes() for x in first.heldout_conditions}
    assert len(train) == 16 and len(held) == 4 and not train & held

    torch.manual_seed(1)
    state = torch.get_rng_state()
    (target, condition), *_ = first.evaluation_batches(10, 3)
    pictures = first.picture_pairs(10)
    refs = list(first.reference_batches(100, 7))
    assert torch.equal(torch.get_rng_state(), state)  # none of them moves the training RNG
    assert torch.equal(condition, pictures[1][:3]) and len(pictures[0]) == 4
    assert sum(len(r) for r in refs) == 16
    drawn = {x.numpy().tobytes() for x in torch.round((first.sample_pair(256)[1] + 1) * 127.5).to(torch.uint8)}
    assert drawn <= train

    other = grey(tmp_path, heldout=0.2, direction="BtoA")
    assert other.fingerprint() != first.fingerprint()


@pytest.mark.parametrize("layout", ["split/side", "side/split"])
@pytest.mark.parametrize("held_name", ["val", "test"])
def test_shipped_split_folders_are_used_as_they_are(tmp_path: Path, layout: str, held_name: str) -> None:
    for split, n, seed in (("train", 5, 0), (held_name, 3, 1)):
        folder = tmp_path / "tmp" / split
        write_pairs(folder, n=n, seed=seed)
        for side in ("A", "B"):
            dest = tmp_path / (f"{split}/{side}" if layout == "split/side" else f"{side}/{split}")
            dest.parent.mkdir(parents=True, exist_ok=True)
            (folder / side).rename(dest)
    data = grey(tmp_path, heldout=0.5)  # ignored: the folders decide
    assert len(data) == 5 and data.evaluation_size == 3
    assert torch.equal(data.heldout_targets, 255 - data.heldout_conditions)
    val_first = np.array(
        Image.open(tmp_path / (f"{held_name}/A" if layout == "split/side" else f"A/{held_name}") / "p01.png")
    )
    assert torch.equal(data.heldout_conditions[0, 0], torch.from_numpy(val_first))  # p01 sorts before sub/p00


def test_direction_b_to_a_swaps_target_and_condition(tmp_path: Path) -> None:
    write_pairs(tmp_path, n=6, f=lambda a: np.repeat(invert(a)[..., None], 3, axis=2))  # A grey, B colour
    forward = PairedFolderData(str(tmp_path), image_size=16, channels_a=1, channels_b=3, heldout=0.34)
    backward = PairedFolderData(
        str(tmp_path), image_size=16, channels_a=1, channels_b=3, direction="BtoA", heldout=0.34
    )
    assert forward.shape == backward.condition_shape == (3, 16, 16)
    assert forward.condition_shape == backward.shape == (1, 16, 16)
    assert torch.equal(forward.train_targets, backward.train_conditions)
    assert torch.equal(forward.heldout_conditions, backward.heldout_targets)
    target, condition = backward.sample_pair(5)
    assert target.shape == (5, 1, 16, 16) and torch.allclose(condition, -target.expand(-1, 3, -1, -1), atol=1e-6)


def test_mistakes_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a directory"):
        grey(tmp_path / "nowhere")
    write_pairs(tmp_path / "one", n=3)
    with pytest.raises(ConfigError, match=r"has no folder C/ \(data.b=C\)"):
        grey(tmp_path / "one", b="C")
    with pytest.raises(ConfigError, match="data.direction must be AtoB or BtoA"):
        grey(tmp_path / "one", direction="AB")
    with pytest.raises(ConfigError, match=r"data.heldout .* in \(0, 1\)"):
        grey(tmp_path / "one", heldout=0.0)

    for side, names in (("A", ["x1", "x2", "x3", "x4"]), ("B", ["y1", "y2"])):
        (tmp_path / "none" / side).mkdir(parents=True)
        for name in names:
            Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "none" / side / f"{name}.png")
    found = r"no image of .*A \(4 images, e.g. x1.png, x2.png, x3.png, ...\).*B \(2 images, e.g. y1.png, y2.png\)"
    with pytest.raises(ConfigError, match=found):
        grey(tmp_path / "none")

    (tmp_path / "empty" / "A").mkdir(parents=True)
    (tmp_path / "empty" / "B").mkdir()
    with pytest.raises(ConfigError, match="holds no images"):
        grey(tmp_path / "empty")

    write_pairs(tmp_path / "twice", n=3)
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "twice" / "A" / "p01.bmp")
    with pytest.raises(ConfigError, match="same name without their suffix"):
        grey(tmp_path / "twice")

    write_pairs(tmp_path / "aspect", n=3)
    Image.fromarray(np.zeros((16, 32), np.uint8)).save(tmp_path / "aspect" / "B" / "p01.png")
    with pytest.raises(ConfigError, match="different aspect ratios"):
        grey(tmp_path / "aspect")


def test_the_config_option_builds_the_source(tmp_path: Path) -> None:
    from ganlab.targets import instantiate_node

    write_pairs(tmp_path, n=4)
    cfg = compose_cfg("data=paired_folder", f"data.root={tmp_path}", "data.image_size=16", "data.channels_a=1",
                      "data.channels_b=1", "data.heldout=0.5")  # fmt: skip
    data = instantiate_node(cfg.data, device="cpu")
    assert isinstance(data, PairedFolderData) and len(data) == 2
    assert default_features(data.source_config, points=False) == "inception"  # translation's default features


@pytest.mark.parametrize(("direction", "g_in"), [("AtoB", 3), ("BtoA", 1)])
def test_unet_takes_the_input_sides_channels_by_default(tmp_path: Path, direction: str, g_in: int) -> None:
    """RGB A and greyscale B: G reads the input side's channels (it took the output's before, and refused)."""
    from ganlab.build import build
    from ganlab.train import train

    write_pairs(tmp_path / "pairs", n=8)
    cfg = compose_cfg("model=unet", "data=paired_folder", f"data.root={tmp_path / 'pairs'}", "data.image_size=16",
                      "data.channels_a=3", "data.channels_b=1", f"data.direction={direction}", "data.heldout=0.25",
                      "trainer.steps=2")  # fmt: skip
    parts = build(cfg)
    assert parts.G.in_channels == g_in and parts.D.in_channels == g_in
    train(cfg, tmp_path / "run")


def test_a_unet_checkpoint_from_before_the_default_resumes(tmp_path: Path) -> None:
    """Its config says in_channels null (then: the output's channels), which the default now spells out."""
    from ganlab.train import train

    write_pairs(tmp_path / "pairs", n=8)
    common = ("model=unet", "data=paired_folder", f"data.root={tmp_path / 'pairs'}", "data.image_size=16",
              "data.channels_a=1", "data.channels_b=1", "data.heldout=0.25", "trainer.checkpoint_every=2")  # fmt: skip
    old = ("model.generator.in_channels=null", "model.discriminator.in_channels=null")
    train(compose_cfg(*common, *old, "trainer.steps=2"), tmp_path / "run")
    train(compose_cfg(*common, "trainer.steps=4", f"resume={tmp_path / 'run'}"), tmp_path / "run")
    from ganlab.checkpoint import load_checkpoint

    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 4


class Translator(nn.Module):
    """A stand-in G: `fn` of the input image, plus uniform noise of `noise` amplitude drawn even in eval mode
    (as pix2pix's dropout is)."""

    def __init__(self, fn: Callable[[Tensor], Tensor], noise: float = 0.0) -> None:
        super().__init__()
        self.fn, self.noise = fn, noise

    def forward(self, z: Tensor, condition: Tensor) -> Tensor:
        return self.fn(condition) + self.noise * torch.rand_like(condition)


def test_the_translation_evaluator_scores_held_out_pairs(tmp_path: Path) -> None:
    write_pairs(tmp_path, n=16)
    data = grey(tmp_path, heldout=0.25)
    evaluator = make_evaluator(data, None, features="digits", batch_size=3)  # 4 held-out pairs in 2 batches
    assert isinstance(evaluator, TaskEvaluator) and evaluator.n == 4
    assert evaluator.primary == "l1" and evaluator.names() == ["l1", "fid_digits"] and "l1" in LOWER_IS_BETTER

    exact = evaluator(Translator(torch.neg), z_dim=1)
    assert exact.metrics["l1"] < 1e-6 and abs(exact.metrics["fid_digits"]) < 1e-3
    assert exact.n_samples == exact.n_real == 4 and exact.features == "digits"

    # G outputs zeros: L1 is the mean |B| of the held-out targets, read from the files here
    held = split_indices(16, 0.25)[1].tolist()
    names = sorted(f"sub/p{i:02d}" if i % 3 == 0 else f"p{i:02d}" for i in range(16))
    targets = [next((tmp_path / "B").glob(f"{names[i]}.*")) for i in held]
    expected = np.mean([np.abs(np.asarray(Image.open(p), np.float64) / 127.5 - 1).mean() for p in targets])
    zeros = evaluator(Translator(torch.zeros_like), z_dim=1)
    assert zeros.metrics["l1"] == pytest.approx(expected, rel=1e-5)
    assert zeros.metrics["fid_digits"] > 1

    # a random G: the same numbers for a seed, others for another, and the training RNG does not move
    noisy = Translator(torch.neg, noise=0.5)
    torch.manual_seed(3)
    state = torch.get_rng_state()
    first, again, other = evaluator(noisy, 1, seed=0), evaluator(noisy, 1, seed=0), evaluator(noisy, 1, seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    assert first.metrics == again.metrics and first.metrics["l1"] != other.metrics["l1"]
    assert TaskEvaluator(data, "digits", n=2).n == 2


def test_the_evaluator_needs_two_pairs(tmp_path: Path) -> None:
    write_pairs(tmp_path, n=4)
    with pytest.raises(ConfigError, match=r"trainer.eval_n must be >= 2 .*got 1"):
        TaskEvaluator(grey(tmp_path, heldout=0.5), "digits", n=1, option_prefix="trainer.eval_")
    with pytest.raises(ConfigError, match="holds 1 held-out pairs; raise data.heldout"):
        TaskEvaluator(grey(tmp_path, heldout=0.1), "digits")
