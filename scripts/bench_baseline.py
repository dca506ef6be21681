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
import copy
import math
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


def _clock(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # queued kernels belong to the steps before this reading
    return time.perf_counter()


def _timed_loop(
    loader: Iterable[Any],
    step: Callable[[Any], int],
    steps: int,
    warmup: int,
    device: torch.device,
    batch_size: int,
) -> dict[str, float | None]:
    """Run `step` over epochs of `loader` (as the scripts' `for epoch: for batch in dataloader:` do) until
    warmup + steps steps are done; time the last `steps`, data loading included. `step` returns the number of real
    images it put through D, which is batch_size except for an epoch's last, partial batch (drop_last=False in both
    scripts), so images/s counts what was actually processed."""
    if steps < 1:
        raise ValueError("steps must be at least 1")
    done, images, start = 0, 0, 0.0

    # The device named, not the current one: the loops never make theirs current (`--device cuda:1`).
    cuda = device.type == "cuda"

    def begin() -> float:
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        return _clock(device)

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
                elapsed = _clock(device) - start
                peak = torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None
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

    return _timed_loop(loader, step, steps, warmup, dev, batch_size)


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
        return _timed_loop(loader, step, steps, warmup, dev, batch_size)
    finally:
        torch.backends.cudnn.benchmark = previous


# ----------------------------------------------------------------------------------------------------------------
# rosinality/stylegan2-pytorch train.py
# ----------------------------------------------------------------------------------------------------------------


def d_logistic_loss(real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
    """train.py's D loss: the non-saturating (logistic) loss, softplus(-D(x)) + softplus(D(G(z)))."""
    return F.softplus(-real_pred).mean() + F.softplus(fake_pred).mean()


def d_r1_loss(real_pred: torch.Tensor, real_img: torch.Tensor) -> torch.Tensor:
    """train.py's R1: the mean over the batch of ||grad_x D(x)||^2 on the reals, kept differentiable."""
    (grad_real,) = torch.autograd.grad(outputs=real_pred.sum(), inputs=real_img, create_graph=True)
    return grad_real.pow(2).reshape(grad_real.shape[0], -1).sum(1).mean()


def g_nonsaturating_loss(fake_pred: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake_pred).mean()


def g_path_regularize(
    fake_img: torch.Tensor, latents: torch.Tensor, mean_path_length: torch.Tensor | float, decay: float = 0.01
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """train.py's path length penalty: ||J_w^T y|| with y image-shaped noise / sqrt(H W), against its running mean."""
    noise = torch.randn_like(fake_img) / math.sqrt(fake_img.shape[2] * fake_img.shape[3])
    (grad,) = torch.autograd.grad(outputs=(fake_img * noise).sum(), inputs=latents, create_graph=True)
    path_lengths = torch.sqrt(grad.pow(2).sum(2).mean(1))
    path_mean = mean_path_length + decay * (path_lengths.mean() - mean_path_length)
    path_penalty = (path_lengths - path_mean).pow(2).mean()
    return path_penalty, path_mean.detach(), path_lengths


def requires_grad(model: nn.Module, flag: bool = True) -> None:
    for p in model.parameters():
        p.requires_grad = flag


def accumulate(model1: nn.Module, model2: nn.Module, decay: float) -> None:
    """train.py's EMA of G: one in-place update per parameter (w_avg, G's one buffer, copied as ganlab does)."""
    par1 = dict(model1.named_parameters())
    par2 = dict(model2.named_parameters())
    for k in par1.keys():
        par1[k].data.mul_(decay).add_(par2[k].data, alpha=1 - decay)
    for b1, b2 in zip(model1.buffers(), model2.buffers(), strict=True):
        b1.copy_(b2)


def baseline_stylegan2(
    root: Path,
    steps: int,
    warmup: int,
    batch_size: int = 32,
    image_size: int = 64,
    channel_base: int = 16384,
    channel_max: int = 512,
    z_dim: int = 512,
    w_dim: int = 512,
    mapping_layers: int = 2,
    mapping_lr_mul: float = 0.01,
    style_mixing: float = 0.9,
    w_avg_beta: float = 0.995,
    minibatch_std: int = 4,
    lr_g: float = 0.0025,
    lr_d: float = 0.0025,
    betas_g: tuple[float, float] = (0.0, 0.99),
    betas_d: tuple[float, float] = (0.0, 0.99),
    eps: float = 1e-8,
    r1: float = 0.0256,
    d_reg_every: int = 16,
    path_regularize: float = 2.0,
    g_reg_every: int = 4,
    path_batch_shrink: int = 2,
    path_decay: float = 0.01,
    ema_half_life: float = 10_000.0,
    device: str = "cpu",
    num_workers: int = 2,
) -> dict[str, float | None]:
    """Time rosinality/stylegan2-pytorch's train.py loop, on ganlab's StyleGAN2 networks, on the image folder under
    root (see make_image_folder). The defaults are experiment=stylegan2_folder's at 64 px (stylegan2-ada's
    --cfg=auto); scripts/bench.py passes the values of the ganlab configuration it compares against.

    Imitated from train.py: a DataLoader (RandomSampler, drop_last=True) cycled forever, images decoded and
    transformed per sample; a blocking CPU->device copy per batch; requires_grad flipped over every parameter of
    G and D twice a step; a D step on G's samples (G run with its parameters frozen, not under no_grad), lazy R1
    every d_reg_every D steps weighted by d_reg_every; a G step on fresh latents, lazy path length every
    g_reg_every G steps on batch / path_batch_shrink fresh latents, weighted by g_reg_every, with the running mean
    of the lengths; the EMA of G by `accumulate` (a loop over the parameters) after every step; and every step the
    loss dict read back with `.item()` (train.py reads seven values for its progress bar: seven syncs).

    Where train.py differs from ganlab in what is computed, this follows ganlab, so that both compute the same
    step and the ratio measures how the loop is run: the networks are ganlab's StyleGAN2Generator and
    StyleGAN2Discriminator (same widths, mapping depth, style mixing, noise, minibatch std), called through
    `styles`/`synthesis` for the path length as train.py calls its generator with return_latents=True; R1 and
    the path length join the D and G losses of their step (one backward, one optimizer step) instead of running
    as separate passes with their own optimizer step (train.py's extra D forward on the reals every 16th D step
    and extra G step every 4th); hence also the plain Adam settings (lr, betas, eps as ganlab's preset), not
    train.py's lr * c and betas ** c with c = reg_every / (reg_every + 1), which compensate those extra steps.
    The EMA's decay comes from ganlab's half-life in images at this batch (train.py: 0.5 ** (32 / 10000)).
    Left out: the horizontal flips (an augmentation ganlab's preset does not use), the LMDB data set (an
    ImageFolder of PNGs instead), sample grids, checkpoints, wandb, the distributed reductions (one process) and
    ADA. Returns the same dict as baseline_mlp."""
    torch.manual_seed(0)
    dev = torch.device(device)
    from ganlab.models.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator

    transform = transforms.Compose(
        [
            transforms.Resize(image_size),
            transforms.CenterCrop(image_size),
            transforms.ToTensor(),
            transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), inplace=True),
        ]
    )
    dataset = dset.ImageFolder(root=str(root), transform=transform)
    # train.py: data.DataLoader(dataset, batch_size=args.batch, sampler=data_sampler(dataset, shuffle=True, ...),
    # drop_last=True) read through sample_data(), an endless loop over epochs. train.py leaves num_workers at 0
    # (decoding in the training process); this gives it workers, as the DCGAN baseline has: that only helps it.
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True, num_workers=num_workers)

    shape = (3, image_size, image_size)
    generator = StyleGAN2Generator(
        z_dim,
        shape,
        w_dim=w_dim,
        mapping_layers=mapping_layers,
        mapping_lr_mul=mapping_lr_mul,
        channel_base=channel_base,
        channel_max=channel_max,
        style_mixing=style_mixing,
        w_avg_beta=w_avg_beta,
    ).to(dev)
    discriminator = StyleGAN2Discriminator(
        shape, channel_base=channel_base, channel_max=channel_max, minibatch_std=minibatch_std
    ).to(dev)
    g_ema = copy.deepcopy(generator).eval()
    accumulate(g_ema, generator, 0)
    g_optim = torch.optim.Adam(generator.parameters(), lr=lr_g, betas=tuple(betas_g), eps=eps)
    d_optim = torch.optim.Adam(discriminator.parameters(), lr=lr_d, betas=tuple(betas_d), eps=eps)
    accum = 0.5 ** (batch_size / ema_half_life)

    zero = torch.tensor(0.0, device=dev)
    loss_dict: dict[str, torch.Tensor] = {"r1": zero, "path": zero, "path_length": zero}
    mean_path_length: torch.Tensor | float = 0.0
    i = 0  # train.py's iteration counter, from the first (warm-up) step on, as ganlab's

    def step(batch: tuple[torch.Tensor, torch.Tensor]) -> int:
        nonlocal i, mean_path_length
        real_img = batch[0].to(dev)
        n = real_img.size(0)
        d_regularize = i % d_reg_every == 0
        g_regularize = i % g_reg_every == 0

        requires_grad(generator, False)
        requires_grad(discriminator, True)
        noise = torch.randn(n, z_dim, device=dev)
        fake_img = generator(noise)
        if d_regularize:
            real_img.requires_grad = True
        fake_pred = discriminator(fake_img)
        real_pred = discriminator(real_img)
        d_loss = d_logistic_loss(real_pred, fake_pred)
        loss_dict["d"] = d_loss
        loss_dict["real_score"] = real_pred.mean()
        loss_dict["fake_score"] = fake_pred.mean()
        if d_regularize:
            r1_loss = d_r1_loss(real_pred, real_img)
            d_loss = d_loss + r1 / 2 * r1_loss * d_reg_every
            loss_dict["r1"] = r1_loss
        discriminator.zero_grad()
        d_loss.backward()
        d_optim.step()

        requires_grad(generator, True)
        requires_grad(discriminator, False)
        noise = torch.randn(n, z_dim, device=dev)
        fake_img = generator(noise)
        fake_pred = discriminator(fake_img)
        g_loss = g_nonsaturating_loss(fake_pred)
        loss_dict["g"] = g_loss
        if g_regularize:
            path_batch_size = max(1, n // path_batch_shrink)
            latents = generator.styles(torch.randn(path_batch_size, z_dim, device=dev))
            path_loss, mean_path_length, path_lengths = g_path_regularize(
                generator.synthesis(latents), latents, mean_path_length, path_decay
            )
            g_loss = g_loss + path_regularize * g_reg_every * path_loss
            loss_dict["path"] = path_loss
            loss_dict["path_length"] = path_lengths.mean()
        generator.zero_grad()
        g_loss.backward()
        g_optim.step()

        accumulate(g_ema, generator, accum)
        i += 1
        # train.py's progress bar: d, g, r1, path, real_score, fake_score, path_length, each .mean().item()
        _ = {name: value.mean().item() for name, value in loss_dict.items()}
        return n

    return _timed_loop(loader, step, steps, warmup, dev, batch_size)


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
