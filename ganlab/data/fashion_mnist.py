"""`data=fashion_mnist`: torchvision's Fashion-MNIST training split, held on the device as uint8 and resized to image_size."""

from ganlab.data.torchvision_sets import TorchvisionImages


class FashionMNISTData(TorchvisionImages):
    dataset_name = "fashion_mnist"

    @staticmethod
    def dataset_class() -> type:
        from torchvision.datasets import FashionMNIST

        return FashionMNIST
