"""`features=inception`: the standard FID InceptionV3 (the TensorFlow 2015-12-05 graph, as ported by
torch-fidelity), whose 2048-d pool features give FID/KID/precision-recall and whose 1008 logits give the
Inception Score. Fetched once into torch's hub cache where the network allows.

torch-fidelity unpickles weight files with `weights_only=False`; ganlab never does, so it reads the file
itself with `weights_only=True` and hands the resulting tensors to torch-fidelity's constructor.
"""

from __future__ import annotations

import contextlib
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganlab.errors import ConfigError

FEATURES, LOGITS = "2048", "logits_unbiased"


def weights_url() -> str:
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    return URL_INCEPTION_V3


def weights_path() -> Path:
    """Where torch.hub keeps it: `$TORCH_HOME/hub/checkpoints/` (default `~/.cache/torch/...`)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights_url()).name


def fetch_weights() -> Path:
    """The cached weights file, downloaded first if missing; offline, a message saying where to put it."""
    path = weights_path()
    if path.is_file():
        return path
    url = weights_url()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # The name carries the first digits of the file's sha256, which torch checks after the download.
        torch.hub.download_url_to_file(url, str(path), hash_prefix=path.stem.rsplit("-", 1)[-1], progress=False)
    except (urllib.error.URLError, OSError, RuntimeError) as err:
        raise ConfigError(
            f"features=inception needs the FID Inception weights, which are not at {path}, and downloading them "
            f"failed ({err}). On a machine with network, download {url} and copy the file to {path} "
            "(or set TORCH_HOME to a folder whose hub/checkpoints/ holds it)."
        ) from err
    return path


@contextlib.contextmanager
def _state_dict_given(state_dict: dict[str, Tensor]) -> Iterator[None]:
    """Make torch-fidelity's constructor take `state_dict` instead of fetching and unpickling a file."""
    import torch_fidelity.feature_extractor_inceptionv3 as module

    original = module.load_state_dict_from_url
    module.load_state_dict_from_url = lambda *args, **kwargs: state_dict
    try:
        yield
    finally:
        module.load_state_dict_from_url = original


class InceptionFeatures(nn.Module):
    """Images in [-1, 1] (N, 1 or 3, H, W) -> (2048-d pool features, 1008 logits)."""

    def __init__(self, path: Path | None = None) -> None:
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        path = path or fetch_weights()
        try:
            state_dict: Any = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise ConfigError(
                f"features=inception: {path} is not a readable weights file ({type(err).__name__}: {err}). "
                "Delete it and let ganlab fetch it again, or copy a good one there."
            ) from err
        with _state_dict_given(state_dict):
            try:
                self.net = FeatureExtractorInceptionV3("inception-v3-compat", [FEATURES, LOGITS])
            except RuntimeError as err:  # load_state_dict: missing or mis-shaped tensors
                raise ConfigError(f"features=inception: {path} does not hold the FID Inception weights.") from err

    @torch.no_grad()
    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        # The network expects 8-bit RGB, as the images were stored when the reference statistics were made.
        pixels = images.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)
        if pixels.shape[1] == 1:
            pixels = pixels.expand(-1, 3, -1, -1)
        features, logits = self.net(pixels)
        return features, logits
