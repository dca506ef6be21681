"""`content=mse`: mean squared difference from the paired target: SRResNet's pixel loss (Ledig et al. 2017,
eq. 4), which maximises PSNR and, alone, gives the smooth outputs that SRGAN's adversarial term sharpens."""

from torch import Tensor

from ganlab.content.base import ContentTerm


class MSEContent(ContentTerm):
    def distance(self, output: Tensor, reference: Tensor) -> Tensor:
        return (output.float() - reference.float()).square().mean()
