"""InfluxDB line protocol for the ingest: parse write bodies into points, format points back.

Accepts and rejects what InfluxDB 1.x does, with its values and error texts (checked
against a real influxd in tests/test_influxdb_differential.py). Fast paths take the usual
lines; anything else goes to ingest.influx_scanner, a port of InfluxDB's own scanner.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

from vzdivert.ingest.influx_scanner import (
    BOOLS,
    GROUP1,
    INT64_MAX,
    INT64_MIN,
    MAX_KEY_BYTES,
    MAX_TIME_NS,
    MIN_TIME_NS,
    TIME_RANGE_ERROR,
    UINT64_MAX,
    UNESCAPE_STRING,
    FieldValue,
    Unsigned,
    parse_point,
    scan_line,
)

__all__ = [
    "PRECISIONS",
    "FieldValue",
    "LineError",
    "Point",
    "Unsigned",
    "format_point",
    "parse",
    "parse_batches",
    "parse_ordered",
]

# Precision names of InfluxDB 1.x's /write ("n" and "ns" are the same) -> ns per unit.
PRECISIONS: dict[str, int] = {
    "ns": 1,
    "n": 1,
    "u": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


@dataclass(slots=True, frozen=True)
class Point:
    measurement: str
    tags: dict[str, str]
    fields: dict[str, FieldValue]  # int fields written as 5u are Unsigned
    time_ns: int | None  # None: the line had no timestamp (InfluxDB would use arrival time)


@dataclass(slots=True, frozen=True)
class LineError:
    line: int  # 1-based line number in the body where the bad line starts
    text: str  # the line as InfluxDB quotes it (leading whitespace and line end removed)
    reason: str  # InfluxDB's reason text, e.g. "invalid number"


def parse(body: bytes | str, precision: str = "ns") -> tuple[list[Point], list[LineError]]:
    """Parse a write body. A bad line becomes a LineError; the lines around it still parse.

    Blank lines and # comments are skipped; invalid UTF-8 becomes U+FFFD. Two deliberate
    extensions over InfluxDB 1.x: lines may end in CRLF, and unsigned integers (`5u`, the
    InfluxDB 2.x syntax) are accepted. Raises ValueError only for an unknown precision.
    """
    points: list[Point] = []
    errors: list[LineError] = []
    for _ in _parse_into(body, precision, points, errors):
        pass
    return points, errors


def parse_batches(body: bytes | str, precision: str = "ns", batch_lines: int = 2048
                  ) -> Iterator[tuple[list[Point], list[LineError]]]:
    """parse() in slices of about ``batch_lines`` lines, so a large write never holds all
    its points at once (a point costs ~20x its line). Line numbers count from the body."""
    points: list[Point] = []
    errors: list[LineError] = []
    for _ in _parse_into(body, precision, points, errors, batch_lines):
        yield points[:], errors[:]
        points.clear()
        errors.clear()
    if points or errors:
        yield points, errors


def parse_ordered(body: bytes | str, precision: str = "ns") -> list[Point | LineError]:
    """parse(), with points and errors in one list in the order of the body."""
    results: list[Point | LineError] = []
    for _ in _parse_into(body, precision, results, results):
        pass
    return results


def _parse_into(body: bytes | str, precision: str, points: list, errors: list,
                batch_lines: int = 0) -> Iterator[None]:
    """Appends to ``points`` and ``errors``; with ``batch_lines``, yields about every that
    many lines so the caller can take (and clear) what has been parsed so far."""
    try:
        mult = PRECISIONS[precision]
    except KeyError:
        raise ValueError(f"invalid precision {precision!r} (use n, u, ms, s, m or h)") from None
    keys: dict[str, tuple[str, dict[str, str]]] = {}
    raw = isinstance(body, bytes | bytearray)
    if raw:
        simple = b"\r" not in body and not any(c in body for c in _EXACT_ONLY_BYTES)
    else:
        simple = "\r" not in body and not any(c in body for c in _EXACT_ONLY)
    if simple:
        # The usual body (vzlogger's): every line ends at its newline, str.split does.
        lineno = 1
        for lines in _line_slices(body, batch_lines * 64 if batch_lines else 0):
            for i, line in enumerate(lines, lineno):
                if not line:
                    continue
                result = _parse_fast(line, mult, keys)
                if result is None:
                    line = line.lstrip(" ")
                    if not line or line[0] == "#":
                        continue
                    result = _parse_exact(line, mult)
                if result.__class__ is Point:
                    points.append(result)
                else:
                    errors.append(LineError(i, line, result))
            lineno += len(lines)
            if batch_lines:
                yield
        return

    text = body.decode("utf-8", "replace") if raw else body
    masked_keys: dict[str, tuple[str, dict[str, str]]] = {}
    n = len(text)
    pos = 0
    lineno = 1
    while pos < n:
        end = text.find("\n", pos)
        if end < 0:
            end = n
        line = text[pos:end]
        spanned = 1
        if line.endswith("\r"):
            line = line[:-1]  # CRLF: an extension, InfluxDB 1.x rejects such a line
        tricky = '"' in line or "\\" in line
        result = None
        if line and "\t" not in line and "\0" not in line:
            if tricky:
                result = _parse_masked(line, mult, masked_keys)
            else:
                result = _parse_fast(line, mult, keys)
        if result is None:
            if tricky:
                # A quote or backslash may carry the line past this newline.
                end = scan_line(text, pos)
                line = text[pos:end]
                spanned = line.count("\n") + 1
                if line.endswith("\n"):
                    line = line[:-1]  # an unclosed quote ran to the end of the body
                if line.endswith("\r"):
                    line = line[:-1]
            line = line.lstrip(" \t\0")
            if line and line[0] != "#":
                result = _parse_exact(line, mult)
        if result is not None:
            if result.__class__ is Point:
                points.append(result)
            else:
                errors.append(LineError(lineno, line, result))
        lineno += spanned
        pos = end + 1
        if batch_lines and len(points) + len(errors) >= batch_lines:
            yield


def _line_slices(body: bytes | bytearray | str, step: int) -> Iterator[list[str]]:
    """The lines of a body whose newlines all end lines, about ``step`` bytes at a time
    (0: all at once), so a large body is never held as text and a list of every line. Bytes
    are cut at a newline, never inside a UTF-8 sequence, and decoded slice by slice."""
    if not isinstance(body, bytes | bytearray):
        yield body.split("\n")
        return
    n, pos = len(body), 0
    while pos < n:
        end = body.find(b"\n", pos + step) if step else -1
        end = n if end < 0 else end
        yield body[pos:end].decode("utf-8", "replace").split("\n")
        pos = end + 1


def _parse_exact(line: str, mult: int) -> Point | str:
    result = parse_point(line, mult)
    return result if isinstance(result, str) else Point(*result)


# --- fast paths -------------------------------------------------------------------------

_EXACT_ONLY = ('"', "\\", "\t", "\0")  # a line holding one of these skips _parse_fast
_EXACT_ONLY_BYTES = tuple(c.encode() for c in _EXACT_ONLY)
_NUMBER_START = frozenset("-.0123456789")
_DIGITS_DOT = frozenset("0123456789.")
_INF, _NEG_INF = math.inf, -math.inf
_FAST_MAX_LEN = MAX_KEY_BYTES // 4  # a shorter line is within the key limit, even in UTF-8


class _PointBuilder:
    """Point's slot layout without the frozen __setattr__: the fast path fills one and
    switches its class, half the cost of Point's own __init__."""

    __slots__ = ("measurement", "tags", "fields", "time_ns")


