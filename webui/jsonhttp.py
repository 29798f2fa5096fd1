"""JSON in and out of the routes: every error is `{"errors": [...]}` (plus fields where
there are some) with a status code, and request bodies are bounded objects."""

from __future__ import annotations

import json
from typing import Any

from bottle import HTTPResponse, request

MAX_BODY_BYTES = 64 * 1024


def fail(status: int, *errors: str, headers: dict[str, str] | None = None,
         **extra: Any) -> HTTPResponse:
    body = json.dumps({"errors": list(errors), **extra})
    return HTTPResponse(body, status, {"Content-Type": "application/json",
                                       "Cache-Control": "no-store", **(headers or {})})


def read_json_object() -> dict[str, Any]:
    raw = request.body.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise fail(413, f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(raw or b"{}")
    except ValueError as exc:
        raise fail(400, f"body is not JSON: {exc}") from exc
    except RecursionError:
        raise fail(400, "body is not JSON we accept: nested too deeply") from None
    if not isinstance(body, dict):
        raise fail(400, "body must be a JSON object of setting name: value")
    return body
