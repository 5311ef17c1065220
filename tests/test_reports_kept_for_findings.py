"""A partitioned run whose reports read only the connections with findings keeps only theirs.

Without --html and --junit nothing lists every connection: the JSON and CSV come from the text made
as each bucket is analysed, and the terminal, SARIF and the baseline look up the connections their
findings name (``document.connections_by_id``).  Such a run (``analyze(all_reports=False)``) pickles
only those reports; every report it writes must be the full run's, byte for byte.
"""

from __future__ import annotations

import io

import pytest
from rich.console import Console

import pcapcheck.analysis
import pcapcheck.store as store
from pcapcheck.analysis import analyze
from pcapcheck.cli import app
from pcapcheck.errors import PcapcheckError
from pcapcheck.reports import write_reports
from pcapcheck.reports.fragments import renderer_for
from pcapcheck.reports.terminal import print_summary
from tests.samples_support import all_samples, config_for
from tests.test_report_lookup import small_chunks  # noqa: F401  a fixture: findings in many chunks and buckets
from tests.test_reports_sample import sample_result

# Samples with findings and more than one connection, the first of them with a quiet connection.
SAMPLES = sorted(
    (s for s in all_samples() if s.findings and len(s.connections) > 1),
    key=lambda s: len(s.connections) == len({f.connection for f in s.findings}),
)[:10]


def run(sample, all_reports: bool, jobs: int = 1, by_id: bool = True):
    return analyze(
        [str(p) for p in sample.capture_paths], config_for(sample), steps=False, jobs=jobs,
        render=renderer_for(json=True, csv=True), all_reports=all_reports, by_id=by_id,
    )  # fmt: skip


def written(result, out) -> dict[str, str]:
    write_reports(result, json_path=out / "x.json", csv_dir=out / "csv", sarif_path=out / "x.sarif")
    console = Console(file=io.StringIO(), width=120, color_system=None)
    print_summary(result, console)
    texts = {p.name: p.read_text() for p in (out / "x.json", out / "csv/connections.csv", out / "csv/findings.csv")}
    texts["summary"] = console.file.getvalue()
    texts["sarif"] = (out / "x.sarif").read_text()
    return texts


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_its_json_csv_sarif_and_summary_are_the_full_runs(tmp_path, small_chunks, sample, jobs):
    (tmp_path / "full").mkdir()
    (tmp_path / "kept").mkdir()
    full = written(run(sample, all_reports=True, jobs=jobs), tmp_path / "full")
    kept = written(run(sample, all_reports=False, jobs=jobs), tmp_path / "kept")
    assert kept == full


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_it_holds_the_reports_of_connections_with_findings_as_the_full_run_has_them(small_chunks, sample):
    full, kept = run(sample, all_reports=True), run(sample, all_reports=False)
    assert type(kept.connections).__name__ == "ConnectionStore"
    named = {f.connection for f in kept.findings}
    assert named
    assert kept.connections.reports_of(named) == {c.id: c for c in full.connections if c.id in named}


def test_it_does_not_hold_the_others(small_chunks):
    kept = run(SAMPLES[0], all_reports=False)
    quiet = set(range(1, len(kept.connections) + 1)) - {f.connection for f in kept.findings}
    assert quiet
    assert kept.connections.reports_of(quiet) == {}


