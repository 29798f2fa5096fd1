"""Line-protocol parser: every rule, InfluxDB's error texts, and property tests.

Expected values and error texts come from InfluxDB 1.6 itself (the same cases, and more,
run against a real influxd in test_influxdb_differential.py).
"""

import dataclasses
import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from vzdivert.ingest import lineproto
from vzdivert.ingest.influx_scanner import MAX_TIME_NS, MIN_TIME_NS, parse_point
from vzdivert.ingest.lineproto import (
    PRECISIONS,
    LineError,
    Point,
    Unsigned,
    format_point,
    parse,
    parse_ordered,
)


def one(line, precision="ns"):
    """The single point of a one-line body (fails if the line was refused)."""
    points, errors = parse(line, precision)
    assert errors == [] and len(points) == 1, (points, errors)
    return points[0]


def reason(line, precision="ns"):
    """The reason a one-line body was refused."""
    points, errors = parse(line, precision)
    assert points == [] and len(errors) == 1, (points, errors)
    return errors[0].reason


def typed(fields):
    return {k: (type(v).__name__, v) for k, v in fields.items()}


# --- the vzlogger case -------------------------------------------------------------------


def test_vzlogger_line_with_ms_precision():
    body = b"leistung,uuid=4a2677c0-0f1f-11ed-aa45-a39ab6e64720 value=-500.000000 1795475164222\n"
    assert parse(body, "ms") == (
        [
            Point(
                "leistung",
                {"uuid": "4a2677c0-0f1f-11ed-aa45-a39ab6e64720"},
                {"value": -500.0},
                1795475164222_000000,
            )
        ],
        [],
    )


def test_vzlogger_batch_keeps_order_and_every_line():
    body = "".join(f"leistung value={i}.000000 {1000 + i}\n" for i in range(4500))
    points, errors = parse(body, "ms")
    assert errors == []
    assert [p.fields["value"] for p in points] == [float(i) for i in range(4500)]
    assert points[-1].time_ns == 5499 * 1_000_000


def test_points_are_frozen_points_with_their_own_tag_dicts():
    a, b = parse("m,t=1 v=1\nm,t=1 v=2\n")[0]
    assert type(a) is Point and type(b) is Point
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.measurement = "x"
    assert a.tags == b.tags and a.tags is not b.tags


# --- precision ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "precision, ns",
    [("ns", 1), ("n", 1), ("u", 1_000), ("ms", 10**6), ("s", 10**9), ("m", 60 * 10**9),
     ("h", 3600 * 10**9)],
)
def test_precision_multiplies_the_timestamp(precision, ns):
    assert PRECISIONS[precision] == ns
    assert one("m v=1 7", precision).time_ns == 7 * ns
    assert one("m v=1 -7", precision).time_ns == -7 * ns


def test_unknown_precision_raises():
    with pytest.raises(ValueError, match="invalid precision"):
        parse("m v=1", "us")


def test_time_range_after_precision():
    assert one("m v=1 2562047", "h").time_ns == 2562047 * 3600 * 10**9
    assert reason("m v=1 2562048", "h") == (
        "time outside range -9223372036854775806 - 9223372036854775806"
    )
    assert one(f"m v=1 {MAX_TIME_NS}").time_ns == MAX_TIME_NS
    assert one(f"m v=1 {MIN_TIME_NS}").time_ns == MIN_TIME_NS
    assert reason(f"m v=1 {MAX_TIME_NS + 1}").startswith("time outside range")
    assert reason(f"m v=1 {MIN_TIME_NS - 1}").startswith("time outside range")


# --- structure, blank lines, comments, CRLF, partial writes -------------------------------


def test_no_timestamp_gives_none():
    assert one("m v=1").time_ns is None
    assert one("m v=1 ").time_ns is None


def test_blank_lines_and_comments_are_skipped_but_counted():
    body = "# a comment\n\n   \n  # indented comment\nm v=1 1\n\nbad\n"
    points, errors = parse(body)
    assert points == [Point("m", {}, {"v": 1.0}, 1)]
    assert errors == [LineError(7, "bad", "missing fields")]


