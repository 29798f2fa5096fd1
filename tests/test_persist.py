"""Atomic persistence: a kill -9 at any moment leaves the old or the new file, never junk."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from vzdivert.persist import read_json, write_json
from vzdivert.settings import SettingsStore

WRITER = """
import sys
from vzdivert.persist import write_json
path = sys.argv[1]
i = 0
print("go", flush=True)
while True:
    i += 1
    write_json(path, {"settings": {"target_w": i, "pad": "x" * 20000}, "changes": []})
"""


def test_roundtrip_and_missing(tmp_path: Path) -> None:
    assert read_json(tmp_path / "none.json", {"a": 1}) == {"a": 1}
    write_json(tmp_path / "s.json", {"b": 2})
    assert read_json(tmp_path / "s.json") == {"b": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]  # no temp files left


def test_kill_9_during_saves_never_corrupts(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    write_json(path, {"settings": {"target_w": 0}, "changes": []})
    for round_ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)],
                                stdout=subprocess.PIPE)
        assert proc.stdout.readline() == b"go\n"
        before = json.loads(path.read_text())["settings"]["target_w"]
        deadline = time.monotonic() + 5
        while json.loads(path.read_text())["settings"]["target_w"] <= before + round_:
            assert time.monotonic() < deadline, "writer made no progress"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        data = json.loads(path.read_text())  # must parse: old or new, never partial
        assert data["settings"]["target_w"] >= before
        assert SettingsStore(tmp_path).load()["settings"]["target_w"] >= before
