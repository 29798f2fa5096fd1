"""The contract every output back-end meets (gpiozero's Pin in miniature): what a back-end
must implement, what it may, and the safe defaults for the optional parts, so nothing above
this package probes an output with ``getattr``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class OutputError(RuntimeError):
    """The output could not be opened or written; the message says what to fix."""


class FrequencyUnsupported(OutputError):
    """The output has no PWM frequency to change (a plain on/off GPIO, a simulation)."""


@dataclass(frozen=True)
class OutputSpec:
    """One output of the system as the config describes it. ``kind`` is ``pwm`` (duty 0..1)
    or ``switch`` (a plain GPIO level: relay stage, bypass); ``section`` is the config's
    ``[output]`` namespace, whose driver settings every output of the system shares."""

    name: str
    kind: str
    gpio: int
    section: Any
    active_low: bool = False


class Output(ABC):
    """One output pin. ``set`` takes a duty 0..1; a switch is on for any duty >= 0.5."""

    kind = "pwm"
    #: the smallest duty step; ``read_back()`` differs from what was set by less than this
    resolution = 0.001

    # -- must ----------------------------------------------------------------------------
    @abstractmethod
    def set(self, duty: float) -> None:
        """Drive the output at ``duty``; raises OutputError when it cannot."""

    @abstractmethod
    def off(self) -> None:
        """The safe state (duty 0, relay open). Must work (or raise) even if ``set`` never
        ran."""

    @abstractmethod
    def close(self) -> None:
        """Release the handle; does NOT change the output (the caller decides)."""

    @abstractmethod
    def describe(self) -> str:
        """One line for logs and the UI: driver, pin, frequency."""

    # -- may -----------------------------------------------------------------------------
    def read_back(self) -> float | None:
        """The duty the hardware really runs, or None when it cannot tell."""
        return None

    def set_frequency(self, hz: int) -> None:
        """Change the PWM frequency live, keeping the duty."""
        raise FrequencyUnsupported(f"{self.describe()}: has no PWM frequency to set")


class Switch(Output):
    """A plain on/off GPIO (relay, contactor, SSR without PWM)."""

    kind = "switch"
    resolution = 1.0  # a level is 0 or 1: anything closer than that is the same level

    @staticmethod
    def level(duty: float) -> bool:
        return duty >= 0.5  # NaN compares False: the safe level


class Backend(ABC):
    """One back-end (pigpio, sysfs, sim): opens outputs of each kind and checks a config
    without touching hardware. A back-end that has no switches says so by raising."""

    def __init__(self, runtime_dir: str | Path):
        self.runtime_dir = Path(runtime_dir)

    @abstractmethod
    def pwm(self, spec: OutputSpec) -> Output:
        """Open a PWM output; does not change what the pin does until ``set``/``off``."""

    def switch(self, spec: OutputSpec) -> Switch:
        raise OutputError(f"{spec.name}: this output driver has no plain GPIO outputs")

    def problems(self, specs: list[OutputSpec]) -> list[str]:
        """What is wrong with these outputs for this back-end, without touching hardware."""
        return []

    def close(self) -> None:
        """Release what the back-end shares between its outputs (a daemon connection)."""
        return None