def test_listing_every_connection_of_it_is_an_error_not_a_short_list(small_chunks):
    kept = run(SAMPLES[0], all_reports=False)
    with pytest.raises(PcapcheckError, match="kept only those with findings"):
        list(kept.connections)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_run_that_looks_nothing_up_writes_the_same_json_and_csv_and_keeps_no_report(
    tmp_path, small_chunks, jobs, monkeypatch
):
    sample = SAMPLES[0]
    full = run(sample, all_reports=True, jobs=jobs)
    spilled = []
    real = store._stored
    monkeypatch.setattr(store, "_stored", lambda chunk: (spilled.extend(chunk), real(chunk))[1])
    bare = run(sample, all_reports=False, jobs=1, by_id=False)
    assert spilled == []  # no report pickled (one process: a worker's would not be seen here)
    bare_jobs = run(sample, all_reports=False, jobs=jobs, by_id=False)
    texts = {}
    for name, result in (("full", full), ("bare", bare), ("bare_jobs", bare_jobs)):
        out = tmp_path / name
        out.mkdir()
        write_reports(result, json_path=out / "x.json", csv_dir=out / "csv")
        texts[name] = [(out / f).read_text() for f in ("x.json", "csv/connections.csv", "csv/findings.csv")]
    assert texts["bare"] == texts["full"] == texts["bare_jobs"]
    with pytest.raises(PcapcheckError, match="kept none"):
        bare.connections.reports_of({f.connection for f in bare.findings})


@pytest.mark.parametrize(
    "flags, by_id",
    [
        (["-q"], False),
        ([], True),  # the summary names the connections of the worst findings
        (["-q", "--sarif", "x.sarif"], True),
        (["-q", "--baseline", "base.json"], True),
        (["-q", "--write-baseline", "base.json"], True),
        (["-q", "--html", "x.html"], True),  # keeps every report
    ],
)
def test_the_cli_keeps_no_report_when_nothing_looks_one_up(tmp_path, monkeypatch, flags, by_id):
    argv = ["--json", str(tmp_path / "x.json")] + [f if f.startswith("-") else str(tmp_path / f) for f in flags]
    # The baseline's absence is noticed after the analysis.
    assert analysis_settings(tmp_path, monkeypatch, argv).get("by_id", True) is by_id


def test_a_bucket_whose_text_could_not_be_made_keeps_every_report(tmp_path):
    reports = sorted(sample_result().connections, key=lambda c: c.first_frame)

    def odd(chunk):  # as a renderer meeting a value it cannot format
        yield "json", None

    assert store.write_bucket(str(tmp_path), 0, reports, odd, keep=[0]).kept is None
    made = renderer_for(json=True, csv=False)
    assert store.write_bucket(str(tmp_path), 1, reports, made, keep=[0]).kept.tolist() == [0]


def test_a_full_disk_under_the_report_text_is_one_line(tmp_path, monkeypatch):
    reports = sorted(sample_result().connections, key=lambda c: c.first_frame)
    monkeypatch.setattr(store, "_text_path", lambda directory, bucket, kind: "/dev/full")
    with pytest.raises(PcapcheckError, match="cannot write the temporary report file: No space left on device"):
        store.write_bucket(str(tmp_path), 0, reports, renderer_for(json=True, csv=True))


@pytest.mark.parametrize(
    "outputs, all_reports",
    [
        (["--json", "x.json", "--csv", "csv", "--sarif", "x.sarif"], False),
        (["--json", "x.json", "--junit", "x.xml"], True),
        (["--csv", "csv", "--html", "x.html"], True),
    ],
)
def test_the_cli_keeps_every_report_only_for_html_and_junit(tmp_path, monkeypatch, outputs, all_reports):
    argv = ["-q"] + [o if o.startswith("--") else str(tmp_path / o) for o in outputs]
    assert analysis_settings(tmp_path, monkeypatch, argv).get("all_reports", True) is all_reports


def analysis_settings(tmp_path, monkeypatch, options: list[str]) -> dict:
    """What ``pcapcheck analyze run.pcap OPTIONS`` asks of analysis.analyze (the pipeline faked)."""
    from typer.testing import CliRunner

    asked = {}

    def fake(paths, config, **settings):
        asked.update(settings)
        result = sample_result()
        result.config = config
        return result

    monkeypatch.setattr(pcapcheck.analysis, "analyze", fake)
    CliRunner().invoke(app, ["analyze", str(tmp_path / "run.pcap"), *options])
    return asked
