"""Reference baselines for scripts/bench.py: plain eager PyTorch GAN training loops written the way the popular
reference scripts write them, plus the small on-disk data sets they read.

The two loops reproduce, on purpose and including their inefficiencies, the training loops of

* eriklindernoren/PyTorch-GAN, implementations/gan/gan.py (the MLP GAN on MNIST):
  https://github.com/eriklindernoren/PyTorch-GAN/blob/master/implementations/gan/gan.py
* pytorch/examples, dcgan/main.py (DCGAN on an image folder such as CelebA):
  https://github.com/pytorch/examples/blob/main/dcgan/main.py

That is: a torchvision data set decoded and transformed per sample by a DataLoader (no pinned memory, workers
restarted every epoch), sigmoid + BCELoss, a fresh CPU->device copy every step, and `.item()` on the losses every
step (the scripts print them; we keep the device sync and skip the console I/O). The architecture, batch size,
optimizer and data match the ganlab workloads they are compared against, so the comparison measures how the loop
is run, not what it computes. Periodic image saving and checkpointing, which the scripts also do, are left out:
they would only slow the baselines down further.

The data is not the real MNIST/CelebA (no download): sklearn's 8x8 digits upscaled to MNIST's idx files, and to
small RGB PNGs in an ImageFolder. PNGs at the target size are cheaper to decode and resize than CelebA's 178x218
JPEGs, so if anything the data pipeline here flatters the DCGAN baseline.

Fairness note: every epoch of a DataLoader with workers starts new worker processes, as in the reference scripts.
Pick the data set size so that the timed steps do not cross many more epoch boundaries than real training would
(e.g. real MNIST is 938 batches of 64 per epoch).

Import it by path (scripts/ is not a package), e.g. `sys.path.insert(0, "scripts"); import bench_baseline`.
Run it directly for a smoke test: `python scripts/bench_baseline.py [--steps 20] [--warmup 5] [--device cpu]`.
"""

from __future__ import annotations

import argparse
import struct
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.datasets as dset
import torchvision.transforms as transforms
from PIL import Image
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader

# One RGB tint per digit class, so the ImageFolder images are coloured and not just grey repeated three times.
_TINTS = np.array(
    [
        [1.00, 0.30, 0.30],
        [0.30, 1.00, 0.30],
        [0.30, 0.30, 1.00],
        [1.00, 1.00, 0.30],
        [1.00, 0.30, 1.00],
        [0.30, 1.00, 1.00],
        [1.00, 0.65, 0.20],
        [0.60, 0.30, 1.00],
        [0.90, 0.90, 0.90],
        [0.50, 0.80, 0.50],
    ],
    dtype=np.float32,
)


# ----------------------------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------------------------


