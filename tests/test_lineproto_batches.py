"""parse_batches (issue 16 item 1): slices of a large write parse exactly as the whole
body does, line numbers included."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vzdivert.ingest.lineproto import parse, parse_batches

LINES = st.sampled_from([
    "leistung value=-5 1795475164222", "m,t=ä v=1i", "bad line", "", "# comment",
    "m v=NaN", "  m v=2", "m s=\"x\"", "m,tag=a\\ b v=3", "m v=1\r", "wärme,ort=küche t=21.5",
])


def joined(body: bytes, batch_lines: int) -> tuple[list, list]:
    points, errors = [], []
    for p, e in parse_batches(body, "ms", batch_lines):
        points += p
        errors += e
    return points, errors


@settings(max_examples=200, deadline=None)
@given(st.lists(LINES, max_size=60), st.integers(1, 8))
def test_batches_parse_like_the_whole_body(lines: list[str], batch_lines: int) -> None:
    body = "\n".join(lines).encode()
    assert joined(body, batch_lines) == parse(body, "ms")


def test_a_large_body_comes_in_several_slices() -> None:
    body = b"".join(f"m,t=ä v={i} {i}\n".encode() for i in range(20_000))
    slices = list(parse_batches(body, "ms", 1024))
    assert len(slices) > 5
    assert max(len(p) for p, _ in slices) < 4 * 1024  # about batch_lines (by bytes)
    points, errors = joined(body + b"bad\n", 1024)
    assert len(points) == 20_000 and errors[0].line == 20_001
    assert points[-1].tags == {"t": "ä"}
