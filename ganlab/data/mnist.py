"""`data=mnist`: torchvision's MNIST training split, held on the device as uint8 and resized to image_size."""

from ganlab.data.torchvision_sets import TorchvisionImages


class MNISTData(TorchvisionImages):
    dataset_name = "mnist"

    @staticmethod
    def dataset_class() -> type:
        from torchvision.datasets import MNIST

        return MNIST
