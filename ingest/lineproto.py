"""InfluxDB 1.x line protocol: parse write bodies into points and format points back.

Accepts and rejects exactly what InfluxDB 1.x does (checked against a real influxd in
tests/test_influxdb_differential.py), with InfluxDB's error texts; see docs in parse().
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

# Precision names of InfluxDB 1.x's /write ("n" and "ns" are the same).
PRECISIONS: dict[str, int] = {
    "ns": 1,
    "n": 1,
    "u": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}

# InfluxDB reserves the two extreme int64 values at each end.
MIN_TIME_NS = -(2**63) + 2
MAX_TIME_NS = 2**63 - 2
_TIME_RANGE_ERROR = f"time outside range {MIN_TIME_NS} - {MAX_TIME_NS}"
_MAX_KEY_BYTES = 65535
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_UINT64_MAX = 2**64 - 1

FieldValue = float | int | bool | str


class Unsigned(int):
    """An unsigned integer field (`123u`); an int that remembers its line-protocol type."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Unsigned({int(self)})"


@dataclass(slots=True, frozen=True)
class Point:
    measurement: str
    tags: dict[str, str]
    fields: dict[str, FieldValue]
    time_ns: int | None  # None: the line had no timestamp (InfluxDB would use arrival time)


@dataclass(slots=True, frozen=True)
class LineError:
    line: int  # 1-based physical line number in the body where the bad line starts
    text: str  # the line as InfluxDB quotes it (leading whitespace and line end removed)
    reason: str  # InfluxDB's reason text, e.g. "invalid number"


_BOOLS = {
    "t": True, "T": True, "true": True, "True": True, "TRUE": True,
    "f": False, "F": False, "false": False, "False": False, "FALSE": False,
}  # fmt: skip
_NUMBER_START = frozenset("-.0123456789")
_FLOAT_CHARS = "0123456789.eE+-"
_SPECIAL = ('"', "\\", "\t", "\0", "\r")  # characters that need the slow, exact path
_FAST_MAX_LEN = _MAX_KEY_BYTES // 4  # shorter lines cannot exceed the key limit, even in UTF-8

# Unescaping as InfluxDB does it, per position (a backslash before anything else stays).
_UNESCAPE_NAME = re.compile(r'\\([,"  =])')  # measurement and field keys
_UNESCAPE_TAG = re.compile(r"\\([, =])")  # tag keys and values
_UNESCAPE_STRING = re.compile(r'\\(["\\])')  # string field values


def parse(body: bytes | str, precision: str = "ns") -> tuple[list[Point], list[LineError]]:
    """Parse a write body; bad lines become LineErrors, the good ones around them still parse.

    Invalid UTF-8 is replaced by U+FFFD. Two deliberate extensions over InfluxDB 1.x: a line
    may end in CRLF, and unsigned integers (`5u`, InfluxDB 2.x syntax) are accepted.
    Raises ValueError only for an unknown precision.
    """
    try:
        mult = PRECISIONS[precision]
    except KeyError:
        raise ValueError(f"invalid precision {precision!r} (use n, u, ms, s, m or h)") from None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes | bytearray) else body
    points: list[Point] = []
    errors: list[LineError] = []
    plain = not any(c in text for c in _SPECIAL)
    lines = enumerate(text.split("\n"), 1) if plain else _split_lines(text)
    for lineno, line in lines:
        result = _parse_fast(line, mult) if plain and line else None
        if result is None:
            if not plain:
                if line.endswith("\r"):
                    line = line[:-1]
                line = line.lstrip(" \t\0")
            elif line:
                line = line.lstrip(" ")
            if not line or line[0] == "#":
                continue
            result = _parse_exact(line, mult)
        if result.__class__ is Point:
            points.append(result)
        else:
            errors.append(LineError(lineno, line, result))
    return points, errors