def test_crlf_line_ends_are_accepted():
    points, errors = parse(b"m v=1 1\r\nm,t=a s=\"x\" 2\r\n\r\n# c\r\nbad\r\n")
    assert points == [Point("m", {}, {"v": 1.0}, 1), Point("m", {"t": "a"}, {"s": "x"}, 2)]
    assert errors == [LineError(5, "bad", "missing fields")]


def test_a_bad_line_never_aborts_the_good_ones():
    body = "m v=1 1\nm v=NaN 2\nm v=3 3\nm v= 4\nm v=5 5"
    points, errors = parse(body)
    assert [p.time_ns for p in points] == [1, 3, 5]
    assert errors == [
        LineError(2, "m v=NaN 2", "invalid number"),
        LineError(4, "m v= 4", "missing field value"),
    ]


def test_parse_ordered_interleaves_points_and_errors():
    results = parse_ordered("m v=1 1\nbad\nm v=2 2\n")
    assert results == [
        Point("m", {}, {"v": 1.0}, 1),
        LineError(2, "bad", "missing fields"),
        Point("m", {}, {"v": 2.0}, 2),
    ]


def test_leading_whitespace_is_skipped_and_not_quoted_in_errors():
    assert one("  \t m v=1").measurement == "m"
    assert one("\0m v=1").measurement == "m"
    assert parse("   bad")[1] == [LineError(1, "bad", "missing fields")]


def test_spaces_between_sections():
    assert one("m  v=1  5  ") == Point("m", {}, {"v": 1.0}, 5)
    assert one("m \tv=1 \t5") == Point("m", {}, {"v": 1.0}, 5)


def test_newline_inside_a_string_does_not_end_the_line():
    points, errors = parse('m s="a\nb" 1\nm v=2 2\nbad\n')
    assert points == [Point("m", {}, {"s": "a\nb"}, 1), Point("m", {}, {"v": 2.0}, 2)]
    assert errors == [LineError(4, "bad", "missing fields")]  # physical line number


def test_backslash_newline_continues_the_line():
    points, errors = parse("m v=1\\\nm v=2 3\nm v=4 4")
    assert points == [Point("m", {}, {"v": 4.0}, 4)]
    assert errors == [LineError(1, "m v=1\\\nm v=2 3", "invalid number")]


def test_unclosed_quote_runs_to_the_end_of_the_body():
    points, errors = parse('m v=1 1\nm s="x\nm v=2 2\n')
    assert points == [Point("m", {}, {"v": 1.0}, 1)]
    assert errors == [LineError(2, 'm s="x\nm v=2 2', "unbalanced quotes")]


def test_bytes_and_invalid_utf8():
    assert parse(b"m,t=\xc3\xbc v=1") == parse("m,t=ü v=1")
    assert one(b"m,t=\xff v=1").tags == {"t": "\ufffd"}
    assert one(bytearray(b"m v=1")).fields == {"v": 1.0}


# --- escaping, per position --------------------------------------------------------------


@pytest.mark.parametrize(
    "line, measurement",
    [
        (r"m\ x v=1", "m x"),
        (r"m\,x v=1", "m,x"),
        (r"m\=x v=1", "m=x"),
        (r"m\"x v=1", 'm"x'),
        ("m=x v=1", "m=x"),  # = and " need no escape in a measurement
        ('m"x v=1', 'm"x'),
        (r"m\\x v=1", r"m\\x"),  # other backslashes stay as they are
        (r"m\x v=1", r"m\x"),
        (r"\#m v=1", r"\#m"),
        ("time v=1", "time"),
        ("ü v=1", "ü"),
    ],
)
def test_measurement_escapes(line, measurement):
    assert one(line).measurement == measurement


