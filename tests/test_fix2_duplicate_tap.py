"""A second tap's copy of a whole capture, merged 50 ms later, adds no fault of the endpoints."""

from __future__ import annotations

from pathlib import Path

import dpkt

from pcapcheck.analysis import analyze
from pcapcheck.config import load_config

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def merged_with_late_copy(sample: Path, out: Path, delay: float) -> Path:
    with sample.open("rb") as f:
        reader = dpkt.pcap.Reader(f)
        link = reader.datalink()
        packets = list(reader)
    both = sorted(packets + [(ts + delay, buf) for ts, buf in packets], key=lambda p: p[0])
    with out.open("wb") as f:
        writer = dpkt.pcap.Writer(f, linktype=link)
        for ts, buf in both:
            writer.writepkt(buf, ts=ts)
    return out


def test_copied_bad_synack_after_the_fin_is_not_a_fin_ack_mismatch(tmp_path):
    capture = merged_with_late_copy(SAMPLES / "crafted-synack-bad-ack.pcap", tmp_path / "two-taps.pcap", 0.05)
    result = analyze([str(capture)], load_config(None))
    rules = {f.rule for f in result.findings if not f.capture_quality}
    assert "fin-ack-mismatch" not in rules
    assert "synack-bad-ack" in rules
