"""Helpers for the web UI tests: a whole `vzdivert run` with chosen [webui] keys, ready when
the UI answers through the supervisor (or, with ``need_worker``, when the loop runs too)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests
from syshelp import System

PASSWORD = "s3cret-pw"


class UISystem(System):
    def __init__(self, tmp: Path, webui: str = "", password: str | None = None,
                 need_worker: bool = False, output: str = 'driver = "sim"', extra: str = ""):
        super().__init__(tmp, output, extra)
        self.password, self.need_worker = password, need_worker
        if webui:
            text = self.config.read_text()
            self.config.write_text(text.replace("[webui]\n", f"[webui]\n{webui}\n", 1))
        self.base = f"http://127.0.0.1:{self.ui_port}"

    @property
    def basic(self) -> tuple[str, str] | None:
        return ("admin", self.password) if self.password else None

    def all_alive(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"supervisor exited {self.proc.returncode}:\n{self.logs()}")
        r = requests.get(self.base + "/api/settings", auth=self.basic, timeout=3)
        if r.status_code != 200:
            return False
        if not self.need_worker:
            return True
        state = requests.get(self.base + "/api/state", auth=self.basic, timeout=3).json()
        return all(p["alive"] for p in state["processes"].values()) and bool(state.get("ts"))

    def url(self, path: str) -> str:
        return self.base + path

    def saved_settings(self) -> dict[str, Any]:
        return json.loads((self.state_dir / "settings.json").read_text())["settings"]

    def restart(self) -> None:
        assert self.terminate() == 0
        self.log.close()
        self.start()


def local_session(system: UISystem) -> tuple[requests.Session, str]:
    """A browser-like client of a password-less UI: cookie jar plus its CSRF token."""
    s = requests.Session()
    info = s.get(system.url("/api/session"), timeout=3).json()
    assert info["csrf"] and info["can_edit"]
    return s, info["csrf"]