def _split_lines(text: str):
    """Yield (line number, line) as InfluxDB splits: a newline inside a string field value
    or after a backslash does not end the line."""
    n = len(text)
    pos = 0
    lineno = 1
    while pos < n:
        end = text.find("\n", pos)
        if end < 0:
            end = n
        if "\\" in text[pos:end] or '"' in text[pos:end]:
            end = _scan_line(text, pos)
        line = text[pos:end]
        yield lineno, line
        lineno += line.count("\n") + 1
        pos = end + 1


def _scan_line(buf: str, i: int) -> int:
    """Index of the newline that ends the line starting at i (models.scanLine)."""
    n = len(buf)
    quoted = in_fields = False
    equals = commas = 0
    while i < n:
        c = buf[i]
        if c == "\\":
            i += 2
            continue
        if c == " ":
            in_fields = True
        if in_fields:
            if not quoted and c == "=":
                equals += 1
                i += 1
                continue
            if not quoted and c == ",":
                commas += 1
                i += 1
                continue
            if c == '"' and equals > commas:
                quoted = not quoted
                i += 1
                continue
        if c == "\n" and not quoted:
            break
        i += 1
    return min(i, n)


def _parse_fast(line: str, mult: int) -> Point | None:
    """Parse a line free of quotes, backslashes, tabs and NULs; None means "ask _parse_exact",
    which also produces every error text. Must never accept what _parse_exact rejects."""
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
    tags: dict[str, str] = {}
    if "," in key:
        kparts = key.split(",")
        measurement = kparts[0]
        for pair in kparts[1:]:
            k, _, v = pair.partition("=")
            if not k or not v or "=" in v:
                return None
            tags[k] = v
        if len(tags) != len(kparts) - 1 or "time" in tags:
            return None
    else:
        measurement = key
    if not measurement or measurement[0] == "#":
        return None
    fields: dict[str, FieldValue] = {}
    fparts = field_text.split(",")
    for pair in fparts:
        k, _, v = pair.partition("=")
        if not k or not v or "=" in v:
            return None
        if v[0] in _NUMBER_START:
            last = v[-1]
            if last == "i":
                digits = v[1:-1] if v[0] == "-" else v[:-1]
                if not (digits.isdigit() and digits.isascii()):
                    return None
                num = int(v[:-1])
                if not _INT64_MIN <= num <= _INT64_MAX:
                    return None
                fields[k] = num
            elif last == "u":
                digits = v[:-1]
                if not (digits.isdigit() and digits.isascii()):
                    return None
                num = int(digits)
                if num > _UINT64_MAX:
                    return None
                fields[k] = Unsigned(num)
            else:
                if v.strip(_FLOAT_CHARS):
                    return None
                try:
                    f = float(v)
                except ValueError:
                    return None
                if f in (math.inf, -math.inf):
                    return None
                fields[k] = f
        else:
            b = _BOOLS.get(v)
            if b is None:
                return None
            fields[k] = b
    if len(fields) != len(fparts) or "time" in fields:
        return None
    if ts is None:
        return Point(measurement, tags, fields, None)
    digits = ts[1:] if ts[:1] == "-" else ts
    if not (digits.isdigit() and digits.isascii()):
        return None
    t = int(ts)
    if not _INT64_MIN <= t <= _INT64_MAX:
        return None
    t *= mult
    if not MIN_TIME_NS <= t <= MAX_TIME_NS:
        return None
    return Point(measurement, tags, fields, t)


