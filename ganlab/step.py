"""One training step: `n_critic` D updates, then one G update through a frozen D. The networks arrive wrapped
for speed (precision, torch.compile, channels_last, DistributedDataParallel: ganlab/speed.py, applied by
ganlab/build.py); this module only steps. The step is split into parts (`d_update`, `g_update`) that
ganlab/cuda_graphs.py captures and replays on CUDA; everything a part does stays on the device, and what changes
between steps is set before the parts run.

train.py's loop calls a `TrainStep` once per G step; scripts/bench.py times the same object. Nothing here reads
a value back from the device: the losses go into a `StatsMeter` on the device, and the loop reads it only when
it logs. A G step with trainer.precision=16 and a non-fused optimizer is the exception: GradScaler.step reads
whether the gradients were finite.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from ganlab.build import Components, trainable
from ganlab.condition import call, given
from ganlab.cuda_graphs import step_runner
from ganlab.divergence import NanWatch
from ganlab.stabilizers.base import HOOKS, overriding


class StatsMeter:
    """Running sums of the steps' stats (loss/D, D/real, ...) on the device; `means()` reads them (one sync).

    Each set of stat names that a part of a step reports (a D update, a regularised D update, the G update) has
    one slot: a vector of the sums with the count of reports at its end. Adding a report is two operations, a
    stack and an in-place add, whatever the number of stats, and happens in place, so that a captured CUDA
    graph (ganlab/cuda_graphs.py) keeps adding to the same slot at every replay.
    """

    def __init__(self) -> None:
        self.slots: dict[tuple[str, ...], Tensor] = {}
        self.ones: dict[torch.device, Tensor] = {}  # the count's 1, made once per device
        self.frozen = False  # set while a CUDA graph captures: a new slot would be zeroed at every replay

    def add(self, stats: dict[str, Tensor], keep: Tensor | None = None) -> None:
        """Add one step's stats; `keep` (a bool on the device) leaves out a step the GradScaler skipped."""
        names = tuple(stats)
        values = [value.detach().float() for value in stats.values()]
        slot = self.slots.get(names)
        if slot is None:
            if self.frozen:
                raise RuntimeError(f"stats {names} first reported inside a CUDA graph capture")
            slot = self.slots[names] = torch.zeros(len(names) + 1, device=values[0].device)
            self.ones.setdefault(slot.device, torch.ones((), device=slot.device))
        report = torch.stack([*values, self.ones[slot.device]])
        if keep is not None:
            report = torch.where(keep, report, torch.zeros((), device=slot.device))
        slot.add_(report)

    def means(self) -> dict[str, float]:
        """Each stat's mean over the steps that reported it; a stat whose every step since the last log was
        skipped by the GradScaler (the first steps of a float16 run, while the scale backs off) is left out."""
        if not self.slots:
            return {}
        read = torch.cat(list(self.slots.values())).tolist()  # one read from the device
        sums: dict[str, float] = {}
        counts: dict[str, float] = {}
        at = 0
        for names in self.slots:
            count = read[at + len(names)]
            for i, name in enumerate(names):
                sums[name] = sums.get(name, 0.0) + read[at + i]
                counts[name] = counts.get(name, 0.0) + count
            at += len(names) + 1
        return {name: sums[name] / counts[name] for name in sums if counts[name] > 0}

    def reset(self) -> None:
        """Zero the sums in place (the slots stay: captured graphs add to them)."""
        for slot in self.slots.values():
            slot.zero_()


