"""The replay memo (pcapcheck.replay.memo) changes nothing: with it and without it, the same reports.

Every sample and the bench captures (when present) are analysed twice, memo on and off, and must
give byte-identical JSON and equal Steps for the connections with findings (the HTML ladder draws
them).  Generated captures put many connections of one structure with different timings, windows,
options, distances to the capture's end, aborts and reused tuples into one run, so that templates
are made and used across them, in both lanes; every report and finding must equal the reference.
"""

from __future__ import annotations

import re
from dataclasses import replace
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pcapcheck.analysis as analysis
from pcapcheck.analysis import analyze, analyze_connections, analyze_table
from pcapcheck.capture import CaptureInfo, open_capture
from pcapcheck.catalogue import load_catalogue
from pcapcheck.config import load_config
from pcapcheck.connections import rebuild, rebuild_table, segment_columns, segment_list
from pcapcheck.replay.facts import find_controls
from pcapcheck.replay.memo import ENV_SWITCH, ReplayMemo, _event_order, memo_for_run
from pcapcheck.replay.timeline import event_order
from pcapcheck.replay.vantage import infer_vantage
from pcapcheck.reports import csv_report, json_report
from pcapcheck.reports.json_report import write_json
from tests.builders import Conversation
from tests.samples_support import all_samples, config_for

SAMPLES = all_samples()
BENCH = Path(__file__).resolve().parent.parent / "bench" / "work" / "shape259k.pcap"
BENCH_1M = BENCH.with_name("1m.pcap")


def _json_text(paths: list[str], config, tmp_path: Path, monkeypatch, memo: bool, memos: list | None = None) -> str:
    return _analysed(paths, config, tmp_path, monkeypatch, memo, memos)[0]


def _analysed(
    paths: list[str], config, tmp_path: Path, monkeypatch, memo: bool, memos: list | None = None, steps: bool = True
) -> tuple[str, list]:
    """The JSON report, and every connection's report as iterating the result makes it (a templated
    block's members are made then: pcapcheck.templated), steps included unless ``steps`` is False
    (the CLI without --html)."""
    monkeypatch.setenv(ENV_SWITCH, "1" if memo else "0")
    if memos is not None:
        made = analysis._memo_for

        def recording(*args, **kwargs):
            memo_made = made(*args, **kwargs)
            memos.append(memo_made)
            return memo_made

        monkeypatch.setattr(analysis, "_memo_for", recording)
    out = tmp_path / f"memo-{int(memo)}{'' if steps else '-lean'}.json"
    result = analyze(paths, config, steps=steps)
    write_json(result, out)
    monkeypatch.undo()
    return out.read_text(), list(result.connections)


def _distinct(memos: list) -> list[ReplayMemo]:
    """The memos made (a run analysed in buckets hands its one memo to each)."""
    return list({id(m): m for m in memos if m is not None}.values())


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_every_sample_gives_the_same_json_with_and_without_the_memo(sample, tmp_path, monkeypatch):
    config = config_for(sample)
    with_memo = _analysed(sample.capture_paths, config, tmp_path, monkeypatch, memo=True)
    without = _analysed(sample.capture_paths, config, tmp_path, monkeypatch, memo=False)
    assert with_memo[0] == without[0]
    assert with_memo[1] == without[1]
    lean = analyze(sample.capture_paths, config, steps=False)  # the CLI without --html
    write_json(lean, tmp_path / "lean.json")
    assert (tmp_path / "lean.json").read_text() == without[0]


