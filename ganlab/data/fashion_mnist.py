"""`data=fashion_mnist`: torchvision's Fashion-MNIST training split (uint8 on the device, resized)."""

from ganlab.data.torchvision_sets import TorchvisionImages


class FashionMNISTData(TorchvisionImages):
    dataset_name = "fashion_mnist"
    idx_folder = "FashionMNIST"  # torchvision's layout: <data.root>/FashionMNIST/raw

    @staticmethod
    def dataset_class() -> type:
        from torchvision.datasets import FashionMNIST

        return FashionMNIST
