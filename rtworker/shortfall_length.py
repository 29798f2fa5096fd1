"""How long a relay's shortfalls last, learned online: the weather's time scale (slow clouds,
a long appliance run) on which the allocator's early switch-off rests. Lengths are taken as
roughly exponential, so the maximum-likelihood mean is the time spent in shortfalls over
the number of those that ended; the running shortfall counts with the time it has lasted
(a censored observation: it lasts at least that long) but not as an ended one, so a
shortfall that goes on raises the expected rest. The prior counts as ``prior_weight``
episodes of its own mean (the allocator's: one, so a few long shortfalls outweigh it), and
every episode fades by 1/memory at each new one (the weather changes over a day). Pure: no
clock, no I/O."""

from __future__ import annotations


class ShortfallLength:
    def __init__(self, prior_s: float, prior_weight: float, memory: float) -> None:
        self.ended = prior_weight  # episodes (weighted, faded), the prior's included
        self.total_s = prior_weight * prior_s  # their time in shortfall
        self._keep = 1.0 - 1.0 / memory

    def end(self, length_s: float) -> None:
        """A shortfall episode ended after ``length_s``."""
        self.ended = self._keep * self.ended + 1.0
        self.total_s = self._keep * self.total_s + length_s

    @property
    def mean_s(self) -> float:
        """The mean length, from the ended episodes (and the prior)."""
        return self.total_s / self.ended

    def expected_s(self, running_s: float) -> float:
        """The expected rest of a shortfall that has lasted ``running_s`` (memoryless:
        the mean, with the running one's time counted in)."""
        return (self.total_s + max(running_s, 0.0)) / self.ended