@pytest.mark.parametrize(
    "line, tags",
    [
        (r"m,t\ k=v\ v v=1", {"t k": "v v"}),
        (r"m,t\,k=v\,v v=1", {"t,k": "v,v"}),
        (r"m,t\=k=v\=v v=1", {"t=k": "v=v"}),
        (r'm,t=a\"b v=1', {"t": r"a\"b"}),  # \" is not an escape in tags
        (r"m,t=a\\b v=1", {"t": r"a\\b"}),
        ('m,t=a"b v=1', {"t": 'a"b'}),
        ("m,t==a v=1", {"t": "=a"}),  # a value may start with '='
        ("m,t=#a v=1", {"t": "#a"}),
        (r"m,t=\  v=1", {"t": " "}),
        ("m,b=2,a=1 v=1", {"a": "1", "b": "2"}),
        ("m,_field=a v=1", {"_field": "a"}),
    ],
)
def test_tag_escapes(line, tags):
    assert one(line).tags == tags


@pytest.mark.parametrize(
    "line, key",
    [
        (r"m f\ k=1", "f k"),
        (r"m f\,k=1", "f,k"),
        (r"m f\=k=1", "f=k"),
        (r'm f\"k=1', 'f"k'),
        ('m f"k=1', 'f"k'),
        (r"m f\\k=1", r"f\\k"),
        (r"m v=1,f\ k=1", "f k"),
    ],
)
def test_field_key_escapes(line, key):
    assert key in one(line).fields


@pytest.mark.parametrize(
    "value, text",
    [
        (r'"a\"b"', 'a"b'),
        (r'"a\\b"', "a\\b"),
        (r'"a\b"', "a\\b"),  # a backslash before anything else stays
        (r'"a\nb"', "a\\nb"),
        (r'"a\\"', "a\\"),
        ('"a b,c=d"', "a b,c=d"),
        ('""', ""),
        ('"x\ny"', "x\ny"),
        ('"ü"', "ü"),
    ],
)
def test_string_field_escapes(value, text):
    assert one(f"m s={value} 5").fields == {"s": text}


def test_string_quirk_text_after_the_closing_quote():
    # InfluxDB keeps scanning after a closing quote and drops only the last character.
    assert one('m s="a"x,t=1').fields == {"s": 'a"', "t": 1.0}


def test_escapes_in_every_position_at_once():
    line = r'we\ at\,her,lo\=c=us\ mid\,west te\ mp=82,no\"te="say \"hi\" \\o/" 1'
    assert one(line) == Point(
        "we at,her", {"lo=c": "us mid,west"}, {"te mp": 82.0, 'no"te': 'say "hi" \\o/'}, 1
    )


# --- field types -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, value",
    [("1", 1.0), ("-1.5", -1.5), ("1e3", 1000.0), ("1E-3", 0.001), ("-.5e2", -50.0),
     (".5", 0.5), ("5.", 5.0), ("-0", -0.0), ("007", 7.0), ("1e-400", 0.0),
     ("1234567890123456789012345", 1.2345678901234568e24)],
)
def test_floats(text, value):
    assert typed(one(f"m v={text}").fields) == {"v": ("float", value)}


@pytest.mark.parametrize(
    "text, value",
    [("1i", 1), ("-7i", -7), ("0i", 0), ("-0i", 0), ("007i", 7),
     ("9223372036854775807i", 2**63 - 1), ("-9223372036854775808i", -(2**63))],
)
def test_integers(text, value):
    assert typed(one(f"m v={text}").fields) == {"v": ("int", value)}


@pytest.mark.parametrize("text, value", [("0u", 0), ("5u", 5), (f"{2**64 - 1}u", 2**64 - 1)])
def test_unsigned_integers_keep_their_type(text, value):
    v = one(f"m v={text}").fields["v"]
    assert type(v) is Unsigned and v == value and repr(v) == f"Unsigned({value})"


@pytest.mark.parametrize("text", ["t", "T", "true", "True", "TRUE"])
def test_true_spellings(text):
    assert typed(one(f"m v={text},w=1").fields)["v"] == ("bool", True)


@pytest.mark.parametrize("text", ["f", "F", "false", "False", "FALSE"])
def test_false_spellings(text):
    assert typed(one(f"m v={text} 5").fields)["v"] == ("bool", False)


