"""The benchmark's own machinery works on a small size: workload, capture generator, measurement.

Not a timed test: nothing here asserts how fast pcapcheck is, only that bench/ measures correctly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dpkt
import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import hotspots  # noqa: E402
import load  # noqa: E402
import measure  # noqa: E402
import run  # noqa: E402
import stages  # noqa: E402

needs_root_and_tcpdump = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("tcpdump") is None or shutil.which("ip") is None,
    reason="needs root, iproute2 and tcpdump",
)


def test_exchange_is_the_same_for_the_same_index_and_seed():
    assert load.exchange_for(41, seed=7) == load.exchange_for(41, seed=7)


def test_request_header_tells_the_server_the_response_size_and_who_closes():
    ex = load.Exchange(request_len=120, response_len=3000, close="half", port=8080)
    request = ex.request()
    assert len(request) == 120
    assert load.parse_header(request[: request.index(b"\n")]) == (120, 3000, "half")


def test_workload_mixes_every_kind_of_close():
    closes = {load.exchange_for(i, seed=1).close for i in range(2000)}
    assert closes == set(load.CLOSES)


def test_measure_reports_the_childs_peak_memory_not_ours():
    touch_80_mb = "b = bytearray(80 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096])"
    sample = measure.measure("alloc", [sys.executable, "-c", touch_80_mb])
    assert sample.ok
    assert 80 <= sample.max_rss_mb < 200


def test_measure_marks_an_unexpected_exit_code_as_a_failed_run_with_its_message():
    sample = measure.measure("boom", [sys.executable, "-c", "import sys; sys.exit('ValueError: broken input')"])
    assert not sample.ok
    assert sample.error == "exit 1: ValueError: broken input"


def test_median_over_runs_ignores_failed_runs_and_keeps_the_worst_memory():
    samples = [
        measure.Sample("t", 1.0, 1.0, 50.0, 0),
        measure.Sample("t", 3.0, 3.0, 70.0, 0),
        measure.Sample("t", 2.0, 2.0, 60.0, 0),
        measure.Sample("t", 0.1, 0.1, 10.0, 2, error="exit 2: bad"),
    ]
    summary = measure.summarize("t", samples)
    assert (summary.runs, summary.failures, summary.seconds, summary.max_rss_mb) == (3, 1, 2.0, 70.0)


def test_pcapcheck_slower_than_a_fifth_of_tshark_fails_the_tshark_target():
    summaries = {
        "pcapcheck": measure.Summary("pcapcheck", 3, 0, seconds=3.0, cpu_seconds=0.5, max_rss_mb=100.0),
        "tshark": measure.Summary("tshark", 3, 0, seconds=10.0, cpu_seconds=9.0, max_rss_mb=300.0),
    }
    verdicts = {t.name: t.passed for t in run.check_targets(summaries, packets=1_000_000)}
    assert verdicts == {"time vs tshark": False, "packets/s per core": True, "peak RSS": True}


def test_hotspots_attribute_time_to_the_function_that_burns_it(tmp_path):
    session = tmp_path / "s.pyisession"
    workload = ["timeit", "-n", "3", "-r", "1", "sorted(range(200_000), key=lambda x: -x)"]
    code = hotspots.profile_session(workload, session)
    assert code == 0
    total, spots = hotspots.hotspots(session)
    assert total > 0
    assert spots[0].self_seconds > 0.3 * total  # the sort (and its key lambda) dominate


@pytest.mark.root
@needs_root_and_tcpdump
def test_make_capture_stops_at_the_packet_count_and_leaves_no_namespace(tmp_path):
    import make_capture

    out = tmp_path / "small.pcap"
    stats = make_capture.make_capture(out, packets=3000, clients=2, max_seconds=60)
    assert stats.packets == 3000
    assert measure.count_packets(str(out)) == 3000
    assert f"pcb-{os.getpid()}" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    with open(out, "rb") as fh:
        reader = dpkt.pcap.Reader(fh)
        assert reader.snaplen == 128
        syns = fins = 0
        for _, frame in reader:
            ip = dpkt.ethernet.Ethernet(frame).data
            if isinstance(ip, dpkt.ip.IP) and isinstance(ip.data, dpkt.tcp.TCP):
                assert {ip.src[:3], ip.dst[:3]} == {bytes([198, 18, 0])}
                syns += bool(ip.data.flags & dpkt.tcp.TH_SYN)
                fins += bool(ip.data.flags & dpkt.tcp.TH_FIN)
    assert syns > 100 and fins > 100  # many whole short connections, not one long stream


def write_handshake_pcap(path: Path) -> None:
    """Three packets: SYN, SYN-ACK, ACK between 198.18.0.1:40000 and 198.18.0.2:80."""
    a, b = bytes([198, 18, 0, 1]), bytes([198, 18, 0, 2])
    with open(path, "wb") as fh:
        writer = dpkt.pcap.Writer(fh, snaplen=128)
        for i, flags in enumerate((dpkt.tcp.TH_SYN, dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK, dpkt.tcp.TH_ACK)):
            forward = i != 1
            tcp = dpkt.tcp.TCP(sport=40000 if forward else 80, dport=80 if forward else 40000, flags=flags, seq=i)
            ip = dpkt.ip.IP(src=a if forward else b, dst=b if forward else a, p=dpkt.ip.IP_PROTO_TCP, data=tcp)
            writer.writepkt(bytes(dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, data=ip)), ts=1.0 + i / 1000)


def test_stage_cut_after_capture_counts_every_tcp_segment(tmp_path):
    capture = tmp_path / "handshake.pcap"
    write_handshake_pcap(capture)
    assert stages.run_cut("capture", str(capture)) == {"segments": 3, "packets": 3}


@pytest.mark.tshark
@pytest.mark.skipif(shutil.which("tshark") is None or shutil.which("tcptrace") is None, reason="needs tshark, tcptrace")
def test_rounds_alternate_the_tools(tmp_path):
    capture = tmp_path / "handshake.pcap"
    write_handshake_pcap(capture)
    samples = run.run_rounds(str(capture), ["tshark", "tcptrace"], repeat=2)
    assert [s.tool for s in samples] == ["tshark", "tcptrace", "tshark", "tcptrace"]
    assert all(s.ok and s.seconds > 0 and s.max_rss_mb > 0 for s in samples)
