"""Checkpoints: atomic save, safe load (`weights_only=True`), and the compatibility check on resume.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts — never pickled objects — so that
`torch.load(weights_only=True)` reads it. RNG states are converted to tensors and tuples for the same reason.
"""

from __future__ import annotations

import logging
import os
import pickle
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganlab.atomic_write import atomic_write
from ganlab.config import RELOCATABLE_DATA_KEYS
from ganlab.errors import ConfigError, first_line

FORMAT = "ganlab-checkpoint-v1"
LAST = "last.pt"
BEST = "best.pt"  # the checkpoint with the best value of trainer.monitor so far
CHECKPOINT_DIR = "checkpoints"


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    atomic_torch_save({"format": FORMAT, **state}, path)


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save through `atomic_write`: a kill never leaves a truncated file, and a full disk is an
    OSError(ENOSPC) that names the folder (torch's own error for it is a RuntimeError about zip positions)."""
    atomic_write(path, lambda f: torch.save(obj, f))


def resolve_checkpoint(resume: str | os.PathLike, option: str = "resume") -> Path:
    """A run directory means its `checkpoints/last.pt`; a file is taken as it is. `option` names the
    command-line key in messages."""
    path = Path(resume).expanduser()
    if path.is_dir():
        candidate = path / CHECKPOINT_DIR / LAST
        if not candidate.is_file():
            kept = sorted((path / CHECKPOINT_DIR).glob("step_*.pt"))
            if kept:  # trainer.keep_every/keep_last's checkpoints: name the newest rather than doubt the folder
                raise ConfigError(
                    f"{option}={resume}: the run has no {CHECKPOINT_DIR}/{LAST}, but keeps {len(kept)} step "
                    f"checkpoint(s); give one, e.g. {option}={kept[-1]} (the newest)."
                )
            raise ConfigError(
                f"{option}={resume}: the directory has no {CHECKPOINT_DIR}/{LAST}; is it a ganlab run directory?"
            )
        return candidate.resolve()
    if not path.is_file():
        raise ConfigError(f"{option}={resume}: no such run directory or checkpoint file.")
    return path.resolve()


def load_checkpoint(
    path: Path, map_location: str | torch.device = "cpu", mmap: bool = False, option: str = "resume"
) -> dict[str, Any]:
    try:
        try:
            with warnings.catch_warnings():  # torch's note on a legacy pickle's protocol: the message below says more
                warnings.filterwarnings("ignore", message="Detected pickle protocol")
                state = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
        except RuntimeError:
            if not mmap:
                raise
            # mmap needs torch's zip format; read a file in any other format plainly to say what it holds.
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # not a torch file, truncated, or holds objects weights_only refuses
        hint = " resume=auto falls back to the newest good checkpoint of a run." if option == "resume" else ""
        kind = _file_kind(path)
        if kind == "other":  # text, an image, ...: torch's error (a KeyError, an opcode number) says nothing useful
            reason = "it is neither a torch zip archive nor a pickle; is it the file you meant?"
        elif isinstance(err, pickle.UnpicklingError):  # torch's own text talks of weights_only=False: never that
            reason = (
                "UnpicklingError: it holds Python objects other than tensors and plain data, which ganlab refuses "
                "to unpickle because they could run code"
            )
        elif kind == "zip" and "central directory" in str(err):
            reason = "the file is truncated: its zip archive has no end, as after a copy or a write that did not finish"
        else:
            reason = f"{type(err).__name__}: {first_line(err)}; it may be truncated or corrupted"
        raise ConfigError(f"{option}={path}: not a readable ganlab checkpoint ({reason}).{hint}") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ConfigError(f"{option}={path}: this file is not a ganlab checkpoint (format {FORMAT} expected).")
    check_contents(state, path, option, NEEDED)
    return state


# What every reader of a checkpoint takes from it (sample, eval, export, init=, resume=), as dotted keys; a
# resume takes RESUMED besides. Each is a dict but the leaves (`model.z_dim` may be null: the model's own).
NEEDED = ("step", "G", "config.model.generator._target_", "config.model.z_dim", "config.data")
RESUMED = ("D", "opt_G", "opt_D", "fixed_noise", "rng")


def check_contents(state: dict[str, Any], path: Path, option: str, keys: tuple[str, ...]) -> None:
    """Refuse a checkpoint that lacks what is read from it (edited, or written by another program), naming
    what is missing, rather than failing on it with a KeyError or TypeError later."""
    missing = [key for key in keys if not _holds(state, key.split("."))]
    if missing:
        raise ConfigError(
            f"{option}={path}: the checkpoint has no {', '.join(missing)}; it was edited, or not written by ganlab "
            "train."
        )


def _holds(node: Any, parts: list[str]) -> bool:
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return node is not None or parts[-1] == "z_dim"


ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since 1.6
PICKLE_PROTOCOL = b"\x80"  # the first byte of a pickle of protocol 2 or later (torch.save's legacy format)


def _file_kind(path: Path) -> str:
    """The kind of file, from its first bytes: "zip", "pickle" or "other"."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return "other"
    if head.startswith(ZIP_MAGIC):
        return "zip"
    return "pickle" if head.startswith(PICKLE_PROTOCOL) else "other"


AUTO = "auto"  # resume=auto: the newest good checkpoint of this run directory, or a fresh start


def newest_good_checkpoint(ckpt_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint in `ckpt_dir` that loads (last.pt, else the newest step_XXXXXXX.pt, ...), with its
    state; None if there is none. Unreadable files (truncated by a crash, corrupted) are skipped with a
    warning naming them."""
    candidates = [p for p in [ckpt_dir / LAST, *ckpt_dir.glob("step_*.pt")] if p.is_file()]
    candidates.sort(key=lambda p: (p.stat().st_mtime_ns, p.name == LAST), reverse=True)
    for path in candidates:
        try:
            return path, load_checkpoint(path)
        except ConfigError as err:
            logging.getLogger("ganlab").warning("resume=auto: skipping %s: %s", path, err)
    return None


def run_dir_of(checkpoint: Path) -> Path | None:
    """The run directory that holds `checkpoints/<file>`, or None for a checkpoint kept elsewhere."""
    return checkpoint.parent.parent if checkpoint.parent.name == CHECKPOINT_DIR else None


def _flatten(node: Any, prefix: str) -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}.{key}"))
        return out
    return {prefix: node}


