"""Command line: ``pcapcheck analyze | flows | rules | explain``.

Exit codes: 0 nothing at or above --fail-on, 1 a finding at or above it, 2 usage or input error.
Every PcapcheckError becomes one line on stderr and exit 2, never a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

if TYPE_CHECKING:
    from rich.console import Console

from . import __version__
from .errors import ConfigError, PcapcheckError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Check that the TCP connections in a capture opened and closed the way the RFCs say.",
)


@functools.cache
def err_console() -> "Console":
    # rich costs tens of milliseconds to import: a quiet run that writes reports never needs it.
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def out_console() -> "Console":
    from rich.console import Console

    return Console(highlight=False)

EXIT_OK, EXIT_FINDINGS, EXIT_INPUT = 0, 1, 2

Captures = Annotated[list[Path], typer.Argument(help="pcap/pcapng files (gzip ok); several = one timeline")]
ReaderOpt = Annotated[str, typer.Option("--reader", help="dpkt (default, fast) or tshark (pyshark extra)")]


def fail(message: str) -> typer.Exit:
    """One line on stderr, exit 2."""
    err_console().print(f"pcapcheck: error: {message}", markup=False)
    return typer.Exit(EXIT_INPUT)


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"pcapcheck {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=version_callback, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    pass


@app.command()
def flows(captures: Captures, reader: ReaderOpt = "dpkt") -> None:
    """One row per connection: id, client, server, frames, packets and bytes each way, flags seen."""
    from .capture import open_capture
    from .connections import rebuild
    from .reports.flows import print_flows

    try:
        capture = open_capture([str(p) for p in captures], reader=reader)
        conns = list(rebuild(capture.batches()))
    except PcapcheckError as err:
        raise fail(str(err)) from None
    print_flows(conns, capture.info, out_console())
    for warning in capture.info.warnings:
        err_console().print(f"pcapcheck: warning: {warning}", markup=False)


@app.command()
def analyze(
    captures: Captures,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the JSON report here.")] = None,
    csv_dir: Annotated[
        Optional[Path], typer.Option("--csv", help="Write connections.csv and findings.csv into this folder.")
    ] = None,
    html_path: Annotated[Optional[Path], typer.Option("--html", help="Write the HTML report here.")] = None,
    junit_path: Annotated[Optional[Path], typer.Option("--junit", help="Write JUnit XML here.")] = None,
    sarif_path: Annotated[Optional[Path], typer.Option("--sarif", help="Write SARIF 2.1.0 here.")] = None,
    profile: Annotated[
        Optional[str], typer.Option("--profile", help="Stack profile: rfc9293, linux (default), windows.")
    ] = None,
    rules_dir: Annotated[
        Optional[list[Path]], typer.Option("--rules", help="Extra folder of rule files (repeatable).")
    ] = None,
    config_file: Annotated[
        Optional[Path], typer.Option("--config", help="pcapcheck.toml or pyproject.toml with [tool.pcapcheck].")
    ] = None,
    disable: Annotated[Optional[list[str]], typer.Option("--disable", help="Disable a rule (repeatable).")] = None,
    severity: Annotated[
        Optional[list[str]], typer.Option("--severity", help="RULE=error|warning|info (repeatable).")
    ] = None,
    param: Annotated[
        Optional[list[str]], typer.Option("--param", help="RULE.NAME=VALUE rule parameter (repeatable).")
    ] = None,
    baseline: Annotated[
        Optional[Path], typer.Option("--baseline", help="Suppress findings recorded in this baseline file.")
    ] = None,
    write_baseline: Annotated[
        Optional[Path], typer.Option("--write-baseline", help="Record the current findings as a baseline.")
    ] = None,
    fail_on: Annotated[
        Optional[str], typer.Option("--fail-on", help="error (default), warning, info or never.")
    ] = None,
    reader: ReaderOpt = "dpkt",
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs", "-j",
            help="Processes to analyse with, sharding connections by 4-tuple, and to write the report files (0 = per core).",
        ),  # fmt: skip
    ] = 1,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no summary.")] = False,
) -> None:
    """Rebuild every TCP connection, replay it through RFC 9293 and report violations."""
    from .analysis import analyze as run_analysis
    from .config import load_config
    from .reports import write_reports
    from .reports.baseline import apply_baseline, write_baseline_file
    from .reports.fragments import renderer_for
    from .reports.gate import exit_code

    try:
        config = load_config(
            config_file,
            profile=profile,
            extra_rule_dirs=[str(p) for p in rules_dir or []],
            disable=disable or [],
            severity=severity or [],
            params=param or [],
            fail_on=fail_on,
        )
        paths = [str(p) for p in captures]
        if jobs < 0:
            raise ConfigError(f"--jobs must be 0 (one per core) or a positive number, not {jobs}")
        # Passed only when asked for, so an analyze() without the parameter (a test double) still fits.
        parallel = {"jobs": jobs} if jobs != 1 else {}
        render = renderer_for(json=json_path is not None, csv=csv_dir is not None)
        if render is not None:
            parallel["render"] = render  # a large capture's report text is made as its buckets are
        if html_path is None:
            parallel["steps"] = False  # only the HTML ladder draws a connection's replay steps
        if html_path is None and junit_path is None:
            # Nothing lists every connection: the JSON and CSV come from the text ``render`` makes,
            # the other reports read the connections with findings, by id.
            parallel["all_reports"] = False
            if quiet and sarif_path is None and baseline is None and write_baseline is None:
                parallel["by_id"] = False  # nor does anything look one up: no summary, SARIF or baseline
        if not quiet and sys.stderr.isatty():
            from .reports.terminal import progress_reader

            showing = progress_reader(paths, enabled=True, console=err_console())
        else:
            showing = contextlib.nullcontext(None)  # what progress_reader gives when not enabled
        with showing as progress:
            result = run_analysis(paths, config, reader=reader, progress=progress, **parallel)
        # Record before suppressing: a baseline rewritten while one is applied keeps the old entries.
        if write_baseline is not None:
            write_baseline_file(result, write_baseline)
        if baseline is not None:
            apply_baseline(result, baseline)
        # Written even when result.error is set: the reports carry the error and what was computed.
        write_reports(
            result,
            json_path=json_path,
            csv_dir=csv_dir,
            html_path=html_path,
            junit_path=junit_path,
            sarif_path=sarif_path,
            **({"jobs": _resolved(jobs)} if jobs != 1 else {}),  # the report files in parallel too
        )
        code = exit_code(result.findings, config.fail_on)
    except PcapcheckError as err:
        raise fail(str(err)) from None
    if not quiet:
        from .reports.terminal import print_summary

        print_summary(result, out_console())
    for warning in result.capture.warnings:
        err_console().print(f"pcapcheck: warning: {warning}", markup=False)
    if result.error is not None:
        raise fail(result.error)
    raise typer.Exit(code)


def _resolved(jobs: int) -> int:
    from .shard import resolve_jobs

    return resolve_jobs(jobs)


@app.command("rules")
def list_rules(
    rules_dir: Annotated[Optional[list[Path]], typer.Option("--rules", help="Extra folder of rule files.")] = None,
) -> None:
    """List the rule catalogue: id, severity, category, title."""
    from .catalogue import load_catalogue
    from .reports.rules_view import print_rules

    try:
        catalogue = load_catalogue([str(p) for p in rules_dir or []])
    except PcapcheckError as err:
        raise fail(str(err)) from None
    print_rules(catalogue, out_console())


@app.command()
def explain(
    rule: Annotated[str, typer.Argument(help="Rule id, e.g. short-time-wait")],
    rules_dir: Annotated[Optional[list[Path]], typer.Option("--rules", help="Extra folder of rule files.")] = None,
) -> None:
    """Explain one rule: what it checks, the RFC text it rests on, parameters and the remedy."""
    from .catalogue import load_catalogue
    from .reports.rules_view import print_explanation

    try:
        catalogue = load_catalogue([str(p) for p in rules_dir or []])
    except PcapcheckError as err:
        raise fail(str(err)) from None
    if rule not in catalogue:
        raise fail(f"unknown rule '{rule}' (see 'pcapcheck rules')")
    print_explanation(catalogue[rule], out_console())


def run() -> None:
    """The console script and ``python3 -m pcapcheck``: ``app``, then the process ends.  Every
    object left dies with it, so the interpreter's garbage collections at exit, which would walk
    them all (about 25 ms, a fortieth of a 250k-packet run), are told to leave them."""
    try:
        app(prog_name="pcapcheck")
    finally:
        gc.freeze()


if __name__ == "__main__":
    run()