assert _PointBuilder.__slots__ == Point.__slots__
_new = object.__new__


def _fast_key(key: str, unmask: bool) -> tuple[str, dict[str, str]] | None:
    """Measurement and tags of a key without escapes (or with masked ones), else None."""
    if "," not in key:
        if not key or key[0] == "#":
            return None
        return (key.translate(_UNMASK_NAME) if unmask else key), {}
    kparts = key.split(",")
    measurement = kparts[0]
    if not measurement or measurement[0] == "#":
        return None
    tags = {}
    for pair in kparts[1:]:
        k, _, v = pair.partition("=")
        if not k or not v or "=" in v:
            return None
        tags[k] = v
    if len(tags) != len(kparts) - 1:
        return None
    if unmask:
        measurement = measurement.translate(_UNMASK_NAME)
        tags = {k.translate(_UNMASK_TAG): v.translate(_UNMASK_TAG) for k, v in tags.items()}
    if "time" in tags:
        return None
    return measurement, tags


def _parse_fast(
    line: str, mult: int, keys: dict, strings: list[str] | None = None, unmask: bool = False
) -> Point | None:
    """Parse a line free of quotes, backslashes, tabs and NULs. None means "ask the exact
    path", which also words every error: this must never accept what that rejects.
    keys caches _fast_key() per body (a batch repeats the same few series keys).
    strings, unmask: from _parse_masked, the string values it took out of the line and
    whether it masked escape pairs."""
    parts = line.split(" ")
    if len(parts) == 3:
        key, field_text, ts = parts
    elif len(parts) == 2:
        key, field_text = parts
        ts = None
    else:
        return None
    if len(line) > _FAST_MAX_LEN:
        return None
    cached = keys.get(key)
    if cached is None:
        cached = _fast_key(key, unmask)
        if cached is None:
            return None
        keys[key] = cached
    ascii = line.isascii()  # else str.isdigit() and float() would take non-ASCII digits
    fields = {}
    fparts = field_text.split(",") if "," in field_text else (field_text,)
    used_strings = 0
    for pair in fparts:
        k, _, v = pair.partition("=")
        if not k or not v or "=" in v:
            return None
        if unmask:
            k = k.translate(_UNMASK_NAME)
        last = v[-1]
        if v[0] in _NUMBER_START:
            if last in _DIGITS_DOT:
                # float() takes more than InfluxDB: "1_0", "-inf", " 1", non-ASCII digits.
                # Of those, with these first and last characters, only "1_0" and non-ASCII
                # remain; InfluxDB's grammar is otherwise a subset of float()'s.
                if "_" in v or not (ascii or v.isascii()):
                    return None
                try:
                    f = float(v)
                except ValueError:
                    return None
                if f == _INF or f == _NEG_INF:
                    return None
                fields[k] = f
            elif last == "i":
                digits = v[1:-1] if v[0] == "-" else v[:-1]
                if not digits.isdigit() or not (ascii or digits.isascii()):
                    return None
                num = int(v[:-1])
                if len(digits) > 18 and not INT64_MIN <= num <= INT64_MAX:
                    return None
                fields[k] = num
            elif last == "u":
                digits = v[:-1]
                if not digits.isdigit() or not (ascii or digits.isascii()):
                    return None
                num = Unsigned(digits)
                if num > UINT64_MAX:
                    return None
                fields[k] = num
            else:
                return None
        else:
            b = BOOLS.get(v)
            if b is not None:
                fields[k] = b
            elif strings and len(v) == 1 and _STRING_MASK <= v <= _STRING_MASK_END:
                text = strings[ord(v) - _STRING_MASK_ORD]
                if "\\" in text:
                    text = UNESCAPE_STRING.sub(GROUP1, text)
                fields[k] = text
                used_strings += 1
            else:
                return None
    if len(fields) != len(fparts) or "time" in fields:
        return None  # repeated fields and the time field: the exact path knows the rules
    if strings and used_strings != len(strings):
        return None  # a masked string stood somewhere other than a field value
    if ts is not None:
        digits = ts if ts[:1] != "-" else ts[1:]
        if not digits.isdigit() or not (ascii or digits.isascii()) or len(digits) > 19:
            return None
        t = int(ts) * mult
        if not MIN_TIME_NS <= t <= MAX_TIME_NS:
            return None
    else:
        t = None
    p = _new(_PointBuilder)
    p.measurement, tags = cached
    p.tags = tags.copy() if tags else {}
    p.fields = fields
    p.time_ns = t
    p.__class__ = Point
    return p


