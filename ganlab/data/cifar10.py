"""`data=cifar10`: torchvision's CIFAR-10 training split (uint8 on the device, resized)."""

from ganlab.data.torchvision_sets import TorchvisionImages


class CIFAR10Data(TorchvisionImages):
    dataset_name = "cifar10"

    @staticmethod
    def dataset_class() -> type:
        from torchvision.datasets import CIFAR10

        return CIFAR10
