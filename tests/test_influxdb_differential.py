"""Differential test: a real InfluxDB 1.x (Debian's influxdb package) and ingest.lineproto
must accept and refuse the same lines, with the same reasons and the same stored values.

Starts influxd on loopback ports with a throwaway config; each case writes to its own
database and reads it back. .ci/run installs the package; without influxd this test fails.
"""


import pytest

from vzdivert.ingest.lineproto import parse
from vzdivert.ingest.server import write_error

# (body, precision). Bodies of one line unless they say otherwise; timestamps differ
# within a body because InfluxDB merges points of one series at one time.
CORPUS = [
    # what vzlogger sends
    ("leistung,uuid=4a2677c0-0f1f-11ed-aa45-a39ab6e64720 value=-500.000000 1795475164222\n", "ms"),
    ("leistung value=-500.000000 1795475164222\nleistung value=12.5 1795475165222\n", "ms"),
    ("vzlogger,uuid=8e1b6a1e value=1234.500000 1795475164\n", "s"),
    # precisions and timestamps
    ("m v=1 1795475164222000", "u"),
    ("m v=1 29924586", "m"),
    ("m v=1 498743", "h"),
    ("m v=1 2562047", "h"),
    ("m v=1 2562048", "h"),
    ("m v=1 9223372036854775", "u"),
    ("m v=1 9223372036854776", "u"),
    ("m v=1 5", "n"),
    ("m v=1 -5", "ns"),
    ("m v=1 -0", "ns"),
    ("m v=1 9223372036854775806", "ns"),
    ("m v=1 9223372036854775807", "ns"),
    ("m v=1 -9223372036854775807", "ns"),
    ("m v=1 99999999999999999999", "ns"),
    ("m v=1 -", "ns"),
    ("m v=1 1.5", "ns"),
    ("m v=1 1e3", "ns"),
    ("m v=1 1 x", "ns"),
    ("m v=1 5 ", "ns"),
    ("m  v=1  5", "ns"),
    ("m v=1\t5", "ns"),
    ("m v=1", "ns"),
    # field types
    ("m f=1.5,g=-2,h=1e3,i=1E-3,j=.5,k=5.,l=-.5e2,n=1e-400 1", "ns"),
    ("m f=1234567890123456789012345 1", "ns"),
    ("m i=1i,j=-7i,k=0i,l=9223372036854775807i,n=-9223372036854775808i 1", "ns"),
    ("m v=9223372036854775808i", "ns"),
    ("m a=t,b=T,c=true,d=True,e=TRUE 1", "ns"),
    ("m a=f,b=F,c=false,d=False,e=FALSE 1", "ns"),
    ("m v=tRUE", "ns"),
    ("m v=yes", "ns"),
    ('m s="hello",e="",q="a\\"b",b="a\\\\b",x="a\\b",y="a b,c=d" 1', "ns"),
    ('m s="a"x,t=1 1', "ns"),
    ('m s="x', "ns"),
    # NaN and infinity
    ("m v=NaN", "ns"),
    ("m v=nan,w=1", "ns"),
    ("m v=inf", "ns"),
    ("m v=-inf", "ns"),
    ("m v=1e400", "ns"),
    # bad numbers
    ("m v=1_0", "ns"),
    ("m v=0x10", "ns"),
    ("m v=1.5i", "ns"),
    ("m v=-i", "ns"),
    ("m v=+1", "ns"),
    ("m v=.", "ns"),
    ("m v=1e", "ns"),
    # escapes, in every position
    ("m\\ x,t\\ k=v\\ v f\\ k=1 1", "ns"),
    ("m\\,x,t\\,k=v\\,v f\\,k=1 1", "ns"),
    ("m\\=x,t\\=k=v\\=v f\\=k=1 1", "ns"),
    ('m\\"x,t=a\\"b f\\"k=1 1', "ns"),
    ("m\\\\x,t=a\\\\b f\\\\k=1 1", "ns"),
    ('m=x"y,t=a"b f"k=1 1', "ns"),
    ("m,t==a v=1 1", "ns"),
    ("m,t=\\  v=1 1", "ns"),
    ("m,t=a\\ v=1", "ns"),
    ('we\\ at\\,her,lo\\=c=us\\ mid\\,west te\\ mp=82,no\\"te="say \\"hi\\" \\\\o/" 1', "ns"),
    ("m a\\\\=1,b=2 1", "ns"),
    ("m a\\\\=1", "ns"),
    ("ü,ä=ö ß=1 1", "ns"),
    (b"m,t=\xff v=1 1", "ns"),
    # structure
    ("m", "ns"),
    ("m,t=a", "ns"),
    (",t=a v=1", "ns"),
    ("m,=a v=1", "ns"),
    ("m,t=a, v=1", "ns"),
    ("m,t v=1", "ns"),
    ("m,t= v=1", "ns"),
    ("m,t=a=b v=1", "ns"),
    ("m,t=a,t=b v=1", "ns"),
    ("m,b=2,a=1 v=1 1", "ns"),
    ("m =1", "ns"),
    ("m v=1,=2", "ns"),
    ("m v=", "ns"),
    ("m v= 1", "ns"),
    ("m v=1,", "ns"),
    ("m v", "ns"),
    ("  \tm v=1 1", "ns"),
    # what the shard refuses or drops
    ("m,time=a v=1", "ns"),
    ("m time=1", "ns"),
    ("m time=1,v=2 1", "ns"),
    ("m v=1,v=2 1", "ns"),
    ("m v=1,v=2i", "ns"),
    # bodies: comments, blank lines, partial writes, lines that run on
    ("# comment\n\n   \nm v=1 1\n  # indented\nm v=2 2\n", "ns"),
    ("m v=1 1\nm v=NaN 2\nm v=3 3\nbad\nm v=5 5\n", "ns"),
    ("bad\nm v= 1\n", "ns"),
    ('m s="a\nb" 1\nm v=2 2\n', "ns"),
    ("m v=1\\\nm v=2 3\nm v=4 4\n", "ns"),
    ('m v=1 1\nm s="x\nm v=2 2\n', "ns"),
    ('# a comment="with a quote\nm v=1 1\n"\nm v=2 2\n', "ns"),
]