def _digits(n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's 1797 8x8 digits (values 0..16), upscaled bilinearly to size x size uint8 (0..255) and cycled to n."""
    digits = load_digits()
    small = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)  # (1797, 1, 8, 8) in [0, 1]
    big = F.interpolate(small, size=(size, size), mode="bilinear", align_corners=False).squeeze(1)
    images = (big.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    index = np.arange(n) % len(images)
    return images[index], digits.target[index].astype(np.uint8)


def _write_idx(path: Path, images: np.ndarray, labels: np.ndarray, labels_path: Path) -> None:
    # idx format: big-endian int32 magic (0x0803 = uint8, 3 dims; 0x0801 = uint8, 1 dim), then the dims, then data.
    count, rows, cols = images.shape
    path.write_bytes(struct.pack(">IIII", 2051, count, rows, cols) + np.ascontiguousarray(images).tobytes())
    labels_path.write_bytes(struct.pack(">II", 2049, count) + np.ascontiguousarray(labels).tobytes())


def make_mnist_files(root: Path, n: int = 10000) -> Path:
    """Write n MNIST-format training images (and a small test split) under root/MNIST/raw and return root, so that
    `torchvision.datasets.MNIST(root, train=True, download=False)` loads them.

    torchvision's MNIST._check_exists only asks for all four uncompressed raw files to exist (no checksum when the
    files are not downloaded), so the t10k pair is written too, with min(n, 1000) images.
    """
    root = Path(root)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    images, labels = _digits(n, 28)
    _write_idx(raw / "train-images-idx3-ubyte", images, labels, raw / "train-labels-idx1-ubyte")
    test = min(n, 1000)
    _write_idx(raw / "t10k-images-idx3-ubyte", images[:test], labels[:test], raw / "t10k-labels-idx1-ubyte")
    return root


def make_image_folder(root: Path, n: int = 2000, size: int = 64) -> Path:
    """Write n RGB size x size PNGs (upscaled digits, tinted by class) to root/images/ and return root, so that
    `torchvision.datasets.ImageFolder(root)` loads them as one class (as DCGAN's --dataset folder expects)."""
    root = Path(root)
    folder = root / "images"
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = _digits(n, size)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        rgb = (image[..., None].astype(np.float32) * _TINTS[label]).round().astype(np.uint8)
        Image.fromarray(rgb).save(folder / f"{i:06d}.png")
    return root


# ----------------------------------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------------------------------


def _clock(cuda: bool) -> float:
    if cuda:
        torch.cuda.synchronize()  # queued kernels belong to the steps before this reading
    return time.perf_counter()


def _timed_loop(
    loader: Iterable[Any], step: Callable[[Any], int], steps: int, warmup: int, cuda: bool, batch_size: int
) -> dict[str, float | None]:
    """Run `step` over epochs of `loader` (as the scripts' `for epoch: for batch in dataloader:` do) until
    warmup + steps steps are done; time the last `steps`, data loading included. `step` returns the number of real
    images it put through D, which is batch_size except for an epoch's last, partial batch (drop_last=False in both
    scripts), so images/s counts what was actually processed."""
    if steps < 1:
        raise ValueError("steps must be at least 1")
    done, images, start = 0, 0, 0.0

    def begin() -> float:
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        return _clock(cuda)

    if warmup <= 0:
        start = begin()
    while True:
        for batch in loader:
            n = step(batch)
            done += 1
            if done > warmup:
                images += n
            if done == warmup:
                start = begin()
            elif done == warmup + steps:
                elapsed = _clock(cuda) - start
                peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
                if images != batch_size * steps:  # partial batches were timed; say so rather than hide it
                    print(f"note: {images} images in {steps} steps of batch {batch_size} (partial epoch-end batches)")
                return {"images_per_s": images / elapsed, "step_ms": 1000 * elapsed / steps, "peak_mem_mb": peak}


# ----------------------------------------------------------------------------------------------------------------
# PyTorch-GAN implementations/gan/gan.py
# ----------------------------------------------------------------------------------------------------------------


class MLPGenerator(nn.Module):
    """gan.py's Generator, latent 100 -> 1x28x28."""

    def __init__(self, latent_dim: int = 100, img_shape: tuple[int, int, int] = (1, 28, 28)) -> None:
        super().__init__()
        self.img_shape = img_shape

        def block(in_feat: int, out_feat: int, normalize: bool = True) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Linear(in_feat, out_feat)]
            if normalize:
                # gan.py writes nn.BatchNorm1d(out_feat, 0.8): the 0.8 lands in eps, not momentum, by accident.
                # We use the standard eps; the compute is identical, only the numerics of the normalisation differ.
                layers.append(nn.BatchNorm1d(out_feat))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            return layers

        self.model = nn.Sequential(
            *block(latent_dim, 128, normalize=False),
            *block(128, 256),
            *block(256, 512),
            *block(512, 1024),
            nn.Linear(1024, int(np.prod(img_shape))),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(z).view(z.size(0), *self.img_shape)


class MLPDiscriminator(nn.Module):
    """gan.py's Discriminator: 784-512-256-1 with a final Sigmoid (for BCELoss)."""

    def __init__(self, img_shape: tuple[int, int, int] = (1, 28, 28)) -> None:
        super().__init__()
        self.model = nn.Sequential(
            nn.Linear(int(np.prod(img_shape)), 512),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 256),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(256, 1),
            nn.Sigmoid(),
        )

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.model(img.view(img.size(0), -1))


def baseline_mlp(
    root: Path, steps: int, warmup: int, batch_size: int = 64, device: str = "cpu", num_workers: int = 0
) -> dict[str, float | None]:
    """Time gan.py's training loop on the MNIST files under root (see make_mnist_files).

    Returns images_per_s (real images through D per second), step_ms (mean wall time of one G+D step, data
    loading included) and peak_mem_mb (CUDA peak allocated over the timed steps; None on the CPU)."""
    torch.manual_seed(0)
    np.random.seed(0)  # gan.py draws z with NumPy
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    latent_dim = 100

    transform = transforms.Compose([transforms.Resize(28), transforms.ToTensor(), transforms.Normalize([0.5], [0.5])])
    dataset = dset.MNIST(str(root), train=True, download=False, transform=transform)
    # gan.py: DataLoader(..., batch_size=opt.batch_size, shuffle=True), i.e. num_workers=0 unless told otherwise.
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers)

    generator = MLPGenerator(latent_dim).to(dev)
    discriminator = MLPDiscriminator().to(dev)
    adversarial_loss = nn.BCELoss()
    optimizer_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optimizer_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step(batch: tuple[torch.Tensor, torch.Tensor]) -> int:
        imgs, _ = batch
        n = imgs.size(0)
        # Targets allocated every step, as Tensor(n, 1).fill_(...) does in gan.py.
        valid = torch.ones(n, 1, device=dev)
        fake = torch.zeros(n, 1, device=dev)
        real_imgs = imgs.to(dev, torch.float32)  # imgs.type(Tensor): a blocking, unpinned copy

        # Generator. D's parameter gradients are computed here too and discarded by optimizer_d.zero_grad(),
        # exactly as in gan.py.
        optimizer_g.zero_grad()
        z = torch.tensor(np.random.normal(0, 1, (n, latent_dim)), dtype=torch.float32, device=dev)  # host RNG + copy
        gen_imgs = generator(z)
        g_loss = adversarial_loss(discriminator(gen_imgs), valid)
        g_loss.backward()
        optimizer_g.step()

        # Discriminator.
        optimizer_d.zero_grad()
        real_loss = adversarial_loss(discriminator(real_imgs), valid)
        fake_loss = adversarial_loss(discriminator(gen_imgs.detach()), fake)
        d_loss = (real_loss + fake_loss) / 2
        d_loss.backward()
        optimizer_d.step()

        # gan.py prints d_loss.item() and g_loss.item() every batch: two device syncs per step.
        _ = (d_loss.item(), g_loss.item())
        return n

    return _timed_loop(loader, step, steps, warmup, cuda, batch_size)


