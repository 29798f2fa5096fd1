"""Secrets stay out of check-config output, config errors and forward logs (issue 16
item 7)."""

from __future__ import annotations

import base64
import logging
import socket
from pathlib import Path

import pytest
from syshelp import wait_for
from test_config import run_cli

from vzdivert.config import ConfigError, validate
from vzdivert.ingest.forward import Forwarder
from vzdivert.ingest.stats import IngestStats
from vzdivert.redact import mask_url


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nobody listens here once closed


def test_mask_url() -> None:
    assert mask_url("http://vz:hunter2@nas:8086/write?db=vz&u=vz&p=hunter3&token=t0k") == \
        "http://vz:***@nas:8086/write?db=vz&u=vz&p=***&token=***"
    assert mask_url("https://nas/api/v2/write?org=home&bucket=vz") == \
        "https://nas/api/v2/write?org=home&bucket=vz"


def test_check_config_masks_the_forward_url(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[ingest]\nforward_url = "http://vz:hunter2@127.0.0.1:8086/write?db=vz'
                   '&p=hunter3&token=hunter4"\n')
    result = run_cli("check-config", str(cfg))
    assert result.returncode == 0, result.stderr
    assert "hunter" not in result.stdout and "vz:***@127.0.0.1:8086" in result.stdout


def test_a_secret_of_the_wrong_type_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as exc:
        validate({"webui": {"password": 123456789}, "ingest": {"token": ["hunter5"]}})
    assert "123456789" not in str(exc.value) and "hunter5" not in str(exc.value)
    assert "webui.password: expected a string, got a value of type int" in str(exc.value)


def test_url_credentials_become_basic_auth_and_failures_log_no_secret(caplog) -> None:
    url = f"http://vz:hunter2@127.0.0.1:{closed_port()}/write?db=vz&p=hunter3"
    stats = IngestStats()
    with caplog.at_level(logging.WARNING, logger="vzdivert.ingest"):
        fwd = Forwarder(url, stats, timeout_s=1.0)
        assert fwd.headers["Authorization"] == "Basic " + base64.b64encode(
            b"vz:hunter2").decode()
        fwd.submit(b"m v=1\n", "ms")
        wait_for(lambda: stats.counts["forward_failed"] >= 1, 5, what="the forward failing")
        wait_for(lambda: "forwarding to" in caplog.text, 5, what="the warning")
    assert "hunter" not in caplog.text and "vz:" not in caplog.text
