"""Reading a few reports by id gives what iterating every report gives for those ids.

The terminal's worst findings, SARIF and the baseline name connections by id; on a run of millions
of connections the store reads only the chunks holding them (``ConnectionStore.reports_of``) and a
templated ``ConnectionReports`` makes only those members' reports.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import pcapcheck.partition as partition
import pcapcheck.store as store
from pcapcheck.analysis import analyze, analyze_table
from pcapcheck.capture import CaptureInfo
from pcapcheck.config import load_config
from pcapcheck.connections import rebuild_table
from pcapcheck.reports.document import connections_by_id
from pcapcheck.templated import ConnectionReports
from tests.test_fastlane_equivalence import _capture_rows, _conversation, _run_settings

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def small_chunks(monkeypatch):
    """Tiny buckets of tiny chunks: the wanted reports lie in many chunks of many buckets."""
    monkeypatch.setattr(partition, "IN_MEMORY_SEGMENTS", 3)
    monkeypatch.setattr(partition, "SEGMENTS_PER_BUCKET", 5)
    monkeypatch.setattr(store, "CHUNK", 2)
    monkeypatch.setattr(store, "TEXT_CHUNK", 3)


def by_iteration(connections, ids) -> dict:
    return {c.id: c for c in connections if c.id in set(ids)}


@pytest.mark.parametrize("capture", ["incarnations.pcap", "real-eth.pcap", "midstream.pcap"])
def test_the_store_reads_the_reports_asked_for_as_iteration_has_them(small_chunks, capture):
    result = analyze([str(DATA / capture)], load_config(None))
    conns = result.connections
    assert type(conns).__name__ == "ConnectionStore"
    n = len(conns)
    for ids in ({1}, {n}, set(range(1, n + 1, 3)), set(range(1, n + 1)), {2, n, 0, n + 1, -4}):
        looked_up = conns.reports_of(ids)
        assert looked_up == by_iteration(conns, ids), ids
        assert all(number == report.id for number, report in looked_up.items())


def test_the_store_leaves_out_connections_an_error_cut(tmp_path):
    from tests.test_partition import split_sample
    from pcapcheck.buckets import assemble

    held = store.ConnectionStore(str(tmp_path))
    frames, outcomes = split_sample(held, error="early", error_frame=None)
    outcomes[1].error_frame = sorted(frames)[2]
    assemble(held, outcomes)
    assert len(held) == 2
    assert held.reports_of({1, 2, 3, 4}) == by_iteration(held, {1, 2, 3, 4})
    assert set(held.reports_of({1, 2, 3, 4})) == {1, 2}


def test_templated_reports_make_only_the_members_asked_for():
    script = [(0, "S", 0), (1, "SA", 0), (0, "A", 0), (0, "PA", 100), (1, "A", 0),
              (0, "FA", 0), (1, "A", 0), (1, "FA", 0), (0, "A", 0)]  # fmt: skip
    variant = {"gaps": [0.00005] * len(script), "window": 64240, "wscale": 7, "ts": True, "isn": 1000}
    conversations = [
        _conversation(script, dict(variant, start=0.01 * k, port=41000 + k), 1_700_000_000.0) for k in range(12)
    ]
    rows = _capture_rows(conversations)
    profile, config, catalogue = _run_settings()
    capture = CaptureInfo(paths=["generated"], last_time=int(rows["ts_ns"].max()) / 1e9 + 10.0)
    result = analyze_table(
        rebuild_table([rows]), capture=capture, profile=profile, config=config, catalogue=catalogue, steps=False
    )
    reports = result.reports
    assert type(reports) is ConnectionReports and reports.blocks  # most members stay columns
    for ids in ({1}, {12}, {2, 5, 7}, set(range(1, 13)), {0, 13, 3}):
        assert reports.reports_of(ids) == by_iteration(reports, ids), ids
        assert connections_by_id(reports, ids) == by_iteration(reports, ids)
    # A piece of a larger sequence numbers its members as the whole does.
    piece = next(iter(list(reports.pieces(5))[1:2]))
    assert piece.reports_of({6, 7, 1}) == by_iteration(reports, {6, 7})
