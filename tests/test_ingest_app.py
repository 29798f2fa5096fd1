"""The write app in-process: whatever the body, an InfluxDB answer (never a 500), and
headers a real HTTP server can send."""

from __future__ import annotations

import io
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from vzdivert.ingest.auth import Auth
from vzdivert.ingest.channels import Channels, ChannelSpec
from vzdivert.ingest.server import WriteApp
from vzdivert.ingest.stats import IngestStats


def call(app: WriteApp, body: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/write",
               "QUERY_STRING": "db=vzlogger&precision=ms", "CONTENT_LENGTH": str(len(body)),
               "wsgi.input": io.BytesIO(body)}
    got: dict = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        got["status"], got["headers"] = status, headers

    data = b"".join(app(environ, start_response))
    return got["status"], got["headers"], data


def make_app(published: list) -> WriteApp:
    channels = Channels([ChannelSpec("grid", "leistung", "value")], stale_after_s=10)
    return WriteApp(["vzlogger"], channels, Auth(), IngestStats(), published.extend)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=60), st.text(max_size=60).map(str.encode),
                          st.sampled_from([b"leistung value=-5", b"\r\n", b"\n", b"#c\n",
                                           b"x,a=\xff b=1i", b'm s="\n"'])), max_size=8))
def test_any_body_gets_an_influx_answer(parts: list[bytes]) -> None:
    status, headers, data = call(make_app([]), b"\n".join(parts))
    assert status.split()[0] in ("204", "400")
    for _name, value in headers:
        assert value.isprintable()
        value.encode("latin-1")  # what a WSGI server can put on the wire
    if status.startswith("400"):
        assert json.loads(data)["error"]


def test_many_bad_lines_all_reported_in_the_body() -> None:
    status, headers, data = call(make_app([]), b"a b=\nc d=\nleistung value=1\n")
    assert status.startswith("400")
    error = json.loads(data)["error"]
    assert error.startswith("partial write: unable to parse 'a b=': missing field value\n")
    assert error.endswith("dropped=0")
    assert dict(headers)["X-Influxdb-Error"] == \
        "partial write: unable to parse 'a b=': missing field value"


def test_rejected_writes_warn_at_most_once_a_minute(caplog) -> None:
    app = make_app([])
    with caplog.at_level("WARNING", logger="vzdivert.ingest"):
        for _ in range(3):
            call(app, b"leistung value=\n")
        assert len(caplog.records) == 1 and "missing field value" in caplog.text
        app._warned_mono -= 61  # a minute later
        call(app, b"leistung value=\n")
    assert len(caplog.records) == 2
    assert "(2 more rejected writes since the last warning)" in caplog.records[1].getMessage()
