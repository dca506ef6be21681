"""`trainer.n_critic_schedule`: how many D steps precede each G step.

constant: `n_critic` every time. wgan: the schedule of the WGAN authors' reference code (Arjovsky et al. 2017,
main.py): `critic_burst` (100) D steps for each of the first `critic_burst_first` (25) G steps and for every
`critic_burst_every`-th (500th) one, `n_critic` otherwise, so that the critic is near its optimum
early and is brought back there now and then.
"""

from __future__ import annotations

from ganlab.errors import ConfigError

SCHEDULES = ("constant", "wgan")


class CriticSchedule:
    def __init__(self, kind: str, n_critic: int, burst: int = 100, first: int = 25, every: int = 500) -> None:
        if kind not in SCHEDULES:
            raise ConfigError(
                f"trainer.n_critic_schedule={kind!r} is not a schedule ganlab knows; "
                f"choose one of {', '.join(SCHEDULES)}."
            )
        if burst < 1 or first < 0 or every < 1:
            raise ConfigError(
                "trainer.critic_burst and trainer.critic_burst_every must be >= 1 and trainer.critic_burst_first "
                f">= 0, got {burst}, {every} and {first}."
            )
        self.kind, self.n_critic, self.burst, self.first, self.every = kind, n_critic, burst, first, every

    def __call__(self, step: int) -> int:
        """D steps before the G step numbered `step` (1-based, as the loop counts)."""
        g_iterations = step - 1  # the reference code counts G iterations from 0
        if self.kind == "wgan" and (g_iterations < self.first or g_iterations % self.every == 0):
            return self.burst
        return self.n_critic
