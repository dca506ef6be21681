"""`model=rnn`: recurrent G and D for sequences (N, T, C) in [0, 1].

RCGAN (Esteban et al. 2017): G is an LSTM (or GRU, `cell`) that reads fresh noise at every step and writes each
step's values through a linear layer and a sigmoid; D is a recurrent network that scores every step, so its
output is a (B, T) map of logits that the losses average like a patch discriminator's. From C-RNN-GAN (Mogren
2016): `discriminator.bidirectional=true` reads the sequence both ways before scoring, and
`generator.feedback=true` also hands every step of G the value it wrote at the step before.

Noise: G's latent is `model.z_dim` values per step, handed over flat as (B, T * z_dim) (`latent_size`), so that
the loop, sampling and interpolation treat it like any other latent vector. `generator.z_static=S` appends S
values drawn once per sequence, read at every step beside that step's noise (latent T * z_dim + S): what stays
fixed over a sequence (a sine's frequency and phase) then need not be decided from the first steps' noise and
carried in the state, and the per-step noise, which G otherwise writes into its output as step-to-step jitter,
can be left aside.
Conditions (ganlab/condition.py): class labels (RCGAN's conditional form) enter G and D as a learned embedding
concatenated to every step's input. A prefix (data.prefix > 0) enters G as the known values of its first steps,
with a flag saying which steps are known; G returns the prefix followed by its continuation, so D judges whole
sequences.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor, nn

from ganlab.errors import ConfigError, check_positive
from ganlab.models.conditional import check_num_classes

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}
STEP_CELLS = {"lstm": nn.LSTMCell, "gru": nn.GRUCell}  # the same, one step at a time (generator.feedback)
LABEL_EMBED_DIM = 16
# What D scores: every step (RCGAN's), the whole sequence from its final state (as TimeGAN's post-hoc classifier
# does), or both.
SCORES = ("steps", "sequence", "both")
OUTPUTS = {"sigmoid": torch.sigmoid, "linear": lambda x: x}


def sequence_dims(shape: tuple[int, ...], who: str) -> tuple[int, int]:
    """(T, C) of sequence data; a ConfigError for anything else."""
    if len(shape) != 2:
        raise ConfigError(
            f"model=rnn needs sequence data (T, C) such as data=sines or data=csv, but the {who} was given samples "
            f"of shape {tuple(shape)}."
        )
    return int(shape[0]), int(shape[1])


def check_recurrent(cell: str, hidden: int, layers: int, who: str) -> None:
    if cell not in CELLS:
        raise ConfigError(f"{who}.cell must be one of {', '.join(CELLS)}, got {cell!r}.")
    check_positive(who, hidden=hidden, layers=layers)


def recurrent(cell: str, size_in: int, hidden: int, layers: int, bidirectional: bool, who: str) -> nn.RNNBase:
    check_recurrent(cell, hidden, layers, who)
    return CELLS[cell](size_in, hidden, num_layers=layers, batch_first=True, bidirectional=bidirectional)


def input_gradients_context(x: Tensor) -> contextlib.AbstractContextManager:
    """cuDNN's RNN kernels have no double backward ("double backwards is not supported for CuDNN RNNs"), which
    R1, R2 and the gradient penalty need: when D's input takes gradients on CUDA, run torch's own kernels."""
    if x.is_cuda and x.requires_grad:
        return torch.backends.cudnn.flags(enabled=False)
    return contextlib.nullcontext()


class RNNGenerator(nn.Module):
    def __init__(
        self,
        z_dim: int,
        out_shape: tuple[int, ...],
        cell: str = "lstm",
        hidden: int = 64,
        layers: int = 1,
        num_classes: int | None = None,
        feedback: bool = False,
        output: str = "sigmoid",
        z_static: int = 0,
    ) -> None:
        super().__init__()
        check_positive("model.generator", z_dim=z_dim)
        if isinstance(z_static, bool) or not isinstance(z_static, int) or z_static < 0:
            raise ConfigError(f"model.generator.z_static must be a whole number >= 0, got {z_static!r}.")
        self.z_static = z_static
        if output not in OUTPUTS:
            raise ConfigError(f"model.generator.output must be one of {', '.join(OUTPUTS)}, got {output!r}.")
        self.squash = OUTPUTS[output]
        if not isinstance(feedback, bool):
            raise ConfigError(f"model.generator.feedback must be true or false, got {feedback!r}.")
        self.feedback = feedback
        self.length, self.channels = sequence_dims(out_shape, "generator")
        self.z_dim = z_dim
        # Per-step noise, flat, then the per-sequence noise: what the loop draws for one sample.
        self.latent_size = self.length * z_dim + z_static
        self.num_classes = check_num_classes(num_classes, "model.generator")
        embed = LABEL_EMBED_DIM if num_classes else 0
        if num_classes:
            self.embed = nn.Embedding(num_classes, embed)
        # Every step reads its noise, the known value of a prefix step (zeros elsewhere) and a known-step flag; with
        # feedback, the previous step's value (G's own, or the prefix's) instead of the known value.
        size_in = z_dim + z_static + self.channels + 1 + embed
        if feedback:  # unrolled step by step, since each step reads the one before
            check_recurrent(cell, hidden, layers, "model.generator")
            self.cells = nn.ModuleList(STEP_CELLS[cell](size_in if i == 0 else hidden, hidden) for i in range(layers))
        else:
            self.rnn = recurrent(cell, size_in, hidden, layers, False, "model.generator")
        self.out = nn.Linear(hidden, self.channels)

    def forward(self, z: Tensor, condition: Tensor | None = None) -> Tensor:
        parts, prefix = self.step_inputs(z, condition)
        if self.feedback:
            return self.unrolled(torch.cat(parts[:1] + parts[2:], 2), prefix)
        h, _ = self.rnn(torch.cat(parts, 2))
        x = self.squash(self.out(h))
        if prefix is not None:  # the known steps are the prefix itself: D judges the whole sequence
            x = torch.cat([prefix, x[:, prefix.shape[1] :]], 1)
        return x

    def step_inputs(self, z: Tensor, condition: Tensor | None) -> tuple[list[Tensor], Tensor | None]:
        """What every step reads, as parts to concatenate: [noise (+ per-sequence noise), known value and flag,
        (label embedding)]; and the prefix, if the condition is one."""
        b = z.shape[0]
        if z.shape[1:] != (self.latent_size,):
            raise ValueError(f"RNNGenerator expects latents (B, {self.latent_size}), got {tuple(z.shape)}")
        steps_noise = self.length * self.z_dim
        noise = z[:, :steps_noise].reshape(b, self.length, self.z_dim)
        if self.z_static:
            static = z[:, None, steps_noise:].expand(-1, self.length, -1)
            noise = torch.cat([noise, static], 2)
        known = z.new_zeros(b, self.length, self.channels + 1)
        prefix = None
        parts = [noise, known]
        if condition is not None and condition.is_floating_point():  # a prefix (B, P, C)
            prefix = condition.to(z.dtype)
            if prefix.dim() != 3 or prefix.shape[2] != self.channels or not 0 < prefix.shape[1] < self.length:
                raise ValueError(f"a prefix must be (B, P < {self.length}, {self.channels}), got {tuple(prefix.shape)}")
            steps = prefix.shape[1]
            flag = z.new_ones(b, steps, 1)
            parts[1] = torch.cat([torch.cat([prefix, flag], 2), known[:, steps:]], 1)
        elif self.num_classes:
            if condition is None:
                raise ValueError("a class-conditional RNNGenerator needs labels")
            parts.append(self.embed(condition)[:, None, :].expand(-1, self.length, -1))
        elif condition is not None:
            raise ValueError("this RNNGenerator is unconditional and was given labels")
        return parts, prefix

    def teacher_forced(self, real: Tensor, z: Tensor, condition: Tensor | None = None) -> Tensor:
        """(B, T, C): each step as G writes it when the value it reads from the step before is the real one
        (`real`, (B, T, C)) instead of its own, its noise and labels as in `forward`. A feedback G only: it is the
        one whose steps read the step before. Step 0 reads nothing and is G's own draw."""
        if not self.feedback:
            raise ValueError("teacher forcing needs a G that reads the step before (model.generator.feedback=true)")
        parts, _ = self.step_inputs(z, None if condition is None or condition.is_floating_point() else condition)
        return self.unrolled(torch.cat(parts[:1] + parts[2:], 2), None, teacher=real)

    def unrolled(self, inputs: Tensor, prefix: Tensor | None, teacher: Tensor | None = None) -> Tensor:
        """C-RNN-GAN's G (Mogren 2016): every step also reads the value written at the step before (the prefix's,
        where it is known). `inputs`: (B, T, noise [+ per-sequence noise] [+ label embedding]). `teacher`: (B, T, C)
        read instead of what G wrote (teacher forcing), flagged as G's own, as when it runs free."""
        b, steps = inputs.shape[0], 0 if prefix is None else prefix.shape[1]
        states: list = [None] * len(self.cells)
        previous, outputs = inputs.new_zeros(b, self.channels), []
        for t in range(self.length):
            known = inputs.new_full((b, 1), 1.0 if 0 < t <= steps else 0.0)  # the previous value is real data
            h = torch.cat([inputs[:, t], previous, known], 1)
            for i, cell in enumerate(self.cells):
                states[i] = cell(h, states[i])
                h = states[i][0] if isinstance(states[i], tuple) else states[i]
            outputs.append(prefix[:, t] if t < steps else self.squash(self.out(h)))
            previous = outputs[-1] if teacher is None else teacher[:, t].to(outputs[-1].dtype)
        return torch.stack(outputs, 1)


