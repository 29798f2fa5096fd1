"""A port of InfluxDB 1.x's line-protocol scanner (models/points.go), quirks and error texts
included, plus the checks its shard applies on write. ingest.lineproto falls back to it for
any line its fast paths do not take, so this module decides every edge case and error.
"""

from __future__ import annotations

import math
import operator
import re

FieldValue = float | int | bool | str


class Unsigned(int):
    """An unsigned integer field (`123u`); an int that remembers its line-protocol type."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Unsigned({int(self)})"


# InfluxDB reserves the two extreme int64 values at each end.
MIN_TIME_NS = -(2**63) + 2
MAX_TIME_NS = 2**63 - 2
TIME_RANGE_ERROR = f"time outside range {MIN_TIME_NS} - {MAX_TIME_NS}"
MAX_KEY_BYTES = 65535
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT64_MAX = 2**64 - 1

BOOLS = {
    "t": True, "T": True, "true": True, "True": True, "TRUE": True,
    "f": False, "F": False, "false": False, "False": False, "FALSE": False,
}

# Unescaping, per position: a backslash before one of the listed characters goes, any
# other backslash stays. In names no two pairs overlap, so chained str.replace is exact.
UNESCAPE_STRING = re.compile(r'\\(["\\])')  # string field values: \\ and \"
GROUP1 = operator.itemgetter(1)

# The scanner jumps from one character that can change its state to the next.
_NAME_END = re.compile(r"(?<!\\)[, ]")
_TAG_END = re.compile(r"(?<!\\)[ ,=]")
_KEY_END = re.compile(r"(?<!\\)=")
_LINE_SPECIAL = re.compile(r'[\\ =,"\n]')
_FIELD_SPECIAL = re.compile(r'[\\"=, ]')
_STRING_SPECIAL = re.compile(r'[\\",]')
_VALUE_END = re.compile(r"[, ]")
_TIMESTAMP = re.compile(r"-?[0-9]*")
_PLAIN_NUMBER = re.compile(
    r"-?[0-9]{1,18}i?|-?[0-9]{1,20}\.[0-9]{0,20}|-?\.[0-9]{1,20}|[0-9]{1,19}u"
)  # numbers that are valid without a closer look
_INT = re.compile(r"-?[0-9]+")
_FLOAT = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

PointTuple = tuple[str, dict[str, str], dict[str, FieldValue], int | None]


def unescape_name(s: str) -> str:
    """Measurement names and field keys: \\, \\" \\space \\= lose their backslash."""
    if "\\" not in s:
        return s
    return s.replace("\\,", ",").replace('\\"', '"').replace("\\ ", " ").replace("\\=", "=")


def unescape_tag(s: str) -> str:
    """Tag keys and values: \\, \\space \\= lose their backslash (\\" stays)."""
    if "\\" not in s:
        return s
    return s.replace("\\,", ",").replace("\\ ", " ").replace("\\=", "=")


def scan_line(buf: str, i: int) -> int:
    """Index of the newline that ends the line starting at i (models.scanLine): a newline
    inside a string field value or after a backslash does not end a line."""
    n = len(buf)
    quoted = in_fields = False
    equals = commas = 0
    search = _LINE_SPECIAL.search
    while True:
        m = search(buf, i)
        if m is None:
            return n
        i = m.start()
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
            return i
        i += 1