@pytest.mark.parametrize(
    "line, why",
    [
        ("m v=NaN", "invalid number"),
        ("m v=nan,w=1", "invalid number"),
        ("m v=-N", "invalid number"),
        ("m v=inf", "invalid boolean"),
        ("m v=-inf", "invalid number"),
        ("m v=1e400", "invalid float"),
        ("m v=-1e400 5", "invalid float"),
        ("m v=tRUE", "invalid boolean"),
        ("m v=yes", "invalid boolean"),
        ("m v=I", "invalid boolean"),
        ("m v=+1", "invalid boolean"),
        ("m v=ü", "invalid boolean"),
        ("m v=.", "invalid number"),
        ("m v=-", "invalid number"),
        ("m v=1e", "invalid float"),
        ("m v=1_0", "invalid number"),
        ("m v=0x10", "invalid number"),
        ("m v=1i2", "invalid number"),
        ("m v=1.5i", "invalid number"),
        ("m v=1e+5i", "invalid number"),
        ("m v=-i", "invalid number"),
        ("m v=-5u", "invalid number"),
        ("m v=1.5u", "invalid number"),
        ("m v=1#", "invalid number"),
        ("m v=1\t", "invalid number"),
        ("m v=٣", "invalid boolean"),
        ("m v=1٣", "invalid number"),
        (
            "m v=9223372036854775808i",
            "unable to parse integer 9223372036854775808: strconv.ParseInt: "
            'parsing "9223372036854775808": value out of range',
        ),
        (
            "m v=18446744073709551616u",
            "unable to parse unsigned 18446744073709551616: strconv.ParseUint: "
            'parsing "18446744073709551616": value out of range',
        ),
    ],
)
def test_bad_values(line, why):
    assert reason(line) == why


# --- structural errors, with InfluxDB's texts --------------------------------------------


@pytest.mark.parametrize(
    "line, why",
    [
        ("m", "missing fields"),
        ("m,t=a", "missing fields"),
        (r"m\ v=1", "missing fields"),
        ("\\", "missing fields"),
        (",t=a v=1", "missing measurement"),
        ("m,=a v=1", "missing tag key"),
        ("m, v=1", "missing tag key"),
        ("m,t=a, v=1", "missing tag key"),
        ("m,t v=1", "missing tag value"),
        ("m,t= v=1", "missing tag value"),
        ("m,t=a=b v=1", "invalid tag format"),
        (r"m,t=a\ v=1", "invalid tag format"),
        ("m,t=a,t=b v=1", "duplicate tags"),
        ("m =1", "missing field key"),
        ("m v=1,=2", "missing field key"),
        ("m v=", "missing field value"),
        ("m v= 1", "missing field value"),
        ("m v=1,", "invalid field format"),
        ("m v", "invalid field format"),
        ('m s="x', "unbalanced quotes"),
        ('m s="\\"', "unbalanced quotes"),
        ("m v=1 1.5", "bad timestamp"),
        ("m v=1 1e3", "bad timestamp"),
        ("m v=1 0x5", "bad timestamp"),
        ("m v=1 123#", "bad timestamp"),
        ("m v=1 1 x", "point is invalid"),
        ("m v=1 -", 'strconv.ParseInt: parsing "-": invalid syntax'),
        (
            "m v=1 99999999999999999999",
            'strconv.ParseInt: parsing "99999999999999999999": value out of range',
        ),
        (r"m a\\=1", r"invalid value: field-key=a\\=1"),
    ],
)
def test_structural_errors(line, why):
    assert reason(line) == why


def test_errors_quote_the_line_as_influxdb_does():
    assert parse("  m,t=a,t=b v=1 5\r\n")[1] == [LineError(1, "m,t=a,t=b v=1 5", "duplicate tags")]


# --- what InfluxDB's storage refuses or drops ---------------------------------------------


def test_time_tag_is_refused():
    assert reason("m,time=a v=1") == (
        'invalid tag key: input tag "time" on measurement "m" is invalid'
    )


