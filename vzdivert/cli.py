"""The `vzdivert` command: run, demo, check-config, parse, safe-off and friends."""

from __future__ import annotations

import argparse
import sys

from vzdivert import config as configmod
from vzdivert.config import ConfigError


def load_or_exit(path: str) -> configmod.Config:
    """The config with the output driver's checks, or exit 2 naming each bad key."""
    from vzdivert.supervisor.service import load_checked

    try:
        return load_checked(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from exc


def cmd_run(args: argparse.Namespace) -> int:
    from vzdivert.supervisor.service import run

    return run(args.config)


def cmd_demo(args: argparse.Namespace) -> int:
    from vzdivert.supervisor.demo import demo

    return demo(args)


def cmd_check_config(args: argparse.Namespace) -> int:
    cfg = load_or_exit(args.file)
    from vzdivert.redact import mask_url

    shown = {path: "***" if path.rpartition(".")[2] in configmod.SECRET_NAMES and value
             else mask_url(value) if path.endswith("_url") and value else value
             for path, value in cfg.values.items()}  # safe to paste into a forum post
    print(f"# {args.file}: valid. Effective configuration (secrets shown as ***):")
    print(configmod.render(configmod.Config(shown, cfg.source), comments=False), end="")
    return 0


def cmd_safe_off(args: argparse.Namespace) -> int:
    """For systemd's ExecStopPost (runs after crashes too) and for people at the console.
    Only the schema is checked: a driver-level problem (a relay's GPIO chip missing) must not
    keep the other outputs from going off; force_off names each one it could not reach."""
    from vzdivert import bus
    from vzdivert.output import OutputError, force_off

    try:
        cfg = configmod.load(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    runtime_dir = (args.runtime_dir or bus.find_runtime_dir(cfg.state.dir)
                   or bus.make_runtime_dir())
    try:
        force_off(cfg, runtime_dir)
    except OutputError as exc:
        print(f"vzdivert safe-off: FAILED, the output may still be on: {exc}", file=sys.stderr)
        return 1
    from vzdivert.output import output_specs

    pins = ", ".join(f"{s.name} (gpio {s.gpio})" for s in output_specs(cfg))
    print(f"vzdivert safe-off: {cfg.output.driver} outputs set to their safe state: {pins}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from vzdivert import calibrate

    return calibrate.run(load_or_exit(args.config), args.yes)


def cmd_hash_password(args: argparse.Namespace) -> int:
    """For `[webui] password`: store a hash instead of the plain text."""
    from vzdivert.webui.auth import main as auth_main

    return auth_main(["hash"])


def cmd_example_config(args: argparse.Namespace) -> int:
    print(configmod.render(), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vzdivert", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the diverter (what systemd starts)")
    p.add_argument("--config", required=True, help="TOML config file")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="the whole system on a simulated house, no hardware")
    p.add_argument("--port", type=int, default=8081, help="web UI port (default 8081)")
    p.add_argument("--ingest-port", type=int, default=0, help="ingest port (default: free)")
    p.add_argument("--state-dir", default="", help="keep settings here (default: temporary)")
    p.add_argument("--seconds", type=float, default=0, help="stop after this long (0: Ctrl-C)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("check-config", help="validate a config file, print the effective config")
    p.add_argument("file")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("safe-off", help="set every configured output to 0/off and exit")
    p.add_argument("--config", required=True)
    p.add_argument("--runtime-dir", default="", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_safe_off)

    p = sub.add_parser("calibrate", help="measure the load's rating and curve (needs surplus)")
    p.add_argument("--config", required=True)
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("hash-password", help="hash a web UI password for the config file")
    p.set_defaults(func=cmd_hash_password)

    p = sub.add_parser("example-config", help="print the commented example config")
    p.set_defaults(func=cmd_example_config)

    from vzdivert import settings_cmd

    p = sub.add_parser("settings", help="back up or restore the live settings (JSON file)")
    settings_cmd.add_arguments(p)
    p.set_defaults(func=settings_cmd.run)

    from vzdivert.ingest import parse_cmd

    p = sub.add_parser("parse", help="parse a line-protocol body from stdin, print JSON")
    parse_cmd.add_arguments(p)
    p.set_defaults(func=parse_cmd.run)

    from vzdivert import doctor, setup

    p = sub.add_parser("setup", help="install the service on this Pi (run with sudo)")
    setup.add_arguments(p)
    p.set_defaults(func=setup.run)
    p = sub.add_parser("doctor", help="check a running installation, one line per check")
    doctor.add_arguments(p)
    p.set_defaults(func=doctor.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())

