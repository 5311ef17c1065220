"""The replay memo (pcapcheck.replay.memo) changes nothing: with it and without it, the same reports.

Every sample and the bench capture (when present) are analysed twice, memo on and off, and must
give byte-identical JSON.  Generated captures put many connections of one structure with different
timings, windows, options, distances to the capture's end and reused tuples into one run, so that
templates are made and used across them; every report and finding must equal the reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pcapcheck.analysis as analysis
from pcapcheck.analysis import analyze, analyze_connections
from pcapcheck.capture import CaptureInfo
from pcapcheck.catalogue import load_catalogue
from pcapcheck.config import load_config
from pcapcheck.connections import rebuild
from pcapcheck.replay.memo import ENV_SWITCH, ReplayMemo, time_parameters
from pcapcheck.reports.json_report import write_json
from tests.builders import Conversation
from tests.samples_support import all_samples, config_for

SAMPLES = all_samples()
BENCH = Path(__file__).resolve().parent.parent / "bench" / "work" / "shape259k.pcap"


def _json_text(paths: list[str], config, tmp_path: Path, monkeypatch, memo: bool, memos: list | None = None) -> str:
    monkeypatch.setenv(ENV_SWITCH, "1" if memo else "0")
    if memos is not None:
        made = analysis._memo_for

        def recording(*args, **kwargs):
            memo_made = made(*args, **kwargs)
            memos.append(memo_made)
            return memo_made

        monkeypatch.setattr(analysis, "_memo_for", recording)
    out = tmp_path / f"memo-{int(memo)}.json"
    write_json(analyze(paths, config), out)
    monkeypatch.undo()
    return out.read_text()


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_every_sample_gives_the_same_json_with_and_without_the_memo(sample, tmp_path, monkeypatch):
    config = config_for(sample)
    with_memo = _json_text(sample.capture_paths, config, tmp_path, monkeypatch, memo=True)
    without = _json_text(sample.capture_paths, config, tmp_path, monkeypatch, memo=False)
    assert with_memo == without


@pytest.mark.skipif(not BENCH.exists(), reason="bench/work/shape259k.pcap not generated (bench/README.md)")
def test_bench_capture_same_json_and_the_memo_templates_most_connections(tmp_path, monkeypatch):
    config = load_config(None)
    memos: list = []
    with_memo = _json_text([str(BENCH)], config, tmp_path, monkeypatch, memo=True, memos=memos)
    used = [m for m in memos if m is not None]
    connections = with_memo.count('"incarnation"')
    assert used and connections
    hits = sum(m.hits for m in used)
    # 25,000 connections of a handful of shapes: the speed depends on most of them being templated.
    assert hits > 0.9 * connections, (hits, connections)
    without = _json_text([str(BENCH)], config, tmp_path, monkeypatch, memo=False)
    assert with_memo == without


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
    parameters = time_parameters(profile, [config.parameters(spec, profile) for spec in catalogue.values()])
    memo = ReplayMemo(capture_end, parameters)
    run = dict(capture=capture, profile=profile, config=config, catalogue=catalogue)
    fast = analyze_connections(iter(connections), memo=memo, **run)
    return fast, analyze_connections(iter(connections), memo=False, **run), memo


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
