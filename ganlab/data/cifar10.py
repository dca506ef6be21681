"""`data=cifar10`: torchvision's CIFAR-10 training split, held on the device as uint8 and resized to image_size."""

from ganlab.data.torchvision_sets import TorchvisionImages


class CIFAR10Data(TorchvisionImages):
    dataset_name = "cifar10"

    @staticmethod
    def dataset_class() -> type:
        from torchvision.datasets import CIFAR10

        return CIFAR10
