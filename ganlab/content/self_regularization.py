"""`content=self_regularization`: SimGAN's self-regularisation (Shrivastava et al. 2017, eq. 4): the L1 distance
between the refined image and the synthetic one it came from, so that refinement changes the look but keeps
the annotation (here, which digit it is). The paper sums over pixels; the mean here keeps lambda independent of
the image size."""

from torch import Tensor

from ganlab.content.base import ContentTerm


class SelfRegularizationContent(ContentTerm):
    compares = "input"

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__(weight)

    def distance(self, output: Tensor, reference: Tensor) -> Tensor:
        return (output.float() - reference.float()).abs().mean()
