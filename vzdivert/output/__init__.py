"""The output layer shared by the worker, the supervisor, ``safe-off``, ``check-config`` and
the demo: back-ends chosen by name from one table, every output of the system described by
the config, and one call that puts all of them in their safe state."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vzdivert.output.base import (
    Backend,
    FrequencyUnsupported,
    Output,
    OutputError,
    OutputSpec,
    Switch,
)

__all__ = ["Backend", "FrequencyUnsupported", "Output", "OutputError", "OutputSpec", "Switch",
           "BACKENDS", "PWM_NAME", "BYPASS_NAME", "relay_output", "bypass_load", "load_names",
           "backend", "output_specs",
           "OutputSet", "open_output", "open_outputs", "config_problems", "force_off"]

#: ``[output] driver`` -> the back-end class; imported on use, so the worker loads only its own
BACKENDS: dict[str, str] = {
    "pigpio": "vzdivert.output.pigpio_out:PigpioBackend",
    "sysfs": "vzdivert.output.sysfs:SysfsBackend",
    "sim": "vzdivert.output.sim:SimBackend",
}

PWM_NAME = "load"  # the ``[output]``/``[load]`` PWM output, the system's primary load
BYPASS_NAME = "bypass"  # ``[load] bypass_gpio``: bridges the PWM load's SSR at 100 %


def backend(cfg: Any, runtime_dir: str | Path) -> Backend:
    name = cfg.output.driver
    try:
        module, _, cls = BACKENDS[name].partition(":")
    except KeyError:
        raise OutputError(f"output.driver: unknown driver {name!r} "
                          f"(known: {', '.join(BACKENDS)})") from None
    return getattr(importlib.import_module(module), cls)(runtime_dir)


def output_specs(cfg: Any) -> list[OutputSpec]:
    """Every output the config describes: the PWM load first, then its bypass, then the
    relays in file order (named ``relay:<name>``)."""
    specs = [OutputSpec(PWM_NAME, "pwm", cfg.output.gpio, cfg.output)]
    if cfg.load.bypass_gpio >= 0:
        specs.append(OutputSpec(BYPASS_NAME, "switch", cfg.load.bypass_gpio, cfg.output))
    specs += [OutputSpec(relay_output(r.name), "switch", r.gpio, cfg.output, r.active_low)
              for r in cfg.relays]
    return specs


def relay_output(name: str) -> str:
    return f"relay:{name}"


def bypass_load(pwm_load: str) -> str:
    """The bypass's name among the loads (state, dashboard, MQTT, metrics)."""
    return f"{pwm_load} bypass"


def load_names(cfg: Any) -> list[tuple[str, str]]:
    """(name, kind) of every load the config describes, in the order the state lists them."""
    loads = [(cfg.load.name, "pwm")]
    if cfg.load.bypass_gpio >= 0:
        loads.append((bypass_load(cfg.load.name), "bypass"))
    return loads + [(r.name, "relay") for r in cfg.relays]


class OutputSet:
    """All outputs of the system, by name, opened through one back-end."""

    def __init__(self, back: Backend, outputs: dict[str, Output]):
        self.backend = back
        self.outputs = outputs

    def __getitem__(self, name: str) -> Output:
        return self.outputs[name]

    def __iter__(self) -> Iterator[Output]:
        return iter(self.outputs.values())

    def items(self) -> Iterator[tuple[str, Output]]:
        return iter(self.outputs.items())

    def all_off(self) -> list[str]:
        """Every output to its safe state; one failing never stops the others. Returns one
        message per output that could not be switched off (empty: all off)."""
        failed = []
        for name, output in self.outputs.items():
            try:
                output.off()
            except Exception as exc:  # noqa: BLE001 -- the next output must still go off
                failed.append(f"{name}: {exc}")
        return failed

    def close(self) -> None:
        for output in self.outputs.values():
            try:
                output.close()
            except Exception:  # noqa: BLE001 -- closing never changes an output
                pass
        self.backend.close()

    def describe(self) -> str:
        return "; ".join(o.describe() for o in self.outputs.values())


def open_outputs(cfg: Any, runtime_dir: str | Path) -> OutputSet:
    """Open every configured output without changing what any of them does. Raises
    OutputError (and leaves nothing open) if one cannot be opened."""
    back = backend(cfg, runtime_dir)
    outputs: dict[str, Output] = {}
    try:
        for spec in output_specs(cfg):
            outputs[spec.name] = back.pwm(spec) if spec.kind == "pwm" else back.switch(spec)
    except BaseException:
        OutputSet(back, outputs).close()
        raise
    return OutputSet(back, outputs)


def open_output(cfg: Any, runtime_dir: str | Path) -> Output:
    """Just the PWM load's output (tools that step only that load)."""
    spec = output_specs(cfg)[0]
    return backend(cfg, runtime_dir).pwm(spec)


def config_problems(cfg: Any) -> list[str]:
    """Driver-specific config checks that need no hardware (for run and check-config)."""
    try:
        back = backend(cfg, "/nonexistent")
    except OutputError as exc:
        return [str(exc)]
    return back.problems(output_specs(cfg))


def force_off(cfg: Any, runtime_dir: str | Path) -> None:
    """Drive every configured output to its safe state and close them: for the supervisor (a
    worker died or hung), ``vzdivert safe-off`` (systemd's ExecStopPost) and start-up.
    Outputs that open are switched off even if others fail; raises OutputError naming every
    output that may still be on."""
    back = backend(cfg, runtime_dir)
    problems = []
    try:
        for spec in output_specs(cfg):
            try:
                output = back.pwm(spec) if spec.kind == "pwm" else back.switch(spec)
            except OutputError as exc:
                problems.append(f"{spec.name}: {exc}")
                continue
            try:
                output.off()
            except OutputError as exc:
                problems.append(f"{spec.name}: {exc}")
            finally:
                output.close()
    finally:
        back.close()
    if problems:
        raise OutputError("; ".join(problems))