def _parse_exact(buf: str, mult: int) -> Point | str:
    """A port of InfluxDB 1.x models.parsePoint plus the checks its shard applies on write
    (time tag/field, field type conflict); returns a Point or InfluxDB's reason text."""
    n = len(buf)
    # Measurement: ends at a comma or space not preceded by a backslash.
    if buf[0] == ",":
        return "missing measurement"
    i = 0
    while True:
        i += 1
        if i >= n:
            return "missing fields"
        if buf[i - 1] == "\\":
            continue
        if buf[i] == "," or buf[i] == " ":
            break
    name_end = i
    raw_tags: list[tuple[str, str]] = []
    if buf[i] == ",":
        i += 1
        while True:
            key_start = i
            if i >= n or buf[i] in " ,=":
                return "missing tag key"
            while True:
                i += 1
                if i >= n:
                    return "missing tag value"
                if buf[i - 1] != "\\":
                    c = buf[i]
                    if c == " " or c == ",":
                        return "missing tag value"
                    if c == "=":
                        break
            key_end = i
            i += 1
            if i >= n or buf[i] == "," or buf[i] == " ":
                return "missing tag value"
            value_start = i
            while True:
                i += 1
                if i >= n:
                    return "missing fields"
                if buf[i - 1] != "\\":
                    c = buf[i]
                    if c == "=":
                        return "invalid tag format"
                    if c == "," or c == " ":
                        break
            raw_tags.append((buf[key_start:key_end], buf[value_start:i]))
            if buf[i] == " ":
                break
            i += 1
        if len({k for k, _ in raw_tags}) != len(raw_tags):
            return "duplicate tags"
    key_len = _utf8_len(buf, 0, i)
    if key_len > _MAX_KEY_BYTES:
        return f"max key length exceeded: {key_len} > {_MAX_KEY_BYTES}"

    # Fields: validated by the scanner, then split again the way InfluxDB reads them back.
    i = _skip_whitespace(buf, i)
    fields_start = i
    i, err = _scan_fields(buf, i)
    if err:
        return err
    raw_fields, err = _walk_fields(buf[fields_start:i])
    if err:
        return err
    for k, _ in raw_fields:
        size = key_len + 4 + _utf8_len(k, 0, len(k))
        if size > _MAX_KEY_BYTES:
            return f"max key length exceeded: {size} > {_MAX_KEY_BYTES}"

    # Timestamp: optional, then nothing but spaces.
    i = _skip_whitespace(buf, i)
    ts_start = i
    while i < n:
        c = buf[i]
        if c == " " or c == "\n":
            break
        if not ("0" <= c <= "9" or (c == "-" and i == ts_start)):
            return "bad timestamp"
        i += 1
    time_ns = None
    if i > ts_start:
        ts = buf[ts_start:i]
        if ts == "-":
            return 'strconv.ParseInt: parsing "-": invalid syntax'
        t = int(ts)
        if not _INT64_MIN <= t <= _INT64_MAX:
            return f'strconv.ParseInt: parsing "{ts}": value out of range'
        time_ns = t * mult
        if not MIN_TIME_NS <= time_ns <= MAX_TIME_NS:
            return _TIME_RANGE_ERROR
        if buf[i:].strip(" "):
            return "point is invalid"

    name = _unescape(_UNESCAPE_NAME, buf[:name_end])
    tags = {_unescape(_UNESCAPE_TAG, k): _unescape(_UNESCAPE_TAG, v) for k, v in raw_tags}
    if "time" in tags:
        return f'invalid tag key: input tag "time" on measurement "{name}" is invalid'
    fields: dict[str, FieldValue] = {}
    for raw_key, raw_value in raw_fields:
        k = _unescape(_UNESCAPE_NAME, raw_key)
        if k == "time" or not raw_value:
            continue  # InfluxDB drops a field named time
        v = _field_value(raw_value)
        if v is None:
            return f"invalid field value: {raw_value}"
        if k in fields and fields[k].__class__ is not v.__class__:
            return "field type conflict"
        fields[k] = v
    if not fields:
        return f'invalid field name: input field "time" on measurement "{name}" is invalid'
    return Point(name, tags, fields, time_ns)


def _utf8_len(s: str, start: int, end: int) -> int:
    if end - start <= _FAST_MAX_LEN:
        return end - start if s.isascii() else len(s[start:end].encode("utf-8", "replace"))
    return len(s[start:end].encode("utf-8", "replace"))


def _skip_whitespace(buf: str, i: int) -> int:
    n = len(buf)
    while i < n and buf[i] in " \t\0":
        i += 1
    return i


