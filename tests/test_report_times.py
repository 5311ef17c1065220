"""Report times are the capture's times (pcapcheck.timestamps).

The specification: a time in the JSON is the float nearest the capture's timestamp (rounded once),
so a microsecond capture's times read as their digits, as Wireshark shows them (1795549490.863129,
not 1795549490.8631291); a duration is the exact difference of the timestamps, rounded once
(0.000439, not 0.00043892860412597656); the vectorised conversions and texts the writers use equal
Python's int / int and repr element for element.
"""

from __future__ import annotations

import json
import math
import re
import struct
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pcapcheck.analysis import analyze
from pcapcheck.config import load_config
from pcapcheck.reports import write_reports
from pcapcheck.timestamps import NS_PER_S, seconds, texts

ROOT = Path(__file__).resolve().parent.parent
LINUX_SAMPLE = ROOT / "samples" / "abortive-linger0.pcap"  # Linux stack, microsecond timestamps
NANOSECOND_CAPTURE = ROOT / "tests" / "data" / "big-endian-nsec.pcap"

EPOCH_US = st.integers(1_000_000_000_000_000, 2_000_000_000_000_000).map(lambda us: us * 1000)
ANY_NS = st.integers(-(2**63), 2**63 - 1)
SMALL_NS = st.integers(-(10**10), 10**10)
SMALL_US = st.integers(-(10**10), 10**10).map(lambda us: us * 1000)  # 1e-4 s and up: the digit path
# Zero, the first plain text, times that whole + fraction / 1e9 rounds twice (it can below 2**20 s),
# the first big integer.
EDGES = st.sampled_from([0, 10**5, 1_948_649_446, 2_819_734_419_226, 2**53, 2**53 + 1])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(EPOCH_US, ANY_NS, SMALL_NS, SMALL_US, EDGES), max_size=40))
def test_vectorised_seconds_and_texts_equal_int_division_and_repr(values):
    ns = np.asarray(values, dtype=np.int64)
    expected = [n / NS_PER_S for n in values]
    assert seconds(ns).tolist() == expected
    assert texts(ns) == [repr(x) for x in expected]


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=2.0**10, max_value=9.2e9), st.integers(-2, 2), st.booleans())  # int64 ns: to 9.22e9 s
def test_times_next_to_a_rounding_midpoint_round_as_the_exact_time(near, step, whole_microseconds):
    # The hardest times: the nanosecond (or microsecond) nearest a midpoint between two floats.
    midpoint = Fraction(near) + Fraction(math.ulp(near)) / 2
    unit = 1000 if whole_microseconds else 1
    n = (round(midpoint * NS_PER_S / unit) + step) * unit
    assert seconds(np.array([n, n])).tolist() == [n / NS_PER_S] * 2
    assert texts(np.array([n, n])) == [repr(n / NS_PER_S)] * 2


def _frame_times(path: Path) -> list[int]:
    """Each record's timestamp in ns, read from the pcap headers (frame k at index k - 1)."""
    data = path.read_bytes()
    magic = data[:4]
    order = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    per_unit = 1 if magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d") else 1000
    times, at = [], 24
    while at + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(order + "IIII", data[at : at + 16])
        times.append(sec * NS_PER_S + frac * per_unit)
        at += 16 + incl
    return times


def _json_report(path: Path, tmp_path: Path) -> tuple[dict, str]:
    result = analyze([str(path)], load_config(None))
    out = tmp_path / "report.json"
    write_reports(result, json_path=out)
    text = out.read_text(encoding="utf-8")
    return json.loads(text), text


def _digits(ns: int) -> str:
    whole, frac = divmod(ns, NS_PER_S)
    return f"{whole}.{frac:09d}".rstrip("0").removesuffix(".") + ("" if frac else ".0")


def test_a_microsecond_captures_times_read_as_its_digits(tmp_path):
    times = _frame_times(LINUX_SAMPLE)
    doc, text = _json_report(LINUX_SAMPLE, tmp_path)
    assert doc["connections"]
    for conn in doc["connections"]:
        first, last = times[conn["first_frame"] - 1], times[conn["last_frame"] - 1]
        assert f'"start":{_digits(first)},"end":{_digits(last)},' in text
        assert conn["duration"] == (last - first) / NS_PER_S
        for state in conn["states"]:
            assert state["time"] == times[state["frame"] - 1] / NS_PER_S, state
    shown = re.findall(r'"time":([0-9.e+-]+)', text)
    assert shown and all(len(t.partition(".")[2]) <= 6 for t in shown)  # no false seventh decimal


def test_a_nanosecond_captures_times_are_rounded_once(tmp_path):
    times = _frame_times(NANOSECOND_CAPTURE)
    assert any(t % 1000 for t in times)  # the capture does use its nanoseconds
    doc, _ = _json_report(NANOSECOND_CAPTURE, tmp_path)
    assert doc["connections"]
    for conn in doc["connections"]:
        first, last = times[conn["first_frame"] - 1], times[conn["last_frame"] - 1]
        assert (conn["start"], conn["end"]) == (first / NS_PER_S, last / NS_PER_S)
        assert conn["duration"] == (last - first) / NS_PER_S
        for state in conn["states"]:
            assert state["time"] == times[state["frame"] - 1] / NS_PER_S, state
    assert doc["capture"]["first_time"] == min(times) / NS_PER_S


def test_texts_of_mixed_times_load_no_more_of_numpy():
    # np.unique's first call imports numpy.ma: about 8 ms in every process of a run.
    script = (
        "import sys, numpy as np; from pcapcheck.timestamps import texts; "
        "texts(np.array([34_000, 439_000, 1_795_549_490_863_129_000, 1_795_549_490_863_129_123])); "
        "print('numpy.ma' in sys.modules)"
    )
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    assert shown.stdout.strip() == "False"
