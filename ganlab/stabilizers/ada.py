"""`augment.ada=true`: adaptive discriminator augmentation (Karras et al. 2020), the controller of p.

Everything D sees, real and generated, passes through the augmentation pipeline (ada_pipeline.py), each of its
transformations applied with probability p. p follows the overfitting heuristic r_t = E[sign(D(real))]: D's
share of confidently real scores on the real images it trains on. Every `ada_interval` D steps (4, as in the
paper) p moves by sign(r_t - target) times the real images seen since, over `ada_kimg` thousand: fast enough
to go from 0 to 1 in ada_kimg x 1000 images (500k). r_t above the target (0.6) means D is overfitting: p rises.

p and the running sums of sign(D(real)) live on the device: D's steps add to them without reading anything
back (a captured CUDA graph keeps adding), and the adjustment is a few device operations between steps. Both are
in the checkpoint, so a resumed run continues with exactly the p it had. `augment.ada_target=null` keeps p at
`augment.ada_p` (a fixed probability, as the paper's comparisons).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from ganlab.errors import ConfigError, check_number
from ganlab.stabilizers.ada_pipeline import AugmentPipeline


class AdaController:
    """The pipeline and its adaptive p. `observe` (inside D's step) records r_t's terms; `after_d_updates` (the
    host, between steps) adjusts p every `interval` D updates."""

    def __init__(
        self,
        groups: Sequence[str],
        p: float,
        target: float | None,
        kimg: float,
        interval: int,
        images_per_d_update: int,
        device: torch.device,
    ) -> None:
        if target is not None and not 0 < target < 1:
            raise ConfigError(f"augment.ada_target is r_t's target in (0, 1) (the paper's 0.6), got {target}.")
        meaning = " (the thousands of images for p to go from 0 to 1)"
        kimg = check_number("augment.ada_kimg", kimg, 0, low_open=True, meaning=meaning)
        if interval < 1:
            raise ConfigError(f"augment.ada_interval is D updates between adjustments of p, >= 1; got {interval}.")
        self.pipeline = AugmentPipeline(groups, p, device)
        self.target = target
        # How far one adjustment moves p: the real images of `interval` D updates, over kimg thousand.
        self.step_size = images_per_d_update * interval / (kimg * 1000.0)
        self.interval = interval
        self.sign_sum = torch.zeros((), device=device)  # sum over D updates of the batch's mean sign(D(real))
        self.count = torch.zeros((), device=device)
        self.r_t = torch.zeros((), device=device)  # the last adjustment's r_t, for the log

    @property
    def p(self) -> Tensor:
        return self.pipeline.p

    def observe(self, real_sign: Tensor) -> None:
        """One D update's mean sign(D(real)); in place, on the device."""
        self.sign_sum.add_(real_sign.float())
        self.count.add_(1.0)

    def after_d_updates(self, d_updates: int) -> None:
        """Called with the number of D updates so far: adjusts p when it is a multiple of the interval."""
        if self.target is None or d_updates % self.interval:
            return
        sums = torch.stack([self.sign_sum, self.count])
        if dist.is_available() and dist.is_initialized():  # r_t over every rank's real images
            dist.all_reduce(sums)
        r_t = sums[0] / sums[1].clamp_min(1.0)
        self.r_t.copy_(r_t)
        self.p.copy_((self.p + torch.sign(r_t - self.target) * self.step_size).clamp(0.0, 1.0))
        self.sign_sum.zero_()
        self.count.zero_()

    def scalars(self) -> dict[str, float]:
        """For the log (read at log steps only): p, and r_t as of the last adjustment."""
        p, r_t = torch.stack([self.p, self.r_t]).tolist()
        return {"augment/p": p, "augment/r_t": r_t}

    def state_dict(self) -> dict[str, Tensor]:
        return {"p": self.p.cpu(), "sign_sum": self.sign_sum.cpu(), "count": self.count.cpu(), "r_t": self.r_t.cpu()}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """A checkpoint's p and sums; one from a run without ADA (turned on at resume) starts at augment.ada_p."""
        if not state:
            return
        for name in ("p", "sign_sum", "count", "r_t"):
            getattr(self, name).copy_(state[name])


def make_ada(augment: Any, shape: Sequence[int], batch_size: int, device: torch.device) -> AdaController | None:
    """`augment.ada=true`: the controller for images of `shape`, else None."""
    if not augment.ada:
        return None
    if len(shape) != 3:
        raise ConfigError(f"augment.ada augments images (C, H, W); this data has samples of shape {tuple(shape)}.")
    return AdaController(
        augment.ada_groups,
        float(augment.ada_p),
        None if augment.ada_target is None else float(augment.ada_target),
        float(augment.ada_kimg),
        int(augment.ada_interval),
        int(batch_size),
        device,
    )