# Masking: string field values and escape pairs become single private-use characters, so
# that lines from Telegraf & co. ("a b" strings, "us\ midwest" tags) take the fast path.
_HAS_MASK = re.compile("[\ue000-\ue01f]")
_UNMASK_NAME = str.maketrans({"\ue000": ",", "\ue001": " ", "\ue002": "=", "\ue003": '"'})
_UNMASK_TAG = str.maketrans({"\ue000": ",", "\ue001": " ", "\ue002": "=", "\ue003": '\\"'})
_STRING_MASK, _STRING_MASK_END = "\ue010", "\ue01f"
_STRING_MASK_ORD = ord(_STRING_MASK)
# A string value: after an '=' without a backslash, backslash pairs inside, then the end
# of the field.
_STRING_VALUE = re.compile(r'(?<!\\)="([^"\\]*(?:\\[\s\S][^"\\]*)*)"(?=[, ]|\Z)')


def _parse_masked(line: str, mult: int, keys: dict) -> Point | None:
    """The fast path for a line with quotes or backslashes, if they are used plainly: every
    quote opens or closes a string field value, and outside those no backslash follows a
    backslash. On such a line InfluxDB's two escape rules (a backslash escapes the next
    character; a character is escaped if a backslash precedes it) agree, and it ends at its
    newline."""
    if line[0] == " " or line[0] == "#" or _HAS_MASK.search(line):
        return None
    strings: list[str] = []
    if '"' in line:

        def mask(m: re.Match) -> str:
            strings.append(m.group(1))
            return "=" + chr(_STRING_MASK_ORD + len(strings) - 1)

        line = _STRING_VALUE.sub(mask, line, 16)
        if '"' in line:
            return None
    unmask = "\\" in line
    if unmask:
        if "\\\\" in line:
            return None
        line = (
            line.replace("\\,", "\ue000")
            .replace("\\ ", "\ue001")
            .replace("\\=", "\ue002")
            .replace('\\"', "\ue003")
        )
    return _parse_fast(line, mult, keys, strings, unmask)