@pytest.mark.skipif(not BENCH.exists(), reason="bench/work/shape259k.pcap not generated (bench/README.md)")
def test_bench_capture_same_json_and_the_memo_templates_most_connections(tmp_path, monkeypatch):
    config = load_config(None)
    memos: list = []
    with_memo, reports = _analysed([str(BENCH)], config, tmp_path, monkeypatch, memo=True, memos=memos)
    used = _distinct(memos)
    connections = with_memo.count('"incarnation"')
    steps = [r for r in reports if r.steps is not None]
    assert used and connections and steps
    hits = sum(m.hits for m in used)
    # 25,000 connections of a handful of shapes: the speed depends on most of them being templated,
    # the client aborts (findings: abortive-close) too, in the checked lane.
    assert hits > 0.95 * connections, (hits, connections)
    assert sum(m.checked_hits for m in used) > 0.5 * len(steps), (sum(m.checked_hits for m in used), len(steps))
    without, reports_without = _analysed([str(BENCH)], config, tmp_path, monkeypatch, memo=False)
    assert with_memo == without
    assert reports == reports_without


needs_1m_slice = pytest.mark.skipif(
    not BENCH_1M.exists() or shutil.which("tcpdump") is None,
    reason="bench/work/1m.pcap not generated (bench/README.md), or no tcpdump to cut a slice of it",
)


def ports_of_1m(tmp_path: Path) -> Path:
    """One port range of the 1M bench capture: every incarnation on those tuples, at ~1/20 of the cost."""
    part = tmp_path / "ports.pcap"
    subprocess.run(
        ["tcpdump", "-r", str(BENCH_1M), "-w", str(part), "tcp portrange 40000-42999"],
        check=True, capture_output=True,
    )  # fmt: skip
    return part


@needs_1m_slice
def test_reused_tuples_of_the_1m_capture_take_the_checked_lane(tmp_path, monkeypatch):
    part = ports_of_1m(tmp_path)
    config = load_config(None)
    memos: list = []
    with_memo, reports = _analysed([str(part)], config, tmp_path, monkeypatch, memo=True, memos=memos)
    (memo,) = _distinct(memos)
    reopened = len(re.findall(r'"incarnation": ?[2-9]', with_memo))
    assert reopened >= 100, reopened  # the ports wrap around about twice in the 1M capture
    # Every reopened tuple's checks read the incarnation before, so each hit of theirs is checked.
    assert memo.checked_hits >= 0.8 * reopened, (memo.checked_hits, reopened)
    without, reports_without = _analysed([str(part)], config, tmp_path, monkeypatch, memo=False)
    assert with_memo == without
    assert reports == reports_without


def test_the_event_order_the_memo_shares_is_the_replays(tmp_path):
    # engine.replay takes the memo's order on a miss instead of computing its own.  Compared on
    # every connection, not only those the memo looks up.
    compared = 0
    for sample in SAMPLES:
        capture = open_capture(sample.capture_paths)
        for conn in rebuild(capture.batches()):
            columns = segment_columns(conn)
            _vantage, legs = infer_vantage(conn, columns)
            reference = event_order(conn, find_controls(segment_list(conn, columns)), legs, columns)
            assert _event_order(conn) == reference, (sample.name, conn.id)
            compared += 1
    assert compared > 20


def test_environment_switch_turns_the_memo_off(monkeypatch):
    monkeypatch.setenv(ENV_SWITCH, "0")
    assert analysis._memo_for(None, CaptureInfo(paths=[]), *_run_settings()) is None
    monkeypatch.setenv(ENV_SWITCH, "1")
    assert isinstance(analysis._memo_for(None, CaptureInfo(paths=[]), *_run_settings()), ReplayMemo)
    assert analysis._memo_for(False, CaptureInfo(paths=[]), *_run_settings()) is None


# --- generated captures ----------------------------------------------------------------------------

GAPS = [0.00002, 0.0001, 0.001, 0.03, 0.3]  # around TIMING_NOISE, the reorder window, RTOs
STARTS = [0.0] * 4 + [0.19, 0.2, 0.5, 1.0, 29.99, 59.98, 60.0, 60.5, 240.0]  # around the run's time parameters


def _run_settings():
    config = load_config(None)
    catalogue = load_catalogue(config.extra_rule_dirs)
    return config.profile_for_run(), config, catalogue