def _unescape(pattern: re.Pattern[str], s: str) -> str:
    return pattern.sub(r"\1", s) if "\\" in s else s


def _scan_fields(buf: str, i: int) -> tuple[int, str | None]:
    """models.scanFields: find the end of the field set and validate every value."""
    n = len(buf)
    quoted = False
    equals = commas = 0
    while i < n:
        c = buf[i]
        if c == "\\" and i + 1 < n:
            i += 2
            continue
        if c == '"' and equals > commas:
            quoted = not quoted
            i += 1
            continue
        if c == "=" and not quoted:
            equals += 1
            before = buf[i - 1]
            if (before == " " or before == ",") and buf[i - 2] != "\\":
                return i, "missing field key"
            if i + 1 >= n:
                return i, "missing field value"
            after = buf[i + 1]
            if after == "," or after == " ":
                return i, "missing field value"
            if after in "0123456789.-Nn":
                i, err = _scan_number(buf, i + 1)
                if err:
                    return i, err
                continue
            if after != '"':
                i, err = _scan_boolean(buf, i + 1)
                if err:
                    return i, err
                continue
        if c == "," and not quoted:
            commas += 1
        if c == " " and not quoted:
            break
        i += 1
    if quoted:
        return i, "unbalanced quotes"
    if equals == 0 or commas != equals - 1:
        return i, "invalid field format"
    return i, None


def _scan_number(buf: str, i: int) -> tuple[int, str | None]:
    """models.scanNumber, with unsigned support switched on as in InfluxDB 2.x."""
    n = len(buf)
    start = i
    is_int = is_uint = decimal = scientific = False
    if buf[i] == "-":
        i += 1
        if i == n:
            return i, "invalid number"
    while i < n:
        c = buf[i]
        if c == "," or c == " ":
            break
        if c == "i" and i > start and not (is_int or is_uint):
            is_int = True
            i += 1
            continue
        if c == "u" and i > start and not (is_int or is_uint):
            is_uint = True
            i += 1
            continue
        if c == ".":
            if decimal:
                return i, "invalid number"
            decimal = True
        if i > start and (c == "e" or c == "E"):
            scientific = True
            i += 1
            continue
        if (c == "+" or c == "-") and buf[i - 1] in "eE":
            i += 1
            continue
        if i + 2 < n and (c == "N" or c == "n"):
            return i, "invalid number"  # NaN
        if not ("0" <= c <= "9" or c == "."):
            return i, "invalid number"
        i += 1
    if (is_int or is_uint) and (decimal or scientific):
        return i, "invalid number"
    digits = i - start - is_int - decimal - (buf[start] == "-")
    if digits == 0:
        return i, "invalid number"
    if is_int:
        if buf[i - 1] != "i":
            return i, "invalid number"
        text = buf[start : i - 1]
        if not _INT64_MIN <= int(text) <= _INT64_MAX:
            return i, (
                f"unable to parse integer {text}: "
                f'strconv.ParseInt: parsing "{text}": value out of range'
            )
    elif is_uint:
        if buf[i - 1] != "u" or buf[start] == "-":
            return i, "invalid number"
        text = buf[start : i - 1]
        if int(text) > _UINT64_MAX:
            return i, (
                f"unable to parse unsigned {text}: "
                f'strconv.ParseUint: parsing "{text}": value out of range'
            )
    elif scientific or i - start >= 25:
        try:
            f = float(buf[start:i])
        except ValueError:
            return i, "invalid float"
        if f in (math.inf, -math.inf):
            return i, "invalid float"
    return i, None


def _scan_boolean(buf: str, i: int) -> tuple[int, str | None]:
    """models.scanBoolean: t, T, true, True, TRUE, f, F, false, False, FALSE."""
    n = len(buf)
    start = i
    if buf[i] not in "tfTF":
        return i, "invalid boolean"
    i += 1
    while i < n and buf[i] != "," and buf[i] != " ":
        i += 1
    if buf[start:i] not in _BOOLS:
        return i, "invalid boolean"
    return i, None


