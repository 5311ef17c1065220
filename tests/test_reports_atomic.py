"""Reports are written atomically: an interrupted write never leaves a half-written report."""

from __future__ import annotations

import os

import pytest

from pcapcheck.errors import PcapcheckError
from pcapcheck.reports import write_reports
from pcapcheck.reports.atomic import write_atomically
from tests.test_reports_sample import sample_result


def test_failure_while_writing_keeps_the_previous_file_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("previous report")

    def half_then_crash(handle):
        handle.write('{"half": ')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(target, half_then_crash)
    assert target.read_text() == "previous report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_failing_json_report_keeps_the_previous_report(tmp_path, monkeypatch):
    target = tmp_path / "report.json"
    write_reports(sample_result(), json_path=target)
    before = target.read_text()

    real_fsync = os.fsync

    def disk_full(fd):
        real_fsync(fd)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    result = sample_result()
    result.suppressed = 99
    with pytest.raises(PcapcheckError, match="No space left on device"):
        write_reports(result, json_path=target)
    assert target.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_csv_files_are_each_replaced_whole(tmp_path, monkeypatch):
    write_reports(sample_result(), csv_dir=tmp_path)
    findings_before = (tmp_path / "findings.csv").read_text()
    from pcapcheck.reports import csv_report

    def half_then_fail(result, handle):
        handle.write("rule,sev")
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(csv_report, "write_findings_csv", half_then_fail)
    with pytest.raises(PcapcheckError):
        write_reports(sample_result(), csv_dir=tmp_path)
    assert (tmp_path / "findings.csv").read_text() == findings_before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["connections.csv", "findings.csv"]


def test_written_report_gets_the_usual_permissions_not_the_temp_files_0600(tmp_path):
    target = tmp_path / "r.json"
    old = os.umask(0o022)
    try:
        write_reports(sample_result(), json_path=target)
    finally:
        os.umask(old)
    assert os.stat(target).st_mode & 0o777 == 0o644


def test_missing_folder_is_one_clear_error(tmp_path):
    with pytest.raises(PcapcheckError, match="cannot write report"):
        write_reports(sample_result(), json_path=tmp_path / "no" / "such" / "dir" / "r.json")


def test_a_report_through_a_symbolic_link_replaces_the_file_it_names_and_keeps_the_link(tmp_path):
    real = tmp_path / "reports" / "run.json"
    real.parent.mkdir()
    real.write_text("previous report")
    link = tmp_path / "latest.json"
    link.symlink_to(real)
    write_atomically(link, lambda handle: handle.write("new report"))
    assert link.is_symlink() and real.read_text() == "new report"
    assert sorted(p.name for p in real.parent.iterdir()) == ["run.json"]


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_report_to_a_named_pipe_is_written_through_it(tmp_path, jobs):
    import threading

    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    write_reports(sample_result(), json_path=fifo, csv_dir=tmp_path / "csv", jobs=jobs)
    reader.join(timeout=30)
    assert got and got[0].startswith(b'{"tool":{"name":"pcapcheck"')
    assert fifo.is_fifo() and not list(tmp_path.glob(".*.tmp"))


def test_json_to_dev_stdout_goes_to_standard_output_and_leaves_dev_stdout_alone(tmp_path):
    import subprocess
    import sys

    from tests.samples_support import all_samples

    capture = str(all_samples()[0].capture_paths[0])
    before = os.lstat("/dev/stdout")
    done = subprocess.run(
        [sys.executable, "-m", "pcapcheck", "analyze", capture, "--json", "/dev/stdout", "-q", "--jobs", "2"],
        capture_output=True, timeout=120,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    assert done.stdout.startswith(b'{"tool":{"name":"pcapcheck"')
    after = os.lstat("/dev/stdout")
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)


@pytest.mark.parametrize("mode", ["wb", "ab"])
def test_json_to_dev_stdout_redirected_to_a_file_writes_into_that_file(tmp_path, mode):
    import subprocess
    import sys

    from tests.samples_support import all_samples

    out = tmp_path / "run.json"
    out.write_bytes(b"earlier\n")
    inode = out.stat().st_ino
    capture = str(all_samples()[0].capture_paths[0])
    with open(out, mode) as stdout:
        done = subprocess.run(
            [sys.executable, "-m", "pcapcheck", "analyze", capture, "--json", "/dev/stdout", "-q"],
            stdout=stdout, stderr=subprocess.PIPE, timeout=120,
        )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    assert out.stat().st_ino == inode  # the shell's file, written to, not replaced
    expected = (b"earlier\n" if mode == "ab" else b"") + b'{"tool":{"name":"pcapcheck"'
    assert out.read_bytes().startswith(expected)
    assert not list(tmp_path.glob(".*.tmp"))