@st.composite
def scripts(draw) -> list[tuple[int, str, int]]:
    """One connection's structure: (side, flags, payload) per segment, as the replay tests build them."""
    script = [(0, "S", 0), (1, "SA", 0), (0, "A", 0)]
    for _ in range(draw(st.integers(0, 4))):
        side = draw(st.sampled_from([0, 1]))
        script.append((side, "PA", draw(st.sampled_from([1, 200, 1400]))))
        if draw(st.booleans()):
            script.append((1 - side, "A", 0))
    closer = draw(st.sampled_from([0, 1]))
    peer = 1 - closer
    ending = draw(st.sampled_from(["graceful", "half-close", "abort", "simultaneous", "open"]))
    if ending == "abort":
        return script + [(closer, "RA", 0)]
    if ending == "open":
        return script + [(closer, "FA", 0)]
    if ending == "simultaneous":
        return script + [(closer, "FA", 0), (peer, "FA", 0), (closer, "A", 0), (peer, "A", 0)]
    script += [(closer, "FA", 0), (peer, "A", 0)]
    if ending == "half-close":
        script += [(peer, "PA", 100), (closer, "A", 0)]
    return script + [(peer, "FA", 0), (closer, "A", 0)]


@st.composite
def variants(draw, script, options: dict) -> dict:
    """How one connection of ``script`` differs from the others: timing, windows, options, port.

    Mostly alike (one pace for all its segments, the run's options), so that connections meet on
    one key; now and then a segment off pace, another window, other options or a reused tuple."""
    pace = draw(st.sampled_from([0.00002, 0.0001, 0.0003]))
    gaps = [draw(st.sampled_from([pace] * 30 + GAPS)) for _ in script]
    odd = draw(st.integers(0, 9)) == 0
    return {
        "start": draw(st.sampled_from(STARTS)) + draw(st.sampled_from([0.0, 0.0001, 0.01])),
        "gaps": gaps,
        "window": draw(st.sampled_from([0, 150, 40000])) if odd else options["window"],
        "wscale": draw(st.sampled_from([None, 7])) if odd else options["wscale"],
        "ts": draw(st.booleans()) if odd else options["ts"],
        "port": draw(st.integers(40000, 40040)),  # a port drawn twice: the tuple is reused
        "isn": draw(st.sampled_from([1000, 2**32 - 10, 7_000_000])),
    }


run_options = st.fixed_dictionaries(
    {"window": st.sampled_from([64240, 64240, 1024]), "wscale": st.sampled_from([None, 7]), "ts": st.booleans()}
)


def _conversation(script, variant: dict, base: float) -> Conversation:
    conv = Conversation(
        client=("198.18.0.1", variant["port"]),
        client_isn=variant["isn"],
        server_isn=5000,
        start=base + variant["start"],
    )
    for k, ((side, flags, length), gap) in enumerate(zip(script, variant["gaps"])):
        options = {}
        if "S" in flags and variant["wscale"] is not None:
            options["wscale"] = variant["wscale"]
        if variant["ts"]:
            options["ts"] = (100 + k, 50 + k)
        conv.send(side, flags, length=length, dt=gap, window=variant["window"], **options)
    return conv


def _capture_rows(conversations: list[Conversation]) -> np.ndarray:
    """The conversations as one capture: merged by time, frames numbered across all of them."""
    rows = np.concatenate([conv.rows() for conv in conversations])
    rows = rows[np.argsort(rows["ts_ns"], kind="stable")]
    rows["frame"] = rows["file_frame"] = np.arange(1, len(rows) + 1)
    return rows