# --- formatting -------------------------------------------------------------------------

_ESCAPE_NAME = str.maketrans({",": r"\,", " ": r"\ ", "=": r"\=", '"': r"\""})
_ESCAPE_TAG = str.maketrans({",": r"\,", " ": r"\ ", "=": r"\="})
_ESCAPE_STRING = str.maketrans({"\\": "\\\\", '"': r"\""})
_ODD_BACKSLASHES = re.compile(r"(?<!\\)(?:\\\\)*\\[, =]")


def format_point(p: Point) -> str:
    """One line of line protocol (no newline), time in ns; parse() of it gives p back.

    Raises ValueError for what line protocol cannot express: empty names or tag values,
    names ending in a backslash or holding a newline, a measurement starting with a tab,
    NUL or '#', a first field key starting with a tab or NUL, a field key with an odd run
    of backslashes before ',', ' ' or '=', a tag or field named "time", no fields, NaN or
    infinite floats, integers or times out of range.
    """
    m = p.measurement
    _check_name("measurement", m)
    if m[0] in "\t\0#":
        raise ValueError(f"a measurement cannot start with {m[0]!r}")
    out = [m.translate(_ESCAPE_NAME)]
    for k, v in p.tags.items():
        _check_name("tag key", k)
        _check_name("tag value", v)
        if k == "time":
            raise ValueError("a tag cannot be named 'time'")
        out.append(f",{k.translate(_ESCAPE_TAG)}={v.translate(_ESCAPE_TAG)}")
    if not p.fields:
        raise ValueError("a point needs at least one field")
    sep = " "
    for k, v in p.fields.items():
        _check_name("field key", k)
        if k == "time":
            raise ValueError("a field cannot be named 'time'")
        if "\\" in k and _ODD_BACKSLASHES.search(k):
            # InfluxDB scans field keys in backslash pairs, then splits them by the
            # character before: an odd run of backslashes before , space = reads back wrong.
            raise ValueError(f"field key {k!r}: odd backslashes before ',', ' ' or '='")
        if sep == " " and k[0] in "\t\0":
            raise ValueError("the first field key cannot start with a tab or NUL")
        out.append(f"{sep}{k.translate(_ESCAPE_NAME)}={_format_value(v)}")
        sep = ","
    if p.time_ns is not None:
        if not MIN_TIME_NS <= p.time_ns <= MAX_TIME_NS:
            raise ValueError(TIME_RANGE_ERROR)
        out.append(f" {int(p.time_ns)}")
    return "".join(out)


def _check_name(what: str, s: str) -> None:
    if not s:
        raise ValueError(f"empty {what}")
    if s[-1] == "\\" or "\n" in s:
        raise ValueError(f"{what} {s!r}: cannot end in a backslash or hold a newline")


def _format_value(v: FieldValue) -> str:
    if v.__class__ is bool:
        return "true" if v else "false"
    if isinstance(v, Unsigned):
        if not 0 <= v <= UINT64_MAX:
            raise ValueError(f"unsigned value out of range: {int(v)}")
        return f"{int(v)}u"
    if isinstance(v, int):
        if not INT64_MIN <= v <= INT64_MAX:
            raise ValueError(f"integer value out of range: {v}")
        return f"{int(v)}i"
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"{v} is not a valid field value")
        return repr(v)
    if isinstance(v, str):
        return f'"{v.translate(_ESCAPE_STRING)}"'
    raise ValueError(f"unsupported field type {type(v).__name__}")