def parse_point(buf: str, mult: int) -> PointTuple | str:
    """models.parsePoint on a line without its leading whitespace, then the shard's checks
    (time tag, time field, field type conflict, unreadable values). Returns (measurement,
    tags, fields, time_ns) or InfluxDB's reason text. mult: the precision in ns."""
    n = len(buf)
    # A character is escaped when a backslash precedes it (even an escaped backslash).
    if buf[0] == ",":
        return "missing measurement"
    m = _NAME_END.search(buf, 1)
    if m is None:
        return "missing fields"
    i = name_end = m.start()
    raw_tags: list[tuple[str, str]] = []
    if buf[i] == ",":
        i += 1
        while True:
            key_start = i
            if i >= n or buf[i] in " ,=":
                return "missing tag key"
            m = _TAG_END.search(buf, i + 1)
            if m is None or buf[m.start()] != "=":
                return "missing tag value"
            key_end = m.start()
            i = key_end + 1
            if i >= n or buf[i] == "," or buf[i] == " ":
                return "missing tag value"
            value_start = i
            m = _TAG_END.search(buf, i + 1)
            if m is None:
                return "missing fields"
            i = m.start()
            if buf[i] == "=":
                return "invalid tag format"
            raw_tags.append((buf[key_start:key_end], buf[value_start:i]))
            if buf[i] == " ":
                break
            i += 1
        if len({k for k, _ in raw_tags}) != len(raw_tags):
            return "duplicate tags"
    key_len = _utf8_len(buf[:i])
    if key_len > MAX_KEY_BYTES:
        return f"max key length exceeded: {key_len} > {MAX_KEY_BYTES}"

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
        size = key_len + 4 + _utf8_len(k)
        if size > MAX_KEY_BYTES:
            return f"max key length exceeded: {size} > {MAX_KEY_BYTES}"

    # Timestamp: optional, then nothing but spaces.
    i = _skip_whitespace(buf, i)
    ts_start = i
    i = _TIMESTAMP.match(buf, i).end()
    if i < n and buf[i] != " " and buf[i] != "\n":
        return "bad timestamp"
    time_ns = None
    if i > ts_start:
        ts = buf[ts_start:i]
        if ts == "-":
            return 'strconv.ParseInt: parsing "-": invalid syntax'
        t = int(ts)
        if not INT64_MIN <= t <= INT64_MAX:
            return f'strconv.ParseInt: parsing "{ts}": value out of range'
        time_ns = t * mult
        if not MIN_TIME_NS <= time_ns <= MAX_TIME_NS:
            return TIME_RANGE_ERROR
        if buf[i:].strip(" "):
            return "point is invalid"

    # What the shard refuses or drops on write.
    name = unescape_name(buf[:name_end])
    tags = {unescape_tag(k): unescape_tag(v) for k, v in raw_tags}
    if "time" in tags:
        return f'invalid tag key: input tag "time" on measurement "{name}" is invalid'
    named = [(unescape_name(k), v) for k, v in raw_fields]
    named = [(k, v) for k, v in named if k != "time"]  # a field named time is dropped
    if not named:
        return f'invalid field name: input field "time" on measurement "{name}" is invalid'
    fields: dict[str, FieldValue] = {}
    engine_error = None
    for k, raw_value in named:
        v = _field_value(raw_value)
        if v is None:
            engine_error = engine_error or _engine_error(k, raw_value)
            continue
        if k in fields and fields[k].__class__ is not v.__class__:
            return "field type conflict"
        fields[k] = v  # a repeated field: the last one wins
    if engine_error:
        return engine_error
    return name, tags, fields, time_ns


def _utf8_len(s: str) -> int:
    return len(s) if s.isascii() else len(s.encode("utf-8", "replace"))


def _skip_whitespace(buf: str, i: int) -> int:
    n = len(buf)
    while i < n and buf[i] in " \t\0":
        i += 1
    return i