# Where we accept more than InfluxDB 1.x, on purpose: (body, precision, InfluxDB's reason).
EXTENSIONS = [
    ("m v=5u", "ns", "invalid number"),  # unsigned integers, as InfluxDB 2.x takes them
    ("m v=1 5\r\n", "ns", "bad timestamp"),  # CRLF line ends
    ("m v=1\r\n", "ns", "invalid number"),
]


def expected_answer(body, precision):
    """What InfluxDB should answer, judging by our parse: (status, error text, points)."""
    points, errors = parse(body, precision)
    stored = [
        (p.measurement, p.tags, {k: (type(v).__name__, v) for k, v in p.fields.items()}, p.time_ns)
        for p in points
    ]
    if not errors:
        return 204, None, stored
    return 400, write_error(points, errors), stored


def _without_unknown_times(stored, ours):
    """Points written without a timestamp get InfluxDB's clock: compare all but that."""
    return [
        (name, tags, fields, t if mine[3] is not None else None)
        for (name, tags, fields, t), mine in zip(stored, ours, strict=True)
    ]


def _case_id(case):
    body = case[0] if isinstance(case[0], str) else case[0].decode("latin-1")
    return f"{body[:40]!r}@{case[1]}"


@pytest.mark.parametrize("body, precision", CORPUS, ids=[_case_id(c) for c in CORPUS])
def test_influxdb_and_we_agree(influx, body, precision):
    raw = body.encode() if isinstance(body, str) else body
    status, error, ours = expected_answer(raw, precision)
    got_status, got_error, stored = influx.write_and_read(raw, precision)
    assert (got_status, got_error) == (status, error)
    key = lambda p: (p[0], sorted(p[1].items()), p[3] is None, p[3] or 0)  # noqa: E731
    ours, stored = sorted(ours, key=key), sorted(stored, key=key)
    assert len(stored) == len(ours)
    assert _without_unknown_times(stored, ours) == ours


@pytest.mark.parametrize("body, precision, influx_reason", EXTENSIONS)
def test_our_extensions_are_what_influxdb_1x_refuses(influx, body, precision, influx_reason):
    points, errors = parse(body, precision)
    assert errors == [] and len(points) == 1
    status, error, _ = influx.write_and_read(body.encode(), precision)
    assert status == 400 and error.endswith(f": {influx_reason}")


def test_corpus_covers_both_sides():
    accepted = sum(1 for body, precision in CORPUS if not parse(body, precision)[1])
    assert accepted >= 30 and len(CORPUS) - accepted >= 40
