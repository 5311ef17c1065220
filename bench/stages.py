"""What each pipeline stage costs: time and peak memory of the pipeline cut after each stage.

    python3 bench/stages.py CAPTURE [--repeat 3]

The pipeline streams (capture -> segments -> connections -> replay -> checks -> reports), so a
stage cannot be timed alone without changing what it does; instead each run stops after one
stage, and the difference between consecutive cuts is that stage's cost.  Unlike a profiler this
adds no overhead.  A cut whose stage is not written yet shows its error and the rest still run.

The "replay" cut replays every connection in full, the reference path; the "analysis" cut serves
most of them from the replay memo's templates and, past 200,000 segments, analyses the capture by
partition bucket, so it can take less than "replay": a stage that takes less than the cut before
it shows "-".  The "capture" stage's packets/s is the decoding rate on its own.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import count_packets, warm_page_cache  # noqa: E402
from run import ToolCommand, run_once, tool_commands  # noqa: E402

CUTS = ("import", "capture", "connections", "replay", "analysis", "full")


def run_cut(cut: str, capture: str) -> dict:
    """The child's work: the pipeline up to and including ``cut``; returns what it counted."""
    import pcapcheck.cli  # noqa: F401  the CLI's own import cost is part of every run

    if cut == "import":
        return {}
    from pcapcheck.capture import open_capture

    if cut == "capture":
        cap = open_capture([capture])
        segments = sum(len(batch) for batch in cap.batches())
        return {"segments": segments, "packets": cap.info.packets}
    from pcapcheck.config import load_config
    from pcapcheck.connections import rebuild

    if cut == "connections":
        return {"connections": sum(1 for _ in rebuild(open_capture([capture]).batches()))}
    if cut == "replay":
        from pcapcheck.replay import replay

        profile = load_config(None).profile_for_run()
        count = 0
        for conn in rebuild(open_capture([capture]).batches()):
            replay(conn, profile)
            count += 1
        return {"connections": count}
    from pcapcheck.analysis import analyze

    # As the CLI runs it without --html (no replay steps kept), and with the report text made where
    # each bucket is analysed, as the "full" cut's JSON and CSV ask for.
    from pcapcheck.reports.fragments import renderer_for

    result = analyze([capture], load_config(None), steps=False, render=renderer_for(json=True, csv=True))
    return {"connections": len(result.connections), "findings": len(result.findings), "error": result.error}


def cut_command(cut: str, capture: str, out_dir: str) -> ToolCommand:
    if cut == "full":
        return tool_commands(capture, out_dir)["pcapcheck"]
    return ToolCommand([sys.executable, __file__, "--child", cut, capture])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capture")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", choices=CUTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_cut(args.child, args.capture)))
        return 0

    packets = count_packets(args.capture)
    warm_page_cache(args.capture)
    print(f"{args.capture}: {packets:,} packets; medians of {args.repeat} alternating rounds")
    print(f"{'cut after':<12} {'median s':>9} {'cpu s':>7} {'stage s':>8} {'stage packets/s':>16} {'peak RSS MB':>12}")
    results: dict[str, list] = {cut: [] for cut in CUTS}
    with tempfile.TemporaryDirectory(prefix="pcb-stages-") as out_dir:
        for _ in range(args.repeat):
            for cut in CUTS:
                results[cut].append(run_once(cut, cut_command(cut, args.capture, out_dir)))
    previous: float | None = 0.0
    for cut in CUTS:
        good = [s for s in results[cut] if s.ok]
        if not good:
            print(f"{cut:<12}  failed: {results[cut][-1].error}")
            previous = None  # the next cut's difference would span two stages
            continue
        seconds = statistics.median(s.seconds for s in good)
        cpu = statistics.median(s.cpu_seconds for s in good)
        rss = max(s.max_rss_mb for s in good)
        if previous is None or seconds < previous:
            stage, rate = f"{'-':>8}", f"{'-':>16}"
        else:
            # The packets each stage takes in, per second of that stage alone (the import reads none).
            stage = f"{seconds - previous:>8.2f}"
            rate = f"{packets / (seconds - previous):>16,.0f}" if cut != "import" and seconds > previous else f"{'-':>16}"
        print(f"{cut:<12} {seconds:>9.2f} {cpu:>7.2f} {stage} {rate} {rss:>12.0f}")
        previous = seconds
    return 0


if __name__ == "__main__":
    sys.exit(main())