class RNNDiscriminator(nn.Module):
    def __init__(
        self,
        in_shape: tuple[int, ...],
        cell: str = "lstm",
        hidden: int = 64,
        layers: int = 1,
        bidirectional: bool = False,
        num_classes: int | None = None,
        score: str = "steps",
    ) -> None:
        super().__init__()
        self.length, self.channels = sequence_dims(in_shape, "discriminator")
        if score not in SCORES:
            raise ConfigError(f"model.discriminator.score must be one of {', '.join(SCORES)}, got {score!r}.")
        self.score = score
        if not isinstance(bidirectional, bool):
            raise ConfigError(f"model.discriminator.bidirectional must be true or false, got {bidirectional!r}.")
        self.num_classes = check_num_classes(num_classes, "model.discriminator")
        embed = LABEL_EMBED_DIM if num_classes else 0
        if num_classes:
            self.embed = nn.Embedding(num_classes, embed)
        self.rnn = recurrent(cell, self.channels + embed, hidden, layers, bidirectional, "model.discriminator")
        self.hidden, self.bidirectional = hidden, bidirectional
        width = hidden * (2 if bidirectional else 1)
        if score != "sequence":
            self.out = nn.Linear(width, 1)
        if score != "steps":
            self.out_sequence = nn.Linear(width, 1)

    def forward(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        """(B, T, C) -> (B, T) logits, one for every step (`score=steps`); (B, 1), one for the whole sequence
        (`sequence`); or (B, 2T), the T step logits followed by the sequence logit T times (`both`), so that the
        losses' mean weighs the two halves alike."""
        inputs = x
        if self.num_classes:
            if condition is None or condition.is_floating_point():
                raise ValueError("a class-conditional RNNDiscriminator needs labels")
            inputs = torch.cat([x, self.embed(condition)[:, None, :].expand(-1, x.shape[1], -1)], 2)
        # A prefix condition is already the first steps of x: nothing to add.
        with input_gradients_context(x):
            h, _ = self.rnn(inputs)
        if self.score == "steps":
            return self.out(h).squeeze(2)
        # The state after the whole sequence: the last step's, and for a bidirectional D the backward pass's at the
        # first step (it has read everything by then).
        whole = h[:, -1]
        if self.bidirectional:
            whole = torch.cat([h[:, -1, : self.hidden], h[:, 0, self.hidden :]], 1)
        sequence_logit = self.out_sequence(whole)
        if self.score == "sequence":
            return sequence_logit
        return torch.cat([self.out(h).squeeze(2), sequence_logit.expand(-1, h.shape[1])], 1)
