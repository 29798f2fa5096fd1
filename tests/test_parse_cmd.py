"""`vzdivert parse` (ingest.parse_cmd): JSON lines out, exit status, run as a real process."""

import argparse
import io
import json
import os
import subprocess
import sys

from vzdivert.ingest import parse_cmd

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cmd(body: bytes, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vzdivert.ingest.parse_cmd", *args],
        input=body,
        capture_output=True,
        cwd=REPO,
        timeout=30,
    )


def test_vzlogger_body_exact_output_and_exit_0():
    body = (
        b"leistung,uuid=4a2677c0-0f1f-11ed-aa45-a39ab6e64720 value=-500.000000 1795475164222\n"
        b"leistung,uuid=4a2677c0-0f1f-11ed-aa45-a39ab6e64720 value=12.5 1795475165222\n"
    )
    r = run_cmd(body, "--precision", "ms")
    assert r.returncode == 0, r.stderr
    assert r.stderr == b""
    assert r.stdout.decode() == (
        '{"measurement": "leistung", "tags": {"uuid": "4a2677c0-0f1f-11ed-aa45-a39ab6e64720"}, '
        '"fields": {"value": -500.0}, "time": 1795475164222000000}\n'
        '{"measurement": "leistung", "tags": {"uuid": "4a2677c0-0f1f-11ed-aa45-a39ab6e64720"}, '
        '"fields": {"value": 12.5}, "time": 1795475165222000000}\n'
    )


def test_points_and_errors_in_input_order_and_exit_1():
    body = b"# comment\nm v=1 1\n\nm v=NaN 2\r\nm,t=a\\ b s=\"x\" 3\nbad\n"
    r = run_cmd(body)
    assert r.returncode == 1
    assert r.stdout.decode() == (
        '{"measurement": "m", "tags": {}, "fields": {"v": 1.0}, "time": 1}\n'
        '{"line": 4, "error": "invalid number"}\n'
        '{"measurement": "m", "tags": {"t": "a b"}, "fields": {"s": "x"}, "time": 3}\n'
        '{"line": 6, "error": "missing fields"}\n'
    )


def test_every_field_type_and_missing_time():
    body = 'wärme,ort=küche f=1.5,i=-3i,u=7u,b=TRUE,s="say \\"hi\\""\n'.encode()
    r = run_cmd(body)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode("utf-8") == (
        '{"measurement": "wärme", "tags": {"ort": "küche"}, '
        '"fields": {"f": 1.5, "i": -3, "u": 7, "b": true, "s": "say \\"hi\\""}, "time": null}\n'
    )


def test_empty_or_comment_only_body_prints_nothing_and_exits_0():
    for body in (b"", b"\n\n", b"# just a comment\n"):
        r = run_cmd(body)
        assert (r.returncode, r.stdout) == (0, b"")


def test_only_bad_lines():
    r = run_cmd(b"m\nm v=1 x\n")
    assert r.returncode == 1
    assert [json.loads(x) for x in r.stdout.decode().splitlines()] == [
        {"line": 1, "error": "missing fields"},
        {"line": 2, "error": "bad timestamp"},
    ]


def test_precision_changes_time():
    for precision, time_ns in (("ns", 7), ("u", 7000), ("s", 7 * 10**9), ("h", 7 * 3600 * 10**9)):
        r = run_cmd(b"m v=1 7\n", "--precision", precision)
        assert json.loads(r.stdout)["time"] == time_ns


def test_invalid_utf8_becomes_replacement_character():
    r = run_cmd(b"m,t=\xff v=1 1\n")
    assert r.returncode == 0
    assert json.loads(r.stdout)["tags"] == {"t": "\ufffd"}


def test_unknown_precision_is_a_usage_error():
    r = run_cmd(b"m v=1\n", "--precision", "us")
    assert r.returncode == 2
    assert r.stdout == b""
    assert b"invalid choice" in r.stderr


def test_run_with_an_outside_parser():
    # How vzdivert/cli.py uses it: its own subparser, add_arguments() and run().
    parser = argparse.ArgumentParser()
    parse_cmd.add_arguments(parser)
    out = io.StringIO()
    rc = parse_cmd.run(parser.parse_args(["--precision", "s"]), io.BytesIO(b"m v=2 3\n"), out)
    assert rc == 0
    assert out.getvalue() == (
        '{"measurement": "m", "tags": {}, "fields": {"v": 2.0}, "time": 3000000000}\n'
    )


def test_run_refuses_an_unchecked_precision():
    out = io.StringIO()
    assert parse_cmd.run(argparse.Namespace(precision="us"), io.BytesIO(b"m v=1\n"), out) == 2
    assert out.getvalue() == ""