# Keys of model and data added after checkpoints were written without them: such a checkpoint had the default.
KEYS_ADDED_LATER = {
    "data.crop": "center",
    "data.classes": None,
    "data.limit": None,
    "data.xflip": False,
    "model.discriminator.freeze": 0,
}


# model=unet's in_channels (G's, and D's condition) were null before they defaulted to the data's input side:
# null meant the channels of G's output, which is what such a checkpoint was built with.
NULL_MEANT_OUTPUT_CHANNELS = {"model.generator.in_channels", "model.discriminator.in_channels"}


def _output_channels(data: dict[str, Any]) -> Any:
    """The channels of data=paired_folder's target side (B, or A with direction=BtoA); None for other data."""
    side = "channels_a" if data.get("direction") == "BtoA" else "channels_b"
    return data.get(side)


def incompatible_keys(saved: dict[str, Any], requested: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ (missing counts as different): all of `model` and `data` (the weights
    and the data they were fitted to) and the optimizer classes (their saved state). Hyperparameters such as
    learning rates may change on resume."""
    diffs = []
    for group in ("model", "data", "optimizer"):
        a, b = _flatten(saved.get(group, {}), group), _flatten(requested.get(group, {}), group)
        for key in sorted(set(a) | set(b)):
            if group == "data" and key.split(".")[1] in RELOCATABLE_DATA_KEYS:
                continue
            if group == "optimizer" and not key.endswith("._target_"):
                continue
            if key.startswith("model.loss_defaults."):  # the loss's hyperparameters a model suggests (progan)
                continue
            default = KEYS_ADDED_LATER.get(key, "<missing>")  # a checkpoint from before a key existed had its default
            if key in NULL_MEANT_OUTPUT_CHANNELS and a.get(key, default) is None:
                a[key] = _output_channels(saved.get("data", {}))
            if a.get(key, default) != b.get(key, default):
                diffs.append(f"{key} (checkpoint: {a.get(key, default)}, requested: {b.get(key, default)})")
    return diffs


def check_compatible(saved: dict[str, Any], requested: dict[str, Any], path: Path) -> None:
    check_same_origin(saved, requested, path)
    diffs = incompatible_keys(saved, requested)
    if diffs:
        note = ""
        if any(d.startswith("model.discriminator.norm ") for d in diffs):  # set by ${loss.d_norm} by default
            from ganlab.targets import option_name

            was = option_name(saved.get("loss", {}).get("_target_", "?"))
            note = (
                f" D's norm follows the loss (loss.d_norm) unless set: the checkpoint's D was built for loss={was}, "
                "and a loss that needs another D cannot continue it."
            )
        raise ConfigError(
            f"resume={path}: the checkpoint was trained with a different model, data or optimizer, so its state "
            f"does not fit the requested config. Differing keys: {'; '.join(diffs)}.{note}"
        )


def check_same_origin(saved: dict[str, Any], requested: dict[str, Any], path: Path) -> None:
    """`seed` and `init` say how a run began; a resumed run continues its checkpoint's random state and weights,
    so another value would be recorded in its config without having acted (and under torchrun the seed would
    reseed the ranks' data streams mid-run)."""
    seed, saved_seed = requested.get("seed"), saved.get("seed", requested.get("seed"))
    if seed != saved_seed:
        raise ConfigError(
            f"seed={seed}: resume={path} continues a run that began with seed={saved_seed}, from its saved random "
            f"state; leave seed out, or start a new run with seed={seed}."
        )
    init, saved_init = requested.get("init"), saved.get("init")
    if init is not None and init != saved_init:
        began = f"init={saved_init}" if saved_init else "scratch"
        raise ConfigError(
            f"init={init}: resume={path} continues a run that began from {began}, with its own weights; init= "
            "starts a new run (leave out resume=)."
        )


def capture_rng() -> dict[str, Any]:
    np_state = np.random.get_state()
    # The GPU whose generator the run draws from (build() made it current): a resume on another index (a
    # run trained on cuda:1 resumed with trainer.device=cuda:0) continues that generator's state, not its slot's.
    trained_on = torch.cuda.current_device() if torch.cuda.is_initialized() else None
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        **({"cuda_device": trained_on} if trained_on is not None else {}),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": random.getstate(),
    }


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        cuda_states = [s.cpu() for s in state["cuda"]]
        index = torch.cuda.current_device()  # the GPU this run trains on
        trained_on = state.get("cuda_device")  # None in checkpoints from before it was saved: the same index
        source = index if trained_on is None else int(trained_on)
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
            if source != index and source < len(cuda_states):
                torch.cuda.set_rng_state(cuda_states[source], index)
        else:  # another machine: the device this run trains on takes the state of the one it trained on
            then = "starts from the seed's state, so its random draws do not continue exactly"
            if source < len(cuda_states):
                torch.cuda.set_rng_state(cuda_states[source], index)
                exact = "the GPU it trained on" if trained_on is not None else "exact if the run trained there"
                then = f"continues from the checkpoint's cuda:{source} ({exact})"
            logging.getLogger("ganlab").warning(
                "the checkpoint holds the CUDA random states of %d GPU(s) and this machine has %d: cuda:%d %s",
                len(cuda_states),
                torch.cuda.device_count(),
                index,
                then,
            )
    npy = state["numpy"]
    np.random.set_state(
        ("MT19937", npy["keys"].cpu().numpy().astype(np.uint32), npy["pos"], npy["has_gauss"], npy["cached_gaussian"])
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
