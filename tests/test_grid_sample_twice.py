"""ganlab's grid_sample (ganlab/stabilizers/grid_sample_twice.py): torch's values and gradients, plus a second
derivative that torch 2.11 lacks, checked against finite differences."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganlab.stabilizers.grid_sample_twice import grid_sample


def images_and_grid(dtype: torch.dtype = torch.float32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 2, 5, 6, generator=gen, dtype=dtype)
    theta = torch.eye(3)[:2].repeat(3, 1, 1) + 0.3 * torch.randn(3, 2, 3, generator=gen)
    grid = F.affine_grid(theta.to(dtype), [3, 2, 4, 7], align_corners=False)  # reaches past the border too
    return x, grid


@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_values_and_gradients_are_torchs_bitwise(padding_mode: str, align_corners: bool) -> None:
    x, grid = images_and_grid()
    weights = torch.randn(3, 2, 4, 7)
    ours_x = x.clone().requires_grad_()
    theirs_x = x.clone().requires_grad_()
    ours = grid_sample(ours_x, grid, padding_mode=padding_mode, align_corners=align_corners)
    theirs = F.grid_sample(theirs_x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=align_corners)
    assert torch.equal(ours, theirs)
    (ours * weights).sum().backward()
    (theirs * weights).sum().backward()
    assert torch.equal(ours_x.grad, theirs_x.grad)


@pytest.mark.parametrize("padding_mode", ["zeros", "reflection"])
def test_second_derivatives_match_finite_differences(padding_mode: str) -> None:
    x, grid = images_and_grid(torch.float64)
    x.requires_grad_()
    assert torch.autograd.gradgradcheck(lambda image: grid_sample(image, grid, padding_mode=padding_mode), (x,))


def test_an_r1_penalty_through_it_trains_the_layer_behind_it() -> None:
    """R1's shape: the squared input gradient of a layer applied after the sampling, differentiated by the layer's
    weight. Checked against the same penalty through an explicit sampling matrix (S x, torch's plain matmul)."""
    x, grid = images_and_grid(torch.float64)
    basis = torch.eye(30, dtype=torch.float64).view(30, 1, 5, 6)
    # torch's own op on each basis image: column k of each sample's sampling matrix S
    sampling = torch.stack(
        [F.grid_sample(e.expand(3, 1, 5, 6), grid, padding_mode="reflection", align_corners=False) for e in basis]
    )
    weight = torch.randn(3, 2, 4, 7, dtype=torch.float64, requires_grad=True)

    def penalty(resample) -> torch.Tensor:
        image = x.clone().requires_grad_()
        score = (torch.tanh(resample(image)) * weight).sum()
        (grad,) = torch.autograd.grad(score, image, create_graph=True)
        return grad.square().sum()

    (ours,) = torch.autograd.grad(penalty(lambda image: grid_sample(image, grid)), weight)
    # S as a (30 -> 28) matrix per sample and channel: out[b, c, i, j] = sum_k S[b, i, j, k] x[b, c, k]
    matrix = sampling[:, :, 0].permute(1, 2, 3, 0)  # (B, 4, 7, 30)
    (reference,) = torch.autograd.grad(
        penalty(lambda image: torch.einsum("bijk,bck->bcij", matrix, image.flatten(2))), weight
    )
    torch.testing.assert_close(ours, reference)


def test_under_autocast_it_computes_in_float32_as_torch_does() -> None:
    x, grid = images_and_grid()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = grid_sample(x.bfloat16(), grid.bfloat16())
        theirs = F.grid_sample(x.bfloat16(), grid.bfloat16(), padding_mode="reflection", align_corners=False)
    assert ours.dtype == theirs.dtype == torch.float32
    assert torch.equal(ours, theirs)


def test_a_grid_that_learns_goes_through_torchs_op() -> None:
    x, grid = images_and_grid()
    grid.requires_grad_()
    grid_sample(x, grid).sum().backward()
    assert grid.grad is not None and grid.grad.abs().sum() > 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("padding_mode", ["zeros", "reflection"])
@pytest.mark.parametrize("align_corners", [False, True])  # True with zeros padding: where torch may take cuDNN's
def test_on_cuda_it_gives_the_cpus_values_and_derivatives(padding_mode: str, align_corners: bool) -> None:
    """The CUDA kernels of the same ops (ADA's augmentation runs there under R1): its values, input gradient and
    second derivative are the CPU's to rounding (CUDA's backward adds with atomics), and its second derivatives
    pass finite differences on the GPU too, within that nondeterminism."""
    x, grid = images_and_grid(torch.float64)
    weights = torch.randn(3, 2, 4, 7, dtype=torch.float64)

    def sample(image: torch.Tensor) -> torch.Tensor:
        return grid_sample(image, grid.to(image.device), padding_mode=padding_mode, align_corners=align_corners)

    results = {}
    for device in ("cpu", "cuda"):
        image = x.to(device).requires_grad_()
        out = sample(image)
        (grad,) = torch.autograd.grad((out.tanh() * weights.to(device)).sum(), image, create_graph=True)
        (grad_grad,) = torch.autograd.grad(grad.square().sum(), image)
        results[device] = [t.detach().cpu() for t in (out, grad, grad_grad)]
    for on_cpu, on_cuda in zip(results["cpu"], results["cuda"], strict=True):
        torch.testing.assert_close(on_cuda, on_cpu)
    assert torch.autograd.gradgradcheck(sample, (x.cuda().requires_grad_(),), nondet_tol=1e-10)
