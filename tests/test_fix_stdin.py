"""A capture read from a pipe or a FIFO is analysed like the same file (review item C: stdin/FIFO).

`cat f | pcapcheck analyze /dev/stdin` and `pcapcheck analyze <(zcat f.gz)` hand over a stream that
cannot seek: it is read front to back in chunks, never with a traceback.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "tw-reuse-client.pcap"


def analyze(capture: str, out: Path, *extra: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pcapcheck", "analyze", capture, "--json", str(out), "-q", *extra],
        input=stdin,
        capture_output=True,
        timeout=60,
    )


def verdict(json_path: Path) -> tuple:
    report = json.loads(json_path.read_text())
    conns = [(c["id"], c["first_frame"], c["last_frame"], c["close"]) for c in report["connections"]]
    findings = sorted((f["rule"], f["frame"]) for f in report["findings"])
    return conns, findings


def test_capture_piped_to_stdin_gives_the_same_verdict_as_the_file(tmp_path):
    analyze(str(SAMPLE), tmp_path / "file.json")
    piped = analyze("/dev/stdin", tmp_path / "pipe.json", stdin=SAMPLE.read_bytes())
    assert (piped.returncode, piped.stderr) == (0, b"")
    assert verdict(tmp_path / "pipe.json") == verdict(tmp_path / "file.json")


def test_gzipped_capture_piped_to_stdin_is_unpacked_on_the_fly(tmp_path):
    analyze(str(SAMPLE), tmp_path / "file.json")
    piped = analyze("/dev/stdin", tmp_path / "pipe.json", stdin=gzip.compress(SAMPLE.read_bytes()))
    assert piped.returncode == 0
    assert verdict(tmp_path / "pipe.json") == verdict(tmp_path / "file.json")


def test_fifo_is_read_once_even_when_several_jobs_are_asked_for(tmp_path):
    analyze(str(SAMPLE), tmp_path / "file.json")
    fifo = tmp_path / "capture.fifo"
    os.mkfifo(fifo)

    def feed():
        with open(fifo, "wb") as f:
            f.write(SAMPLE.read_bytes())

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    run = analyze(str(fifo), tmp_path / "fifo.json", "--jobs", "2")
    writer.join(timeout=10)
    assert (run.returncode, run.stderr) == (0, b"")
    assert verdict(tmp_path / "fifo.json") == verdict(tmp_path / "file.json")


def test_garbage_on_stdin_is_one_error_line_and_exit_2(tmp_path):
    run = analyze("/dev/stdin", tmp_path / "x.json", stdin=b"hello, not a capture\n")
    assert run.returncode == 2
    assert run.stderr.decode().strip().splitlines() == [
        "pcapcheck: error: /dev/stdin: not a pcap or pcapng file (magic 0x6c6c6568)"
    ]


def test_tshark_reader_refuses_a_pipe_in_one_line(tmp_path):
    # tshark and the header probe would each read part of the stream: no silent empty result.
    run = analyze("/dev/stdin", tmp_path / "x.json", "--reader", "tshark", stdin=SAMPLE.read_bytes())
    assert run.returncode == 2
    assert run.stderr.decode().strip().splitlines() == [
        "pcapcheck: error: /dev/stdin: the tshark reader needs a regular file, not a pipe (use --reader dpkt)"
    ]