def _both_ways(rows: np.ndarray, capture_end: float):
    profile, config, catalogue = _run_settings()
    connections = list(rebuild([rows]))
    capture = CaptureInfo(paths=["generated"], last_time=capture_end)
    rule_params = [config.parameters(spec, profile) for spec in catalogue.values()]
    memo = memo_for_run(capture_end, profile, rule_params)
    run = dict(capture=capture, profile=profile, config=config, catalogue=catalogue)
    # The CLI's way: templated members stay columns (pcapcheck.templated), made into reports here.
    fast = analyze_table(rebuild_table([rows]), memo=memo, **run)
    fast.reports = list(fast.reports)
    reference = analyze_connections(iter(connections), memo=False, **run)
    # The memo on connection objects (no columns) agrees too.
    by_objects = analyze_connections(iter(connections), memo=memo_for_run(capture_end, profile, rule_params), **run)
    assert by_objects.reports == reference.reports and by_objects.findings == reference.findings
    # Without steps (the CLI without --html) every report made from a template is kept as columns,
    # those whose TIME-WAIT the next incarnation ended too (analysis._matched_ended_kind).
    lean = analyze_table(rebuild_table([rows]), memo=memo_for_run(capture_end, profile, rule_params), steps=False, **run)
    assert list(lean.reports) == [replace(r, steps=None) for r in reference.reports]
    assert lean.findings == reference.findings
    assert _texts(lean.reports) == _texts(reference.reports)
    return fast, reference, memo


def _texts(reports) -> tuple[list[str], list[str]]:
    """The JSON records and CSV rows of ``reports`` (a templated block's made a block at a time)."""
    json_records = list(json_report.connection_texts(reports))
    rows = list(csv_report._connection_rows(reports))
    return json_records, rows


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(st.data())
def test_generated_connections_of_one_structure_agree_with_the_reference(data):
    script, options = data.draw(scripts()), data.draw(run_options)
    chosen = [data.draw(variants(script, options)) for _ in range(data.draw(st.integers(4, 12)))]
    # Two scripts in one run: a template must never serve a connection of another structure.
    other = data.draw(scripts())
    chosen_other = [data.draw(variants(other, options)) for _ in range(2)]
    base = 1_700_000_000.0
    conversations = [_conversation(script, v, base) for v in chosen]
    conversations += [_conversation(other, dict(v, port=v["port"] + 100), base) for v in chosen_other]
    rows = _capture_rows(conversations)
    last = int(rows["ts_ns"].max()) / 1e9
    capture_end = last + data.draw(st.sampled_from([0.0, 0.3, 1.0, 60.0, 300.0]))
    fast, reference, _ = _both_ways(rows, capture_end)
    assert fast.error is None and reference.error is None
    assert fast.reports == reference.reports
    assert fast.findings == reference.findings


def test_identical_connections_are_templated_and_reports_keep_their_own_frames_and_times():
    script = [(0, "S", 0), (1, "SA", 0), (0, "A", 0), (0, "PA", 100), (1, "A", 0), (1, "PA", 300),
              (0, "A", 0), (0, "FA", 0), (1, "A", 0), (1, "FA", 0), (0, "A", 0)]  # fmt: skip
    variant = {"gaps": [0.00005] * len(script), "window": 64240, "wscale": 7, "ts": True, "isn": 1000}
    conversations = [
        _conversation(script, dict(variant, start=0.01 * k, port=41000 + k), 1_700_000_000.0) for k in range(20)
    ]
    rows = _capture_rows(conversations)
    # 10 s after the last one: no connection is near a time parameter's distance to the end.
    fast, reference, memo = _both_ways(rows, int(rows["ts_ns"].max()) / 1e9 + 10.0)
    assert fast.reports == reference.reports and not reference.findings
    # Times on the float grid round differently by a few ns, which can tip two near events of the
    # timeline: a few connections may need a template of their own.
    assert memo.seen == 20 and memo.hits >= 15, (memo.seen, memo.hits)
    assert len({r.transitions[0].frame for r in fast.reports}) == 20