class TrainStep:
    """Callable once per G step: `step(s)` runs the n_critic D updates and the G update of G step `s`.

    `batch_size` is this process's share of the global batch. The networks are called through the wrappers of
    `parts.execution` (ganlab/speed.py): D synchronised across ranks in its own updates, frozen and called
    directly in G's.
    """

    def __init__(self, parts: Components, trainer: DictConfig, batch_size: int, watch: NanWatch) -> None:
        self.parts = parts
        self.batch_size = batch_size
        self.watch = watch
        self.meter = StatsMeter()
        self.clip = trainer.clip_grad_norm
        self.d_updates = 0  # D steps so far: lazy R1/R2 acts on every loss.reg_every-th
        self.pretrain_updates = 0  # G's updates without D (trainer.pretrain_steps) in this process
        run = parts.execution  # the networks as built to run: DDP, torch.compile, channels_last (ganlab/speed.py)
        self.dtype, self.channels_last, self.compiled = run.dtype, run.channels_last, run.compiled
        scaled = self.dtype is torch.float16
        self.scaler_g = torch.amp.GradScaler(parts.device.type) if scaled else None
        self.scaler_d = torch.amp.GradScaler(parts.device.type) if scaled else None
        self.one = torch.ones((), device=parts.device)
        # D's learning parameters: frozen during G's update, and back after it. FreezeD's frozen blocks stay out.
        self.d_learning = trainable(parts.D)
        self.G_train: Callable[..., Tensor] = run.G
        self.critic_d = parts.D_view.through(run.D)  # D's steps, synchronised across ranks
        self.critic_d_eager = parts.D_view.through(run.D_eager)  # ... whose penalty differentiates D twice
        self.critic_g = parts.D_view.through(run.D_frozen)  # G's step: D frozen, nothing to synchronise
        # On CUDA each part of the step (D update, regularised D update, G update) is captured once as a CUDA
        # graph and replayed, where the configuration allows it (ganlab/cuda_graphs.py); else run as it is.
        self.graphs = step_runner(trainer.get("cuda_graphs", "auto"), parts, self)
        # The hook-based stabilisers, per hook, only those that act there (ganlab/stabilizers/base.py).
        self.hooks = {hook: overriding(parts.stabilizers.values(), hook) for hook in HOOKS}

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.parts.device.type, dtype=self.dtype)

    def __call__(self, step: int) -> None:
        p = self.parts
        # Host-side settings of this step, written into device tensors that the parts read (captured graphs too).
        p.lr_g.apply(step - 1)
        p.lr_d.apply(step - 1)
        p.D_view.set_step(step)
        if p.ema is not None:
            p.ema.set_step(step)
        for stabilizer in self.hooks["at_step_start"]:
            stabilizer.at_step_start(step)
        if step <= p.pretrain_steps:  # SRResNet's pre-training: G alone on a pixel loss, no D
            self.graphs.run(("G", "pretrain"), self.g_pretrain_update)
            self.pretrain_updates += 1  # here, not in the part: a replayed graph runs no Python
            return
        grown = ()  # a growing model (model=progan) runs other layers in each phase: a graph per phase
        if p.growth is not None:
            p.growth.apply(step)
            grown = p.growth.key
        # --- discriminator: n_critic updates (or a burst of them), G's samples detached ---
        for _ in range(p.critic_schedule(step)):
            regularize = self.d_updates % p.loss.reg_every == 0
            self.graphs.run(("D", regularize, *grown), self.d_update, regularize)
            self.d_updates += 1
            if p.ada is not None:  # every augment.ada_interval D updates, on the device
                p.ada.after_d_updates(self.d_updates)
        # --- generator: one update through D, whose parameters get no gradients ---
        regularizers = self.hooks["g_regularizer"]
        due = tuple(i for i, s in enumerate(regularizers) if (step - 1) % s.g_reg_every == 0)  # one G update a step
        self.graphs.run(("G", *grown, *(("reg", *due) if due else ())), self.g_update, due)

    def d_update(self, regularize: bool) -> None:
        """One D update on a fresh real batch and a detached fake one; `regularize`: this one carries R1/R2."""
        p = self.parts
        batch = p.conditioning.real_batch(p.data, self.batch_size)  # G's fakes get the real batch's conditions
        real = batch.real if p.growth is None else p.growth.fade_reals(batch.real)  # ProGAN: reals fade in too
        real = real.contiguous(memory_format=torch.channels_last) if self.channels_last else real
        with torch.no_grad(), self.autocast():
            z = torch.randn(self.batch_size, p.z_dim, device=p.device)
            fake = call(self.G_train, z, batch.condition)
            if p.history is not None:  # SimGAN: a share of the fakes from G's earlier outputs
                fake = p.history.mix(fake)
        eager = self.compiled and p.loss.needs_input_gradients(regularize)
        critic = given(self.critic_d_eager if eager else self.critic_d, batch.condition)
        grad_scale = self.scaler_d.scale(self.one) if self.scaler_d is not None else None
        with self.autocast():
            d_loss, d_stats = p.loss.d_loss(critic, real, fake, regularize=regularize, grad_scale=grad_scale)
            for stabilizer in self.hooks["d_term"]:
                term, stats = stabilizer.d_term(critic, real, fake)
                d_loss = d_loss if term is None else d_loss + term
                d_stats |= stats
        kept = self.update(d_loss, p.opt_d, p.D, self.scaler_d, d_stats, "D")
        if p.ada is not None:
            p.ada.observe(d_stats["D/real_sign"])
        p.loss.after_d_step(p.D)
        for stabilizer in self.hooks["after_d_update"]:
            stabilizer.after_d_update(p.D)
        self.observe(d_loss, d_stats, kept)

    def g_update(self, regularizers: tuple[int, ...] = ()) -> None:
        """One G update through the frozen D, then the EMA of G and the end of the step for the NaN watch;
        `regularizers`: which of the lazy G regularisers (path length) act in this update."""
        p = self.parts
        for param in self.d_learning:
            param.requires_grad_(False)
        batch = p.conditioning.g_batch(p.data, self.batch_size, p.device)  # e.g. classes drawn uniformly
        with self.autocast():
            z = torch.randn(self.batch_size, p.z_dim, device=p.device)
            fake = call(self.G_train, z, batch.condition)
            critic = given(self.critic_g, batch.condition)
            g_loss, g_stats = p.loss.g_loss(critic, fake, batch)
            for stabilizer in self.hooks["g_term"]:
                term, stats = stabilizer.g_term(critic, fake)
                g_loss = g_loss if term is None else g_loss + term
                g_stats |= stats
            if p.content is not None:  # image-conditioned models: L1/MSE/perceptual to the target, or the input
                term, stats = p.content(fake, batch)
                g_loss = g_loss + term
                g_stats |= stats
            for i in regularizers:
                term, stats = self.hooks["g_regularizer"][i].g_regularizer(p.G, z, batch.condition)
                g_loss = g_loss if term is None else g_loss + term
                g_stats |= stats
        kept = self.update(g_loss, p.opt_g, p.G, self.scaler_g, g_stats, "G")
        for param in self.d_learning:
            param.requires_grad_(True)
        for stabilizer in self.hooks["after_g_update"]:
            stabilizer.after_g_update(p.G)
        if p.ema is not None:
            p.ema.update(p.G)  # with the weight that __call__ set for this step
        self.observe(g_loss, g_stats, kept)
        self.watch.end_step()

    def g_pretrain_update(self) -> None:
        """One G update on trainer.pretrain_content's pixel loss alone (trainer.pretrain_steps): D is not used."""
        p = self.parts
        batch = p.conditioning.g_batch(p.data, self.batch_size, p.device)
        with self.autocast():
            z = torch.randn(self.batch_size, p.z_dim, device=p.device)
            fake = call(self.G_train, z, batch.condition)
            loss, stats = p.pretrain(fake, batch)
        stats = {"loss/pretrain": stats["loss/content"], "loss/G": loss.detach()}
        kept = self.update(loss, p.opt_g, p.G, self.scaler_g, stats, "G")
        if p.ema is not None:
            p.ema.update(p.G)
        self.observe(loss, stats, kept)
        self.watch.end_step()

    @property
    def batches_drawn(self) -> int:
        """Real batches drawn so far in this process (D's, or G's alone while it pre-trains): the data rate's count."""
        return self.d_updates + self.pretrain_updates

    def restart_graphs(self) -> None:
        """After the optimizers' state was replaced (a rollback loads a checkpoint): captured graphs point at the
        old tensors, so they are dropped and captured afresh."""
        self.graphs.reset()

    def update(
        self,
        loss: Tensor,
        opt: torch.optim.Optimizer,
        net: nn.Module,
        scaler: torch.amp.GradScaler | None,
        stats: dict[str, Tensor],
        name: str,
    ) -> Tensor | None:
        """backward, optional clipping, optimizer step. Under float16, through the network's GradScaler; then
        returns whether the step was taken (a bool on the device: the scale only falls after a skipped step)."""
        opt.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            if self.clip is not None:
                stats[f"grad/{name}"] = torch.nn.utils.clip_grad_norm_(net.parameters(), self.clip)
            opt.step()
            return None
        scale_before = scaler.scale(self.one)
        scaler.scale(loss).backward()
        if self.clip is not None:
            scaler.unscale_(opt)  # clip the true gradients, not the scaled ones
            stats[f"grad/{name}"] = torch.nn.utils.clip_grad_norm_(net.parameters(), self.clip)
        scaler.step(opt)
        scaler.update()
        return scaler.scale(self.one) >= scale_before

    def observe(self, loss: Tensor, stats: dict[str, Tensor], kept: Tensor | None) -> None:
        """Watch the loss for NaN and add the stats to the meter; a step the GradScaler skipped (an inf it
        caught in float16) is neither a divergence nor a value to log."""
        if kept is not None:
            loss = torch.where(kept, loss.detach().float(), torch.zeros((), device=loss.device))
        self.watch.observe(loss)
        self.meter.add(stats, kept)

    def scaler_state(self) -> dict[str, Any] | None:
        if self.scaler_g is None or self.scaler_d is None:
            return None
        return {"G": self.scaler_g.state_dict(), "D": self.scaler_d.state_dict()}

    def load_scaler_state(self, state: dict[str, Any] | None) -> None:
        if state and self.scaler_g is not None and self.scaler_d is not None:
            self.scaler_g.load_state_dict(state["G"])
            self.scaler_d.load_state_dict(state["D"])