def test_time_field_is_dropped_and_alone_refused():
    assert one("m time=1,v=2").fields == {"v": 2.0}
    assert one("m v=2,time=1").fields == {"v": 2.0}
    assert reason(r"we\ ird time=1") == (
        'invalid field name: input field "time" on measurement "we ird" is invalid'
    )


def test_repeated_field_last_wins_unless_types_differ():
    assert one("m v=1,v=2").fields == {"v": 2.0}
    assert one('m s="a",s="b"').fields == {"s": "b"}
    assert reason("m v=1,v=2i") == "field type conflict"
    assert reason("m v=1i,v=2u") == "field type conflict"


def test_empty_field_key_after_a_tab_is_kept():
    # InfluxDB stores it (and shows it as "val0" in queries).
    assert one("m \t=1,v=2").fields == {"": 1.0, "v": 2.0}


def test_max_key_length():
    long_key = "m," + ",".join(f"t{i}=" + "x" * 100 for i in range(650))
    why = reason(long_key + " v=1")
    assert why.startswith("max key length exceeded: ") and why.endswith(" > 65535")
    assert one(long_key[:60000] + " v=1").measurement == "m"


# --- fast paths agree with the port of InfluxDB's scanner --------------------------------

_ALPHABET = list('mtvx19.-eiuTf" =,\\#') + ["é", "\ue001", "\t", "\r", "\0"]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(st.sampled_from(_ALPHABET), min_size=1, max_size=40))
def test_fast_and_masked_paths_never_disagree_with_the_exact_path(line):
    # parse() hands them lines without tab or NUL; _parse_fast also without quote or backslash
    assume("\t" not in line and "\0" not in line)
    exact = parse_point(line.lstrip(" "), 1) if line.lstrip(" ") else None
    for fast in (
        lineproto._parse_fast(line, 1, {}) if not any(c in line for c in '"\\') else None,
        lineproto._parse_masked(line, 1, {}),
    ):
        if fast is not None:
            assert isinstance(exact, tuple), (line, fast, exact)
            assert Point(*exact) == fast
            assert typed(fast.fields) == typed(exact[2])


_FIELD_LINE = st.builds(
    lambda m, tags, fields, ts: m + tags + " " + fields + ts,
    st.sampled_from(["m", r"m\ x", "m,", r"m\,y", 'm"']),
    st.sampled_from(["", ",t=1", r",t\ k=v\=w", ",t=a,u=b", ',t="q"']),
    st.lists(
        st.tuples(
            st.sampled_from(["v", "w", r"k\ k", r'q\"', "time"]),
            st.sampled_from(["1", "-2.5", "3i", "4u", "t", "FALSE", '"s"', r'"a\"b"', '"c d"',
                             '"e,f=g"', r'"\\"', '"', "x", "1e5", ".5"]),
        ).map("=".join),
        min_size=1, max_size=3,
    ).map(",".join),
    st.sampled_from(["", " 5", " -5", " x"]),
)


@settings(max_examples=400)
@given(_FIELD_LINE)
def test_masked_path_agrees_on_telegraf_like_lines(line):
    exact = parse_point(line, 1)
    masked = lineproto._parse_masked(line, 1, {})
    if masked is not None:
        assert isinstance(exact, tuple) and Point(*exact) == masked, line
        assert typed(masked.fields) == typed(exact[2])
    assert parse(line) == (
        ([Point(*exact)], []) if isinstance(exact, tuple) else ([], [LineError(1, line, exact)])
    )


# --- robustness --------------------------------------------------------------------------


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_random_bytes_only_ever_give_line_errors(body):
    points, errors = parse(body)
    lines = body.count(b"\n") + 1
    for e in errors:
        assert isinstance(e, LineError) and 1 <= e.line <= lines and e.reason
    for p in points:
        assert p.fields and "time" not in p.fields and "time" not in p.tags