@st.composite
def reopenings(draw, script, options: dict) -> list[dict]:
    """Variants of ``script`` on a few tuples, each reopened one to three times, one after the other:
    within TIME-WAIT (time-wait-reuse), around the run's time parameters, or well after."""
    chosen = []
    pace = [draw(st.sampled_from([0.00002, 0.0001]))] * len(script)  # mostly one, so keys meet
    for port in range(41000, 41000 + draw(st.integers(1, 4))):
        start = draw(st.sampled_from([0.0, 0.5, 3.0]))
        for incarnation in range(draw(st.integers(2, 5))):
            variant = draw(variants(script, options))
            if draw(st.integers(0, 3)):
                variant["gaps"] = pace
            isn = variant["isn"] + 1_000_000 * incarnation  # a SYN with the old ISN would retransmit
            chosen.append(dict(variant, port=port, start=start, isn=isn % 2**32))
            start += sum(variant["gaps"]) + draw(st.sampled_from([0.05, 0.2, 1.0, 2.0, 30.0, 61.0]))
    return chosen


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(st.data())
def test_generated_reopened_tuples_agree_with_the_reference(data):
    script, options = data.draw(scripts()), data.draw(run_options)
    chosen = data.draw(reopenings(script, options))
    base = 1_700_000_000.0
    rows = _capture_rows([_conversation(script, v, base) for v in chosen])
    last = int(rows["ts_ns"].max()) / 1e9
    capture_end = last + data.draw(st.sampled_from([0.0, 1.0, 60.0, 300.0]))
    fast, reference, _ = _both_ways(rows, capture_end)
    assert fast.error is None and reference.error is None
    assert fast.reports == reference.reports  # steps included, where kept
    assert fast.findings == reference.findings


def test_aborts_and_reopened_tuples_take_the_checked_lane_with_the_reference_steps():
    # Each tuple: a graceful connection, then the same client reopening it 1.5 s later, inside
    # TIME-WAIT (a finding on the reuse), and aborting (abortive-close).
    graceful = [(0, "S", 0), (1, "SA", 0), (0, "A", 0), (0, "PA", 100), (1, "A", 0), (1, "PA", 300),
                (0, "A", 0), (0, "FA", 0), (1, "A", 0), (1, "FA", 0), (0, "A", 0)]  # fmt: skip
    abort = [(0, "S", 0), (1, "SA", 0), (0, "A", 0), (0, "PA", 100), (1, "PA", 300), (0, "RA", 0)]
    variant = {"window": 64240, "wscale": 7, "ts": True, "isn": 1000}
    conversations = []
    for k in range(15):
        conversations.append(
            _conversation(graceful, dict(variant, gaps=[0.00005] * 11, start=0.01 * k, port=41000 + k), 1_700_000_000.0)
        )
        reopen = dict(variant, gaps=[0.00005] * 6, start=1.5 + 0.01 * k, port=41000 + k, isn=900_000)
        conversations.append(_conversation(abort, reopen, 1_700_000_000.0))
    rows = _capture_rows(conversations)
    fast, reference, memo = _both_ways(rows, int(rows["ts_ns"].max()) / 1e9 + 10.0)
    rules = {f.rule for f in reference.findings}
    assert "abortive-close" in rules and rules & {"time-wait-reuse", "short-time-wait"}, rules
    assert fast.reports == reference.reports and fast.findings == reference.findings
    reopened = [r for r in fast.reports if r.incarnation == 2]
    assert len(reopened) == 15 and all(r.steps for r in reopened)
    assert memo.checked_hits >= 10, (memo.seen, memo.hits, memo.checked_hits)


def test_every_rule_that_reads_the_previous_incarnation_runs_on_every_member():
    """The memo skips, for a template's members, the rules that found nothing in its first: sound
    only for rules that read what the key fixes.  A rule reading the previous incarnation must be
    declared READS_PREVIOUS."""
    import inspect

    from pcapcheck.checks import _MODULES, READS_PREVIOUS

    for module in _MODULES:
        source = inspect.getsource(module)
        if "previous" in source.replace("previous one's", "").lower() and (
            "ctx.previous" in source or "find_reuse" in source
        ):
            assert module.RULE in READS_PREVIOUS, module.RULE
    assert READS_PREVIOUS == {"short-time-wait", "time-wait-reuse"}


