"""The machine `vzdivert setup` and `vzdivert doctor` look at: every system path goes
through ``Host.path`` so both run against a temporary root prefix in tests (and an image)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

USER = "vzdivert"
GPIO_GROUP = "gpio"
CONFIG = "/etc/vzdivert/vzdivert.toml"
UNIT = "/etc/systemd/system/vzdivert.service"
BOOT_CONFIGS = ("/boot/firmware/config.txt", "/boot/config.txt")  # Bookworm, then older


@dataclass(frozen=True)
class Host:
    root: Path = Path("/")

    @property
    def live(self) -> bool:
        """The running machine itself (not an image under a prefix)."""
        return self.root == Path("/")

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    def prefix_args(self, flag: str) -> list[str]:
        """``--prefix DIR``-style arguments for tools that support a root prefix."""
        return [] if self.live else [flag, str(self.root)]

    def enabled(self, wants_link: str) -> bool:
        """A unit's link in a .wants directory: absolute, so under a prefix it dangles."""
        link = self.path(wants_link)
        return link.is_symlink() or link.exists()

    @property
    def systemd_booted(self) -> bool:
        return self.path("/run/systemd/system").is_dir()

    def boot_config(self) -> Path:
        for p in BOOT_CONFIGS:
            if self.path(p).exists():
                return self.path(p)
        return self.path(BOOT_CONFIGS[0])

    def boot_overlays(self) -> set[str]:
        """``dtoverlay=`` names in config.txt (comments and parameters stripped)."""
        try:
            lines = self.boot_config().read_text(errors="replace").splitlines()
        except OSError:
            return set()
        out = set()
        for line in lines:
            key, _, value = line.split("#", 1)[0].strip().partition("=")
            if key.strip() == "dtoverlay" and value:
                out.add(value.split(",", 1)[0].strip())
        return out

    def model(self) -> str:
        try:
            return self.path("/proc/device-tree/model").read_text(errors="replace").strip("\0\n")
        except OSError:
            return ""

    def group_members(self, name: str) -> list[str] | None:
        """Members of a group from this root's /etc/group; None when there is no such group."""
        for line in _lines(self.path("/etc/group")):
            parts = line.split(":")
            if len(parts) >= 4 and parts[0] == name:
                return [m for m in parts[3].split(",") if m]
        return None

    def group_id(self, name: str) -> int | None:
        for line in _lines(self.path("/etc/group")):
            parts = line.split(":")
            if len(parts) >= 3 and parts[0] == name and parts[2].isdigit():
                return int(parts[2])
        return None

    def user_exists(self, name: str) -> bool:
        return any(line.split(":", 1)[0] == name for line in _lines(self.path("/etc/passwd")))


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()
    except OSError:
        return []


def shipped_file(name: str) -> Path:
    """A file of the repository's etc/ (installed as vzdivert/etc/, see pyproject.toml)."""
    here = Path(__file__).resolve().parent
    for base in (here / "etc", here.parent / "etc"):  # installed, then a source checkout
        if (base / name).is_file():
            return base / name
    raise FileNotFoundError(f"{name} is not part of this installation")


def raw_config(path: Path) -> dict[str, Any]:
    """The config file as plain TOML, for keys other versions may not know (``[tank]``)."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def tank_sensor(raw: dict[str, Any]) -> str:
    """The configured ``[tank] sensor`` (empty when none): read defensively, the key is
    optional and may not exist in this version's schema."""
    tank = raw.get("tank")
    value = tank.get("sensor", "") if isinstance(tank, dict) else ""
    if not isinstance(value, str) or value.strip().lower() in ("", "none", "off"):
        return ""
    return value.strip()