def _scan_fields(buf: str, i: int) -> tuple[int, str | None]:
    """models.scanFields: find the end of the field set and validate every value."""
    n = len(buf)
    quoted = False
    equals = commas = 0
    search = _FIELD_SPECIAL.search
    while True:
        m = search(buf, i)
        if m is None:
            i = n
            break
        i = m.start()
        c = buf[i]
        if c == "\\":
            i += 2 if i + 1 < n else 1
            continue
        if c == '"':
            if equals > commas:  # quotes count in values only
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
                m = _VALUE_END.search(buf, i + 1)
                end = m.start() if m else n
                if buf[i + 1 : end] not in BOOLS:
                    return i, "invalid boolean"
                i = end
                continue
        elif c == ",":
            if not quoted:
                commas += 1
        elif c == " " and not quoted:
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
    m = _VALUE_END.search(buf, i)
    end = m.start() if m else n
    if _PLAIN_NUMBER.fullmatch(buf, i, end):
        return end, None  # the common shapes, plainly valid: skip the scan below
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
        if not INT64_MIN <= int(text) <= INT64_MAX:
            return i, (
                f"unable to parse integer {text}: "
                f'strconv.ParseInt: parsing "{text}": value out of range'
            )
    elif is_uint:
        if buf[i - 1] != "u" or buf[start] == "-":
            return i, "invalid number"
        text = buf[start : i - 1]
        if int(text) > UINT64_MAX:
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


def _walk_fields(buf: str) -> tuple[list[tuple[str, str]], str | None]:
    """models.walkFields: split a validated field set into raw (key, value) pairs. Its
    escape rules differ from the scanner's: keys end at an '=' without a backslash before
    it, values honour only backslash-quote and backslash-backslash."""
    pairs = []
    n = len(buf)
    i = 0
    while i < n:
        m = _KEY_END.search(buf, i)
        eq = m.start() if m else n
        if eq > n - 2:
            return pairs, f"invalid value: field-key={buf[i:eq]}"
        j = eq + 1
        quoted = False
        while True:
            m = _STRING_SPECIAL.search(buf, j)
            if m is None:
                j = n
                break
            j = m.start()
            c = buf[j]
            if c == "\\":
                j += 2 if j + 1 < n and buf[j + 1] in '"\\' else 1
            elif c == '"':
                quoted = not quoted
                j += 1
            elif quoted:
                j += 1
            else:
                break  # a comma outside quotes
        pairs.append((buf[i:eq], buf[eq + 1 : j]))
        i = j + 1
    return pairs, None


def _field_value(raw: str) -> FieldValue | None:
    """Type a raw field value the way InfluxDB's field iterator does; None if it cannot."""
    if not raw:
        return None
    c = raw[0]
    if c == '"':
        if len(raw) < 2:
            return None  # influxd 1.6 panics on this one (slice bounds out of range)
        text = raw[1:-1]
        return UNESCAPE_STRING.sub(GROUP1, text) if "\\" in text else text
    if c in "0123456789-.nNiIu":
        if raw[-1] == "i":
            return int(raw[:-1]) if _INT.fullmatch(raw, 0, len(raw) - 1) else None
        if raw[-1] == "u":
            return Unsigned(raw[:-1]) if raw[:-1].isdigit() and raw.isascii() else None
        if not _FLOAT.fullmatch(raw):
            return None
        f = float(raw)
        return None if math.isinf(f) else f
    return BOOLS.get(raw)


def _engine_error(key: str, raw: str) -> str:
    """What InfluxDB's storage engine says about a value its scanner let through; only
    reachable through odd escaping, where scanner and reader split a field set differently."""
    if not raw:
        return f"engine: unknown field type for {key}"
    c = raw[0]
    if c == '"':
        return f"engine: unable to parse string value {_go_quote(raw)}"
    if c in "0123456789-.nNiIu":
        kind, go_func, text = "floating point", "ParseFloat", raw
        if raw[-1] == "i":
            kind, go_func, text = "integer", "ParseInt", raw[:-1]
        elif raw[-1] == "u":
            kind, go_func, text = "unsigned", "ParseUint", raw[:-1]
    else:
        kind, go_func, text = "bool", "ParseBool", raw
    q = _go_quote(text)
    return (
        f"engine: unable to parse {kind} value {q}: "
        f"strconv.{go_func}: parsing {q}: invalid syntax"
    )


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def _go_quote(s: str) -> str:
    """Go's %q of a string (strconv.Quote), as InfluxDB prints values in errors."""
    out = []
    for ch in s:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) < 0x10000 else f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'
