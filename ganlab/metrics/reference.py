"""The real side of the image metrics: features of a fixed subset of the training set, computed once per
dataset (and its exact pixels), split, resolution, extractor and sample count, then cached on disk."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from ganlab.cache import cache_dir, digest
from ganlab.checkpoint import atomic_torch_save
from ganlab.config import RELOCATABLE_DATA_KEYS
from ganlab.data.base import metrics_images
from ganlab.metrics.extractors import Extractor, data_name
from ganlab.protocols import ImageSource

log = logging.getLogger("ganlab")
FORMAT = "ganlab-reference-v1"
SPLIT = "train"  # every ganlab data source trains on the training split; the metrics compare with it
# where the pixels live and how they arrive, not which (those are in the key as the data's fingerprint)
RELOCATABLE = RELOCATABLE_DATA_KEYS | {"_target_"}
TRAINING_ONLY = {"limit", "xflip"}  # which images train (ganlab/data/selection.py); the real side is the same


@dataclass
class Reference:
    features: Tensor  # (n, D) on the CPU
    logits: Tensor  # (n, K)
    class_share: Tensor | None  # the real class distribution over the whole split (K,), when labelled


def reference_features(data: ImageSource, data_cfg: Any, extractor: Extractor, n: int, batch_size: int) -> Reference:
    data = metrics_images(data)  # data.limit trains on a subset; the metrics compare with the whole
    n_real = min(n, len(data))
    options = OmegaConf.to_container(data_cfg, resolve=True) if isinstance(data_cfg, DictConfig) else data_cfg
    key = {
        "data": data_name(data_cfg),
        "options": {k: v for k, v in options.items() if k not in RELOCATABLE | TRAINING_ONLY},
        "pixels": data.fingerprint(),
        "split": SPLIT,
        "shape": list(data.shape),
        "extractor": extractor.version,
        "n": n_real,
    }
    path = (
        cache_dir()
        / "reference"
        / (
            f"{data_name(data_cfg).split('.')[-1]}-{SPLIT}-{data.shape[-1]}px-{extractor.name}-n{n_real}-{digest(key)}.pt"
        )
    )
    if path.is_file():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            if saved.get("format") == FORMAT and saved.get("key") == key:
                return Reference(saved["features"], saved["logits"], saved["class_share"])
        except Exception as err:  # a truncated or foreign file: recompute and overwrite it
            log.warning("ignoring the unreadable cache file %s (%s)", path, type(err).__name__)
    features, logits = [], []
    for batch in data.reference_batches(n_real, batch_size):
        f, lg = extractor(batch)
        features.append(f.cpu())
        logits.append(lg.cpu())
    labels = getattr(data, "labels", None)  # optional (ImageSource): the real class histogram
    class_share = None
    if labels is not None and extractor.dataset_classes:
        counts = torch.bincount(labels.cpu(), minlength=logits[0].shape[1]).double()
        class_share = counts / counts.sum()
    ref = Reference(torch.cat(features), torch.cat(logits), class_share)
    atomic_torch_save(
        {"format": FORMAT, "key": key, "features": ref.features, "logits": ref.logits, "class_share": class_share},
        path,
    )
    return ref
