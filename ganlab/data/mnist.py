"""`data=mnist`: torchvision's MNIST training split (uint8 on the device, resized)."""

from ganlab.data.torchvision_sets import TorchvisionImages


class MNISTData(TorchvisionImages):
    dataset_name = "mnist"
    idx_folder = "MNIST"  # torchvision's layout: <data.root>/MNIST/raw

    @staticmethod
    def dataset_class() -> type:
        from torchvision.datasets import MNIST

        return MNIST
