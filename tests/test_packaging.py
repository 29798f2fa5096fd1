"""One installed name: a wheel of this repository holds only the `vzdivert` package, and the
process folders import as `vzdivert.<process>` beside PyPI's unrelated `supervisor`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_installs_only_the_vzdivert_name(tmp_path: Path) -> None:
    src = tmp_path / "src"
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)],
                   check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("vzdivert-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"vzdivert"}
    for module in ("supervisor/arbiter.py", "rtworker/loop.py", "ingest/server.py",
                   "webui/app.py", "webui/static/index.html", "testing/pigpiod_emulator.py",
                   "webui/static/i18n/de.json", "etc/vzdivert.service"):
        assert f"vzdivert/{module}" in names


def test_pypi_supervisor_and_ours_both_import() -> None:
    code = ("import supervisor, supervisor.options, vzdivert.supervisor.arbiter as a\n"
            "assert 'vzdivert' not in supervisor.__file__, supervisor.__file__\n"
            "print(a.Arbiter.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd="/", check=True)
    assert out.stdout.strip() == "vzdivert.supervisor.arbiter"


def test_worker_runs_as_a_module_of_the_namespace() -> None:
    out = subprocess.run([sys.executable, "-m", "vzdivert.rtworker", "--help"],
                         capture_output=True, text=True, cwd="/", timeout=60)
    assert out.returncode == 0, out.stderr
    assert "--config" in out.stdout
