"""trainer.grow: the schedule of progressive growing (ProGAN, Karras et al. 2018, sec. 3), in images shown.

Phase 0 trains at 4x4 for `stable_images`. Each later phase first fades its new block in over `fade_images`
(alpha rising linearly from 0), then trains it for `stable_images`; the last phase trains on at alpha = 1 until
the run ends. The paper shows 800k images per fade and per stable period.

The phase and alpha follow from the step alone (images shown = steps done x the global batch), so a resumed run
picks up exactly where it stopped, in the middle of a fade or not; they are also saved with the networks (their
buffers, ganlab/models/progan.py). The schedule sets them on G, D and G's EMA before each step, on the host:
a change of phase changes which layers run, and ganlab/step.py captures one CUDA graph per (phase, fading).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from ganlab.errors import ConfigError

log = logging.getLogger("ganlab")


@dataclass(frozen=True)
class GrowthState:
    phase: int
    fading: bool
    alpha: float


class GrowthSchedule:
    def __init__(self, networks: list[nn.Module], fade_images: int, stable_images: int, batch_size: int) -> None:
        if not isinstance(fade_images, int) or fade_images < 0:
            raise ConfigError(f"trainer.grow.fade_images must be an integer >= 0, got {fade_images!r}.")
        if not isinstance(stable_images, int) or stable_images < 1:
            raise ConfigError(f"trainer.grow.stable_images must be an integer >= 1, got {stable_images!r}.")
        self.networks = networks
        self.num_phases = networks[0].num_phases
        self.resolutions = networks[0].resolutions
        self.fade_images, self.stable_images, self.batch_size = fade_images, stable_images, batch_size
        self.state: GrowthState | None = None

    @property
    def images_to_full_resolution(self) -> int:
        """Images shown before the last phase's fade ends (alpha 1 at the data's resolution): the 4x4 phase's
        stable period, then a fade and a stable period per phase, less the last one's stable period."""
        return (self.num_phases - 1) * (self.fade_images + self.stable_images)

    def at(self, step: int) -> GrowthState:
        """The state during G step `step` (1-based): what the images shown before it reach."""
        shown = (step - 1) * self.batch_size
        last = self.num_phases - 1
        if shown < self.stable_images:
            return GrowthState(0, False, 1.0)
        period = self.fade_images + self.stable_images
        phase, into = 1 + (shown - self.stable_images) // period, (shown - self.stable_images) % period
        if phase > last:
            return GrowthState(last, False, 1.0)
        if into < self.fade_images:
            return GrowthState(phase, True, into / self.fade_images)
        return GrowthState(phase, False, 1.0)

    def apply(self, step: int) -> None:
        """Before G step `step`: the networks at that step's phase and alpha (set only when they move)."""
        state = self.at(step)
        if state != self.state:
            for net in self.networks:
                net.set_growth(state.phase, state.fading, state.alpha)
            self.state = state

    def fade_reals(self, real: Tensor) -> Tensor:
        """The real batch as D sees it during a fade: blended towards the previous resolution (the paper's
        appendix A; ganlab/models/progan.py's fade_reals, on the device)."""
        return self.networks[1].fade_reals(real)

    def forget(self) -> None:
        """After the networks were loaded from a checkpoint (resume, rollback): their growth is the checkpoint's,
        so the next `apply` sets the step's on all of them, even if it equals the last state applied."""
        self.state = None

    @property
    def key(self) -> tuple[int, bool]:
        """What selects a captured CUDA graph: the layers that run (alpha is read from the device)."""
        assert self.state is not None
        return self.state.phase, self.state.fading

    def scalars(self) -> dict[str, float]:
        """For TensorBoard: the resolution G and D work at, and alpha (1 outside a fade)."""
        if self.state is None:
            return {}
        return {"grow/resolution": float(self.resolutions[self.state.phase]), "grow/alpha": self.state.alpha}

    def record(self) -> dict[str, Any]:
        """For the checkpoint, beside the networks' own buffers: readable without building them."""
        if self.state is None:
            return {}
        state = self.state
        resolution = self.resolutions[state.phase]
        return {"phase": state.phase, "resolution": resolution, "fading": state.fading, "alpha": state.alpha}

    def check_continues(self, saved: dict[str, Any] | None, step: int) -> None:
        """A resumed run must be where its checkpoint left it: the schedule (trainer.grow.*, and the batch size
        that counts the images) must put the checkpoint's step at the phase and alpha it was saved at. Else the
        run would jump, even back to 4x4 and leave its grown layers unused."""
        if not saved or step < 1:
            return
        now = self.at(step)
        if (now.phase, now.fading) == (saved["phase"], saved["fading"]) and abs(now.alpha - saved["alpha"]) < 1e-9:
            return
        raise ConfigError(
            f"trainer.grow.fade_images={self.fade_images}, trainer.grow.stable_images={self.stable_images} and "
            f"trainer.batch_size={self.batch_size} put step {step} at {self.describe(now)}, but the checkpoint was "
            f"saved at {self.describe(GrowthState(saved['phase'], saved['fading'], saved['alpha']))}: a growing run "
            "continues where it stopped. Resume with the trainer.grow.* and trainer.batch_size it trained with."
        )

    def describe(self, state: GrowthState) -> str:
        side = self.resolutions[state.phase]
        return f"{side}x{side}" + (f" fading in (alpha {state.alpha:.3g})" if state.fading else "")


def grows(net: nn.Module) -> bool:
    """Whether a network grows progressively (ganlab/models/progan.py's Growing)."""
    return callable(getattr(net, "set_growth", None))


def growth_schedule(
    G: nn.Module, others: list[nn.Module], grow: Any, batch_size: int, steps: int | None = None
) -> GrowthSchedule | None:
    """The schedule for a growing G (with D and the EMA in `others`), or None for a model that does not grow.
    With `steps`, a run too short to reach the data's resolution is told so (it would end on blurry samples)."""
    if not grows(G):
        return None
    networks = [G, *(net for net in others if net is not None)]
    for net in networks:
        if not grows(net) or net.resolutions != G.resolutions:
            raise ConfigError(
                f"a progressively grown generator needs a discriminator that grows with it; {type(net).__name__} "
                "does not (use model=progan for both)."
            )
    schedule = GrowthSchedule(networks, grow.fade_images, grow.stable_images, batch_size)
    full = schedule.images_to_full_resolution
    if steps is not None and steps * batch_size < full:
        end = schedule.resolutions[schedule.at(steps).phase]
        log.warning(
            "trainer.steps=%d x batch %d = %d images: the growth schedule reaches %dx%d only after %d "
            "(trainer.grow.stable_images + fade_images per phase); the run will end at %dx%d. Lower "
            "trainer.grow.* or raise trainer.steps.",
            steps, batch_size, steps * batch_size, G.resolutions[-1], G.resolutions[-1], full,
            end, end,
        )  # fmt: skip
    return schedule