@settings(max_examples=300)
@given(st.text(st.sampled_from(_ALPHABET + ["\n", "\r", "\0"]), max_size=80))
def test_random_text_only_ever_gives_line_errors(body):
    results = parse_ordered(body)
    assert [r.line for r in results if isinstance(r, LineError)] == sorted(
        r.line for r in results if isinstance(r, LineError)
    )


# --- formatting and the round trip -------------------------------------------------------


def test_format_point_plain():
    p = Point("leistung", {"uuid": "4a26"}, {"value": -500.0}, 1795475164222000000)
    assert format_point(p) == "leistung,uuid=4a26 value=-500.0 1795475164222000000"


def test_format_point_types_and_escapes():
    p = Point(
        "we at,her=x",
        {"lo c": "us,mid=west"},
        {"f": 1.5, "i": -3, "u": Unsigned(7), "b": True, "s": 'say "hi" \\o/', 'q"': False},
        None,
    )
    line = format_point(p)
    assert line == (
        r'we\ at\,her\=x,lo\ c=us\,mid\=west f=1.5,i=-3i,u=7u,b=true,'
        r's="say \"hi\" \\o/",q\"=false'
    )
    assert one(line) == p


@pytest.mark.parametrize(
    "point, why",
    [
        (Point("", {}, {"v": 1.0}, None), "empty measurement"),
        (Point("#m", {}, {"v": 1.0}, None), "cannot start with"),
        (Point("m\\", {}, {"v": 1.0}, None), "backslash"),
        (Point("m\nx", {}, {"v": 1.0}, None), "newline"),
        (Point("m", {"t": ""}, {"v": 1.0}, None), "empty tag value"),
        (Point("m", {"time": "x"}, {"v": 1.0}, None), "time"),
        (Point("m", {}, {}, None), "at least one field"),
        (Point("m", {}, {"time": 1.0}, None), "time"),
        (Point("m", {}, {"\tv": 1.0}, None), "tab"),
        (Point("m", {}, {"a\\,b": 1.0}, None), "odd backslashes"),
        (Point("m", {}, {"v": math.nan}, None), "not a valid field value"),
        (Point("m", {}, {"v": math.inf}, None), "not a valid field value"),
        (Point("m", {}, {"v": 2**63}, None), "out of range"),
        (Point("m", {}, {"v": Unsigned(2**64)}, None), "out of range"),
        (Point("m", {}, {"v": None}, None), "unsupported"),
        (Point("m", {}, {"v": 1.0}, MAX_TIME_NS + 1), "time outside range"),
    ],
)
def test_format_point_refuses_what_line_protocol_cannot_say(point, why):
    with pytest.raises(ValueError, match=why):
        format_point(point)


_NAME = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12).filter(
    lambda s: "\n" not in s and not s.endswith("\\")
)
_VALUE = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**63), 2**63 - 1),
    st.integers(0, 2**64 - 1).map(Unsigned),
    st.booleans(),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
)
_POINT = st.builds(
    Point,
    _NAME.filter(lambda s: s[0] not in "\t\0#"),
    st.dictionaries(_NAME.filter(lambda s: s != "time"), _NAME, max_size=3),
    st.dictionaries(
        _NAME.filter(lambda s: s != "time" and not lineproto._ODD_BACKSLASHES.search(s)),
        _VALUE,
        min_size=1,
        max_size=4,
    ).filter(lambda f: next(iter(f))[0] not in "\t\0"),
    st.one_of(st.none(), st.integers(MIN_TIME_NS, MAX_TIME_NS)),
)


@settings(max_examples=500)
@given(_POINT)
def test_format_then_parse_is_the_identity(point):
    line = format_point(point)
    for body in (line, line + "\n", line.encode() + b"\r\n"):
        points, errors = parse(body)
        assert errors == [] and points == [point], (line, errors)
        assert typed(points[0].fields) == typed(point.fields)


@settings(max_examples=100)
@given(st.lists(_POINT, min_size=2, max_size=5))
def test_formatted_batches_parse_back(points):
    body = "".join(format_point(p) + "\n" for p in points)
    parsed, errors = parse(body)
    assert errors == [] and parsed == points
