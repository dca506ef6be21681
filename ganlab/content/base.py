"""The content-term protocol: a weighted distance between G's output and what its update was given.

An image-conditioned GAN trains G on two things: D's verdict (the adversarial loss, `loss=`) and a content term
(`content=`) that ties the output to its input: its paired target (pix2pix's L1, SRResNet's MSE, SRGAN's
perceptual loss) or the input itself (SimGAN's self-regularisation). The step adds `weight * distance` to G's
adversarial loss and logs the unweighted distance as `loss/content`.
"""

from __future__ import annotations

from torch import Tensor

from ganlab.condition import Batch
from ganlab.errors import ConfigError, check_number

Stats = dict[str, Tensor]


class ContentTerm:
    """Base class: subclasses say what they compare with (`compares`) and implement `distance`."""

    #: "target": the real sample paired with the condition (batch.real); "input": the condition itself.
    compares = "target"

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = check_number("content.weight", weight, 0)

    @property
    def option(self) -> str:
        return f"content={type(self).__module__.rsplit('.', 1)[-1]}"

    def check(self, data: object, out_shape: tuple[int, ...]) -> None:
        """Refuse data that cannot give this term what it compares with, before the first step."""
        if not callable(getattr(data, "sample_pair", None)):
            raise ConfigError(
                f"{self.option} compares G's output with its {self.compares}, which needs image-conditioned data "
                "(data=super_resolution, paired_folder or unpaired), not "
                f"{type(data).__name__}; use content=none."
            )
        if self.compares == "input":
            condition = data.sample_pair(1)[1]
            if tuple(condition.shape[1:]) != tuple(out_shape):
                raise ConfigError(
                    f"{self.option} compares G's output {tuple(out_shape)} with its input "
                    f"{tuple(condition.shape[1:])}: they must have the same shape (a refiner, model=refiner)."
                )

    def reference(self, batch: Batch) -> Tensor:
        return batch.real if self.compares == "target" else batch.condition

    def distance(self, output: Tensor, reference: Tensor) -> Tensor:
        raise NotImplementedError

    def __call__(self, output: Tensor, batch: Batch) -> tuple[Tensor, Stats]:
        """(weight * distance, {"loss/content": distance}) for G's output and its update's batch."""
        value = self.distance(output, self.reference(batch))
        return self.weight * value, {"loss/content": value.detach()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(weight={self.weight})"