def test_truncation_is_in_the_key_only_where_a_rule_reads_it():
    """Timestamps negotiated on the SYNs; the client's request carries them in half of the
    connections, and the snap length cut the request in half of each half.  timestamps-dropped
    skips a cut segment: without timestamps, a cut and a whole request are different keys; with
    them, cut and whole requests share their templates."""
    conversations, cut = [], []
    for k in range(24):
        stamped = k % 2 == 0
        conv = Conversation(client=("198.18.0.1", 41000 + k), client_isn=1000, server_isn=5000,
                            start=1_700_000_000.0 + 0.01 * k)  # fmt: skip
        conv.client("S", dt=0.00005, wscale=7, ts=(100, 0)).server("SA", dt=0.00005, wscale=7, ts=(50, 100))
        conv.client("A", dt=0.00005, ts=(101, 50))
        conv.client("PA", length=1400, dt=0.00005, ts=(102, 50) if stamped else None)
        conv.server("A", dt=0.00005, ts=(51, 102)).client("FA", dt=0.00005, ts=(103, 51))
        conv.server("FA", dt=0.00005, ts=(52, 103)).client("A", dt=0.00005, ts=(104, 52))
        conversations.append(conv)
        cut.append(k % 4 < 2)
    rows = _capture_rows(conversations)
    cut_ports = [41000 + k for k in range(24) if cut[k]]
    rows["truncated"] = (rows["payload_len"] == 1400) & np.isin(rows["sport"], cut_ports)  # the requests
    fast, reference, memo = _both_ways(rows, int(rows["ts_ns"].max()) / 1e9 + 10.0)
    dropped = sorted(f.connection for f in reference.findings if f.rule == "timestamps-dropped")
    assert dropped == [k + 1 for k in range(24) if k % 2 == 1 and not cut[k]], dropped
    assert fast.findings == reference.findings
    # Whole and cut stamped requests: one sequence of segment codes; unstamped: one each.
    codes = {orders_key[0][: 4 * 8] for orders_key in memo.by_endpoint_orders}  # 8 segments, 4 bytes a code
    assert len(codes) == 3, len(codes)


def test_rules_see_the_capture_end_only_through_the_property_that_notes_the_reading():
    import inspect

    import pcapcheck.checks.reuse as reuse
    from pcapcheck.checks import _MODULES

    for module in [*_MODULES, reuse]:
        assert "_capture_end" not in inspect.getsource(module), module.__name__


def test_when_a_rule_read_the_capture_end_for_a_templates_first_the_rules_run_on_every_member():
    """The key holds the capture's end only as the replay compares it (the TIME-WAIT deadline).
    close-wait-leak reads the end itself.  Connections of one structure leave the server in
    CLOSE-WAIT at 0.5 s intervals, on both sides of its threshold; as with buckets, one memo
    first learns from the two last ones (no leak: too near the end), then serves the others,
    which leaked."""
    from pcapcheck.config import Config

    script = [(0, "S", 0), (1, "SA", 0), (0, "A", 0), (0, "PA", 100), (1, "A", 0), (0, "FA", 0), (1, "A", 0)]
    variant = {"gaps": [0.00005] * len(script), "window": 64240, "wscale": 7, "ts": True, "isn": 1000}
    base = 1_700_000_000.0
    conversations = [_conversation(script, dict(variant, start=0.5 * k, port=41000 + k), base) for k in range(20)]
    capture_end = base + 14.0  # threshold 5 s: the connections opened before base + 9 s leaked
    config = Config(params={"close-wait-leak": {"threshold": 5}})
    profile, catalogue = config.profile_for_run(), load_catalogue(config.extra_rule_dirs)
    rule_params = [config.parameters(spec, profile) for spec in catalogue.values()]
    run = dict(capture=CaptureInfo(paths=["generated"], last_time=capture_end), profile=profile, config=config,
               catalogue=catalogue)  # fmt: skip
    memo = memo_for_run(capture_end, profile, rule_params)
    leaks = []
    for part in (conversations[18:], conversations[:18]):
        rows = _capture_rows(part)
        lean = analyze_table(rebuild_table([rows]), memo=memo, steps=False, **run)
        reference = analyze_connections(iter(list(rebuild([rows]))), memo=False, **run)
        assert lean.findings == reference.findings
        leaks.append([f.connection for f in reference.findings if f.rule == "close-wait-leak"])
    assert leaks == [[], list(range(1, 19))], leaks
    assert memo.hits >= 15, (memo.seen, memo.hits)