def _walk_fields(buf: str) -> tuple[list[tuple[str, str]], str | None]:
    """models.walkFields: split a validated field set into raw (key, value) pairs."""
    pairs = []
    n = len(buf)
    i = 0
    while i < n:
        eq = i
        while eq < n and not (buf[eq] == "=" and (eq == 0 or buf[eq - 1] != "\\")):
            eq += 1
        if eq > n - 2:
            return pairs, f"invalid value: field-key={buf[i:eq]}"
        key = buf[i:eq]
        j = eq + 1
        quoted = False
        while j < n:
            c = buf[j]
            if c == "\\" and j + 1 < n and buf[j + 1] in '"\\':
                j += 2
                continue
            if c == '"':
                quoted = not quoted
            elif c == "," and not quoted:
                break
            j += 1
        pairs.append((key, buf[eq + 1 : j]))
        i = j + 1
    return pairs, None


def _field_value(raw: str) -> FieldValue | None:
    """Type a raw field value the way InfluxDB's field iterator does."""
    c = raw[0]
    try:
        if c == '"':
            if len(raw) < 2:
                return None
            return _unescape(_UNESCAPE_STRING, raw[1:-1])
        if c in "0123456789-.nNiIu":
            if raw[-1] == "i":
                return int(raw[:-1])
            if raw[-1] == "u":
                return Unsigned(int(raw[:-1]))
            f = float(raw)
            return None if math.isinf(f) or math.isnan(f) else f
    except ValueError:
        return None
    return _BOOLS.get(raw)


# --- formatting --------------------------------------------------------------------------

_ESCAPE_NAME = str.maketrans({",": r"\,", " ": r"\ ", "=": r"\=", '"': r"\""})
_ESCAPE_TAG = str.maketrans({",": r"\,", " ": r"\ ", "=": r"\="})
_ESCAPE_STRING = str.maketrans({"\\": "\\\\", '"': r"\""})


def format_point(p: Point) -> str:
    """Serialise a point as one line of line protocol (no newline), nanosecond precision.

    Raises ValueError for what line protocol cannot express: empty names or tag values, a
    name ending in a backslash or holding a newline, a measurement or first field key
    starting with whitespace or '#', a tag or field named "time", NaN/inf, ints out of range.
    """
    m = p.measurement
    _check_name("measurement", m)
    if m[0] in " \t\0#":
        raise ValueError(f"measurement cannot start with {m[0]!r}")
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
        if sep == " " and k[0] in "\t\0":
            raise ValueError("the first field key cannot start with a tab or NUL")
        out.append(f"{sep}{k.translate(_ESCAPE_NAME)}={_format_value(v)}")
        sep = ","
    if p.time_ns is not None:
        if not MIN_TIME_NS <= p.time_ns <= MAX_TIME_NS:
            raise ValueError(_TIME_RANGE_ERROR)
        out.append(f" {int(p.time_ns)}")
    return "".join(out)


def _check_name(what: str, s: str) -> None:
    if not s:
        raise ValueError(f"empty {what}")
    if s[-1] == "\\" or "\n" in s:
        raise ValueError(f"{what} {s!r} cannot end in a backslash or contain a newline")


def _format_value(v: FieldValue) -> str:
    if v.__class__ is bool:
        return "true" if v else "false"
    if isinstance(v, Unsigned):
        if not 0 <= v <= _UINT64_MAX:
            raise ValueError(f"unsigned value out of range: {int(v)}")
        return f"{int(v)}u"
    if isinstance(v, int):
        if not _INT64_MIN <= v <= _INT64_MAX:
            raise ValueError(f"integer value out of range: {v}")
        return f"{int(v)}i"
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"{v} is not a valid field value")
        return repr(v)
    if isinstance(v, str):
        return f'"{v.translate(_ESCAPE_STRING)}"'
    raise ValueError(f"unsupported field type {type(v).__name__}")