# ----------------------------------------------------------------------------------------------------------------
# pytorch/examples dcgan/main.py
# ----------------------------------------------------------------------------------------------------------------


def weights_init(m: nn.Module) -> None:
    """main.py's custom init: N(0, 0.02) for conv weights, N(1, 0.02) weight and zero bias for BatchNorm."""
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class DCGANGenerator(nn.Module):
    """main.py's Generator: nz x 1 x 1 -> nc x 64 x 64 by five transposed convolutions."""

    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),  # (ngf*8) x 4 x 4
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),  # (ngf*4) x 8 x 8
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),  # (ngf*2) x 16 x 16
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),  # ngf x 32 x 32
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh(),  # nc x 64 x 64
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class DCGANDiscriminator(nn.Module):
    """main.py's Discriminator: nc x 64 x 64 -> one probability per image (Sigmoid, for BCELoss)."""

    def __init__(self, ndf: int = 64, nc: int = 3) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),  # ndf x 32 x 32
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),  # (ndf*2) x 16 x 16
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),  # (ndf*4) x 8 x 8
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 8),
            nn.LeakyReLU(0.2, inplace=True),  # (ndf*8) x 4 x 4
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).view(-1, 1).squeeze(1)


def baseline_dcgan(
    root: Path,
    steps: int,
    warmup: int,
    batch_size: int = 64,
    image_size: int = 64,
    nz: int = 100,
    ngf: int = 64,
    ndf: int = 64,
    device: str = "cpu",
    num_workers: int = 2,
) -> dict[str, float | None]:
    """Time dcgan/main.py's training loop on the image folder under root (see make_image_folder).

    Returns the same dict as baseline_mlp. The architecture is main.py's, which assumes image_size 64."""
    torch.manual_seed(0)
    dev = torch.device(device)
    cuda = dev.type == "cuda"

    dataset = dset.ImageFolder(
        root=str(root),
        transform=transforms.Compose(
            [
                transforms.Resize(image_size),
                transforms.CenterCrop(image_size),
                transforms.ToTensor(),
                transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
            ]
        ),
    )
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers)

    net_g = DCGANGenerator(nz, ngf).to(dev)
    net_g.apply(weights_init)
    net_d = DCGANDiscriminator(ndf).to(dev)
    net_d.apply(weights_init)
    criterion = nn.BCELoss()
    real_label, fake_label = 1.0, 0.0
    optimizer_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optimizer_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step(data: tuple[torch.Tensor, torch.Tensor]) -> int:
        # (1) Update D: maximize log(D(x)) + log(1 - D(G(z))), with two separate backward passes as in main.py.
        net_d.zero_grad()
        real_cpu = data[0].to(dev)  # blocking, unpinned copy
        n = real_cpu.size(0)
        label = torch.full((n,), real_label, dtype=real_cpu.dtype, device=dev)
        output = net_d(real_cpu)
        err_d_real = criterion(output, label)
        err_d_real.backward()
        d_x = output.mean().item()

        noise = torch.randn(n, nz, 1, 1, device=dev)
        fake = net_g(noise)
        label.fill_(fake_label)
        output = net_d(fake.detach())
        err_d_fake = criterion(output, label)
        err_d_fake.backward()
        d_g_z1 = output.mean().item()
        err_d = err_d_real + err_d_fake
        optimizer_d.step()

        # (2) Update G: maximize log(D(G(z))). D's parameter gradients are computed here too (and cleared by the next
        # step's net_d.zero_grad()), as in main.py.
        net_g.zero_grad()
        label.fill_(real_label)  # fake labels are real for the generator cost
        output = net_d(fake)
        err_g = criterion(output, label)
        err_g.backward()
        d_g_z2 = output.mean().item()
        optimizer_g.step()

        # main.py prints Loss_D, Loss_G, D(x), D(G(z)) every batch: five .item() syncs per step in all.
        _ = (err_d.item(), err_g.item(), d_x, d_g_z1, d_g_z2)
        return n

    # main.py sets cudnn.benchmark = True globally; do the same, but only for this run.
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        return _timed_loop(loader, step, steps, warmup, cuda, batch_size)
    finally:
        torch.backends.cudnn.benchmark = previous


# ----------------------------------------------------------------------------------------------------------------
# Smoke test
# ----------------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        mnist = make_mnist_files(Path(tmp) / "mnist")
        folder = make_image_folder(Path(tmp) / "folder")
        print("mlp  ", baseline_mlp(mnist, args.steps, args.warmup, device=args.device))
        print("dcgan", baseline_dcgan(folder, args.steps, args.warmup, device=args.device))


if __name__ == "__main__":
    main()
