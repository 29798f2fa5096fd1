"""A reading out of a device's payload: a plain number, or a value (and optionally a
timestamp) at a dotted JSON path such as ``SML.Power`` or ``data.0.tuples.-1.1``. Errors
carry the reject reason the stats count."""

from __future__ import annotations

import json
import math
from typing import Any


class PayloadError(ValueError):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


def at_path(doc: Any, path: str) -> Any:
    """``doc`` followed along a dotted path (list indices may be negative)."""
    for part in path.split("."):
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.lstrip("-").isdigit() \
                and -len(doc) <= int(part) < len(doc):
            doc = doc[int(part)]
        else:
            raise PayloadError("path_missing", f"no {part!r} on the way to {path!r}")
    return doc


def number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PayloadError("not_numeric", f"{what} is not a number: {str(value)[:40]!r}")
    value = float(value)
    if not math.isfinite(value):
        raise PayloadError("not_finite", f"{what} is {value}")
    return value


def extract(payload: bytes, json_path: str = "", time_path: str = "") -> tuple[float, float | None]:
    """(value, timestamp in epoch seconds or None) from a payload; raises PayloadError."""
    if not json_path:
        try:
            value = float(payload.strip())
        except (ValueError, UnicodeDecodeError):
            raise PayloadError("not_numeric",
                               f"payload is not a number: {payload[:40]!r}") from None
        return number(value, "payload"), None
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise PayloadError("bad_json", f"payload is not JSON: {payload[:40]!r}") from None
    value = number(at_path(doc, json_path), json_path)
    if not time_path:
        return value, None
    return value, number(at_path(doc, time_path), time_path) / 1000.0