def test_keys_forgotten_past_their_bound_find_their_templates_again_by_event_order(monkeypatch):
    import pcapcheck.replay.memo as memo_module

    # One structure at several paces: a key per pace and gap pattern, one template for them all.
    script = [(0, "S", 0), (1, "SA", 0), (0, "A", 0), (0, "PA", 100), (1, "A", 0), (1, "PA", 300),
              (0, "A", 0), (0, "FA", 0), (1, "A", 0), (1, "FA", 0), (0, "A", 0)]  # fmt: skip
    variant = {"window": 64240, "wscale": 7, "ts": True, "isn": 1000}
    paces = [0.00002, 0.00005, 0.0001, 0.0003]
    conversations = [
        _conversation(
            script, dict(variant, gaps=[paces[k % 4]] * len(script), start=0.01 * k, port=41000 + k), 1_700_000_000.0
        )
        for k in range(40)
    ]
    rows = _capture_rows(conversations)
    monkeypatch.setattr(memo_module, "MAX_KEYS", 2)
    fast, reference, memo = _both_ways(rows, int(rows["ts_ns"].max()) / 1e9 + 10.0)
    assert fast.reports == reference.reports and fast.findings == reference.findings
    # Keys are forgotten every two, templates are not: they are found again without a replay.
    assert memo.held <= 4, memo.held
    assert memo.hits >= 30 and memo.ordered_hits >= 10, (memo.hits, memo.ordered_hits)


def test_templates_past_their_bound_keep_those_in_use_and_give_the_reference(monkeypatch):
    import pcapcheck.replay.memo as memo_module

    # Three structures (graceful, server-first, abort) at a few paces, interleaved: with room for
    # two templates the memo must forget some while it goes, and stay right.
    scripts_used = [
        [(0, "S", 0), (1, "SA", 0), (0, "A", 0), (0, "PA", 100), (1, "A", 0), (0, "FA", 0), (1, "A", 0),
         (1, "FA", 0), (0, "A", 0)],
        [(0, "S", 0), (1, "SA", 0), (0, "A", 0), (0, "PA", 100), (1, "PA", 300), (1, "FA", 0), (0, "A", 0),
         (0, "FA", 0), (1, "A", 0)],
        [(0, "S", 0), (1, "SA", 0), (0, "A", 0), (0, "PA", 100), (1, "PA", 300), (0, "RA", 0)],
    ]  # fmt: skip
    variant = {"window": 64240, "wscale": 7, "ts": True, "isn": 1000}
    conversations = []
    for k in range(48):
        script = scripts_used[k % 3 if k < 24 else (k // 8) % 3]
        gaps = [(0.00002, 0.0001)[k % 2]] * len(script)
        conversations.append(
            _conversation(script, dict(variant, gaps=gaps, start=0.01 * k, port=41000 + k), 1_700_000_000.0)
        )
    rows = _capture_rows(conversations)
    monkeypatch.setattr(memo_module, "MAX_TEMPLATES", 2)
    fast, reference, memo = _both_ways(rows, int(rows["ts_ns"].max()) / 1e9 + 10.0)
    assert fast.reports == reference.reports and fast.findings == reference.findings
    assert memo.held <= 3, memo.held
    assert memo.hits >= 10, memo.hits  # templates still serve, between the forgetting
