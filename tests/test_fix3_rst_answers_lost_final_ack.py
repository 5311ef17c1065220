"""A RST answering a retransmitted FIN whose final ACK the capture lost (second review, item 7).

Input: samples/tw-not-kept-rst.pcap with frame 9 dropped (as ``editcap IN OUT 9``): the client
closed (FIN, frame 6), the server acknowledged it (7) and sent its FIN (8); the client's final ACK
(9) is gone from the capture; the server retransmitted its FIN (10, same sequence number) and the
client answered with RST (11), 216 ms after the first FIN.  The retransmission shows the client
had been sent that FIN before, so its final ACK may well have gone out unseen: the RST answers a
retransmitted FIN in TIME-WAIT (RFC 9293 §3.10.7.4), not a first FIN, and nothing in the capture
shows the final ACK was never sent.
"""

from __future__ import annotations

from pathlib import Path

import dpkt

from pcapcheck.analysis import analyze
from pcapcheck.config import load_config
from pcapcheck.segments import Side
from tests.samples_support import all_samples, verdict_without_frames

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"
CLIENT = "198.18.0.1:40006"


def _without_frames(sample: Path, out: Path, frames: set[int]) -> Path:
    """``editcap sample out frames...`` with dpkt: the packets keep their order and timestamps."""
    with sample.open("rb") as f:
        reader = dpkt.pcap.Reader(f)
        link = reader.datalink()
        packets = [p for n, p in enumerate(reader, start=1) if n not in frames]
    with out.open("wb") as f:
        writer = dpkt.pcap.Writer(f, linktype=link)
        for ts, buf in packets:
            writer.writepkt(buf, ts=ts)
    return out


def test_rst_to_retransmitted_fin_without_captured_final_ack_is_rst_answers_fin_retransmit():
    sample = next(s for s in all_samples() if s.name == "tw-not-kept-rst")
    verdict = verdict_without_frames(sample, [9])
    faults = sorted((f[0], f[1], f[3], f[4]) for f in verdict.findings if f[1] in ("error", "warning"))
    assert faults == [("rst-answers-fin-retransmit", "error", CLIENT, 11)]


def test_rst_answers_fin_retransmit_message_says_the_final_ack_was_not_captured(tmp_path):
    capture = _without_frames(SAMPLES_DIR / "tw-not-kept-rst.pcap", tmp_path / "no-final-ack.pcap", {9})
    result = analyze([str(capture)], load_config(None))
    (finding,) = [f for f in result.findings if f.rule == "rst-answers-fin-retransmit"]
    assert (finding.frame, finding.endpoint) == (10, Side.CLIENT)  # frames renumbered by the drop
    assert "its final ACK was not captured" in finding.message
    assert "after its final ACK" not in finding.message
