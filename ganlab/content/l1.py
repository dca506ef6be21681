"""`content=l1`: mean absolute difference from the paired target, pix2pix's term (Isola et al. 2017, eq. 3-4)
with its lambda = 100. L1 rather than L2 "encourages less blurring"."""

from torch import Tensor

from ganlab.content.base import ContentTerm


class L1Content(ContentTerm):
    def __init__(self, weight: float = 100.0) -> None:
        super().__init__(weight)

    def distance(self, output: Tensor, reference: Tensor) -> Tensor:
        return (output.float() - reference.float()).abs().mean()
