"""Benchmark pcapcheck against tshark's TCP analysis and tcptrace on one capture.

    python3 bench/run.py CAPTURE [--repeat 5] [--json out.json] [--profile]

Each round runs every tool once, in turn (alternating, so a busy neighbour slows all of them
alike); the table shows the median wall time and CPU time over the rounds and the highest peak
RSS.  The targets are checked against the medians:

- pcapcheck at most 0.2 x the time of ``tshark -T fields -e tcp.stream -e tcp.analysis.flags``;
- pcapcheck faster than ``tcptrace -n -l``;
- pcapcheck at least 1 million packets per second per core (packets / CPU seconds);
- pcapcheck peak RSS at most 200 MB.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import Sample, Summary, count_packets, measure, summarize, warm_page_cache  # noqa: E402

TOOLS = ("pcapcheck", "tshark", "tcptrace")
MAX_TSHARK_RATIO = 0.2
MIN_PACKETS_PER_CPU_SECOND = 1_000_000
MAX_RSS_MB = 200.0


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    wanted: str
    measured: str
    passed: bool | None  # None: could not be measured


def pcapcheck_command() -> list[str]:
    """How to start pcapcheck as an installed one starts: the console script next to this
    interpreter.  Not ``shutil.which``: on PATH there may be a version manager's shim (pyenv's is a
    bash script that runs ``pyenv exec``, ~70 ms a run that no installed pcapcheck pays)."""
    script = Path(sys.executable).with_name("pcapcheck.exe" if os.name == "nt" else "pcapcheck")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "pcapcheck.cli"]


def compile_package() -> None:
    """Byte-compile pcapcheck, as ``pip install`` of a wheel does.  An editable install run with
    PYTHONDONTWRITEBYTECODE set (as on some CI images) never caches its bytecode: every run would
    compile the changed modules again (~50 ms), which no installed copy does."""
    import compileall

    import pcapcheck

    compileall.compile_dir(str(Path(pcapcheck.__file__).parent), quiet=1)


def pcapcheck_argv(capture: str, out_dir: str, jobs: int = 1) -> list[str]:
    prefix = pcapcheck_command()
    extra = ["--jobs", str(jobs)] if jobs != 1 else []
    return [*prefix, "analyze", capture, "--json", f"{out_dir}/x.json", "--csv", f"{out_dir}/xcsv", "-q", *extra]


def parallel_tool(jobs: int) -> str:
    """The name of the row for pcapcheck run with ``--jobs``."""
    return f"pcapcheck-j{jobs}"


@dataclass(frozen=True, slots=True)
class ToolCommand:
    argv: list[str]
    ok_codes: tuple[int, ...] = (0,)
    # Files a complete run must leave behind.  pcapcheck's exit 1 means "findings", but an
    # uncaught Python exception exits 1 too: only the written reports tell the two apart.
    outputs: tuple[str, ...] = ()


def tool_commands(capture: str, out_dir: str, jobs: int = 1) -> dict[str, ToolCommand]:
    commands = {
        # 0 = clean, 1 = findings at or above --fail-on: both are a complete analysis.
        "pcapcheck": ToolCommand(
            pcapcheck_argv(capture, out_dir), (0, 1), (f"{out_dir}/x.json", f"{out_dir}/xcsv/connections.csv")
        ),
        "tshark": ToolCommand(
            ["tshark", "-r", capture, "-T", "fields", "-e", "tcp.stream", "-e", "tcp.analysis.flags"]
        ),
        "tcptrace": ToolCommand(["tcptrace", "-n", "-l", capture]),
    }
    if jobs != 1:
        commands[parallel_tool(jobs)] = ToolCommand(
            pcapcheck_argv(capture, out_dir, jobs), (0, 1), (f"{out_dir}/x.json", f"{out_dir}/xcsv/connections.csv")
        )
    return commands


def run_once(tool: str, command: ToolCommand) -> Sample:
    for path in command.outputs:
        Path(path).unlink(missing_ok=True)
    sample = measure(tool, command.argv, command.ok_codes)
    missing = [path for path in command.outputs if not Path(path).is_file()]
    if sample.ok and missing:
        why = f"exit {sample.returncode} without writing {Path(missing[0]).name}: {sample.last_stderr}"
        sample = replace(sample, error=why)
    return sample


def run_rounds(capture: str, tools: list[str], repeat: int, progress=None, jobs: int = 1) -> list[Sample]:
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory(prefix="pcb-run-") as out_dir:
        commands = tool_commands(capture, out_dir, jobs)
        for round_no in range(1, repeat + 1):
            for tool in tools:
                sample = run_once(tool, commands[tool])
                samples.append(sample)
                if progress:
                    status = "ok" if sample.ok else sample.error
                    progress(f"round {round_no}/{repeat} {tool:<9} {sample.seconds:7.2f} s  {status}")
    return samples


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else float("nan")


def check_targets(summaries: dict[str, Summary], packets: int) -> list[Target]:
    pc = summaries.get("pcapcheck")
    if pc is None or pc.runs == 0:
        why = pc.error if pc else "not run"
        return [Target("pcapcheck ran", "a complete analysis", why or "failed", False)]
    targets = []
    tshark = summaries.get("tshark")
    if tshark and tshark.runs:
        r = ratio(pc.seconds, tshark.seconds)
        targets.append(Target("time vs tshark", f"<= {MAX_TSHARK_RATIO:.2f} x", f"{r:.3f} x", r <= MAX_TSHARK_RATIO))
    tcptrace = summaries.get("tcptrace")
    if tcptrace and tcptrace.runs:
        r = ratio(pc.seconds, tcptrace.seconds)
        targets.append(Target("time vs tcptrace", "< 1.00 x", f"{r:.3f} x", r < 1.0))
    rate = packets / pc.cpu_seconds if pc.cpu_seconds else float("nan")
    wanted_rate = f">= {MIN_PACKETS_PER_CPU_SECOND:,}"
    targets.append(Target("packets/s per core", wanted_rate, f"{rate:,.0f}", rate >= MIN_PACKETS_PER_CPU_SECOND))
    rss = pc.max_rss_mb
    targets.append(Target("peak RSS", f"<= {MAX_RSS_MB:.0f} MB", f"{rss:.0f} MB", rss <= MAX_RSS_MB))
    return targets


def machine_note(load_before: tuple[float, ...], load_after: tuple[float, ...]) -> str:
    return (
        f"{platform.node()}: {os.cpu_count()} cores, load average {load_before[0]:.2f} before / "
        f"{load_after[0]:.2f} after (other work on the machine inflates every tool's time)"
    )


def render_table(summaries: dict[str, Summary], packets: int, targets: list[Target]) -> str:
    lines = [
        f"{'tool':<13} {'runs':>4} {'median s':>9} {'cpu s':>7} {'packets/s':>12} {'peak RSS MB':>12}",
    ]
    for s in summaries.values():
        if s.runs == 0:
            lines.append(f"{s.tool:<13} {0:>4}  failed: {s.error}")
            continue
        rate = packets / s.seconds if s.seconds else float("nan")
        lines.append(
            f"{s.tool:<13} {s.runs:>4} {s.seconds:>9.2f} {s.cpu_seconds:>7.2f} {rate:>12,.0f} {s.max_rss_mb:>12.0f}"
            + (f"  ({s.failures} failed: {s.error})" if s.failures else "")
        )
    pc = summaries.get("pcapcheck")
    for name, s in summaries.items():
        if name.startswith("pcapcheck-j") and pc and pc.runs and s.runs:
            lines.append(f"{name} speed-up over one process: {ratio(pc.seconds, s.seconds):.2f} x wall")
            for other in ("tshark", "tcptrace"):
                if other in summaries and summaries[other].runs:
                    lines.append(f"{name}/{other}: {ratio(s.seconds, summaries[other].seconds):.3f} wall")
    for other in ("tshark", "tcptrace"):
        if pc and other in summaries and pc.runs and summaries[other].runs:
            wall = ratio(pc.seconds, summaries[other].seconds)
            cpu = ratio(pc.cpu_seconds, summaries[other].cpu_seconds)
            # CPU ratios are what a loaded machine distorts least.
            lines.append(f"pcapcheck/{other}: {wall:.3f} wall, {cpu:.3f} cpu")
    lines.append("")
    for t in targets:
        verdict = "PASS" if t.passed else ("FAIL" if t.passed is False else "n/a")
        lines.append(f"{verdict:<4}  {t.name:<20} wanted {t.wanted:<14} measured {t.measured}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capture")
    parser.add_argument("--repeat", type=int, default=5, help="rounds; the medians are over these (default 5)")
    parser.add_argument("--json", type=Path, help="write every sample, the medians and the targets here")
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma list, default pcapcheck,tshark,tcptrace")
    parser.add_argument("--profile", action="store_true", help="then profile pcapcheck once with pyinstrument")
    parser.add_argument("--top", type=int, default=20, help="hot spots to print with --profile")
    parser.add_argument(
        "--jobs", type=int, default=1, help="also run pcapcheck --jobs N in each round and show its speed-up"
    )
    args = parser.parse_args(argv)

    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = [t for t in tools if t not in TOOLS]
    if unknown or not tools:
        parser.error(f"unknown tool(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(TOOLS)}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if not Path(args.capture).is_file():
        print(f"run: error: {args.capture}: no such file", file=sys.stderr)
        return 2
    if args.jobs != 1 and "pcapcheck" in tools:
        tools.insert(tools.index("pcapcheck") + 1, parallel_tool(args.jobs))
    missing = [t for t in tools if not t.startswith("pcapcheck") and shutil.which(t) is None]
    if missing:
        print(f"run: error: not on PATH: {', '.join(missing)}", file=sys.stderr)
        return 2

    packets = count_packets(args.capture)
    warm_page_cache(args.capture)
    if any(t.startswith("pcapcheck") for t in tools):
        compile_package()
    load_before = os.getloadavg()
    started = time.time()
    samples = run_rounds(
        args.capture, tools, args.repeat, progress=lambda line: print(line, file=sys.stderr), jobs=args.jobs
    )
    load_after = os.getloadavg()
    summaries = {tool: summarize(tool, samples) for tool in tools}
    targets = check_targets(summaries, packets) if "pcapcheck" in tools else []

    size_mb = Path(args.capture).stat().st_size / 1e6
    print(f"{args.capture}: {packets:,} packets, {size_mb:.1f} MB; {args.repeat} alternating rounds")
    print(machine_note(load_before, load_after))
    print(render_table(summaries, packets, targets))

    profile_text = ""
    if args.profile:
        from hotspots import profile_pcapcheck

        profile_text = profile_pcapcheck(args.capture, args.top)
        print("\n" + profile_text)

    if args.json:
        report = {
            "capture": args.capture,
            "packets": packets,
            "bytes": Path(args.capture).stat().st_size,
            "started": started,
            "repeat": args.repeat,
            "machine": {"cores": os.cpu_count(), "load_before": load_before, "load_after": load_after},
            "samples": [asdict(s) for s in samples],
            "medians": {tool: asdict(s) for tool, s in summaries.items()},
            "targets": [asdict(t) for t in targets],
            "profile": profile_text,
        }
        args.json.write_text(json.dumps(report, indent=2, allow_nan=True) + "\n")
    return 0 if all(t.passed for t in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
