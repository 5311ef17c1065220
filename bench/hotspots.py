"""Where pcapcheck spends its time: one run under pyinstrument, summed by function.

    python3 bench/hotspots.py CAPTURE [--top 20]

Self time says which function body burns the CPU; inclusive time (counted once per stack, so
recursion is not double-counted) says which stage or call is worth making faster.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Hotspot:
    function: str
    location: str  # short file path:line
    self_seconds: float
    inclusive_seconds: float


def profile_session(argv: list[str], session_path: Path) -> int:
    """Run ``python -m <argv...>`` under pyinstrument, saving the session; returns the exit code."""
    cmd = [sys.executable, "-m", "pyinstrument", "-r", "pyisession", "-o", str(session_path), "-m", *argv]
    return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode


def hotspots(session_path: Path) -> tuple[float, list[Hotspot]]:
    """(total seconds, every function with its self and inclusive time), heaviest self time first."""
    from pyinstrument.session import Session

    session = Session.load(str(session_path))
    root = session.root_frame()
    self_time: dict[tuple[str, str], float] = defaultdict(float)
    inclusive: dict[tuple[str, str], float] = defaultdict(float)
    if root is None:
        return 0.0, []

    # Iterative walk: deep pcapcheck stacks must not hit Python's recursion limit.
    stack = [(root, None, frozenset())]
    while stack:
        frame, parent_key, on_path = stack.pop()
        if frame.is_synthetic:  # pyinstrument's "[self]" leaves: time spent in the parent's own body
            if parent_key is not None:
                self_time[parent_key] += frame.time
            continue
        key = (frame.function or "?", f"{frame.file_path_short}:{frame.line_no}")
        if key not in on_path:
            inclusive[key] += frame.time
        self_time[key] += frame.time - sum(child.time for child in frame.children)
        path = on_path | {key}
        stack.extend((child, key, path) for child in frame.children)

    spots = [Hotspot(k[0], k[1], self_time[k], inclusive[k]) for k in inclusive]
    spots.sort(key=lambda h: h.self_seconds, reverse=True)
    return root.time, spots


def render(total: float, spots: list[Hotspot], top: int, only: str = "") -> str:
    """A table of the ``top`` heaviest by self time, then the ``top`` heaviest in ``only`` by inclusive time."""
    lines = [f"profiled run: {total:.2f} s (sampled by pyinstrument; overhead inflates small functions)", ""]
    lines.append(f"{'self s':>8} {'self %':>7} {'incl s':>8}  function (location)")
    for h in spots[:top]:
        share = 100 * h.self_seconds / total if total else 0.0
        lines.append(f"{h.self_seconds:8.2f} {share:6.1f}% {h.inclusive_seconds:8.2f}  {h.function} ({h.location})")
    if only:
        own = sorted((h for h in spots if only in h.location), key=lambda h: h.inclusive_seconds, reverse=True)
        lines += ["", f"heaviest {only} calls by inclusive time:", f"{'incl s':>8} {'incl %':>7}  function (location)"]
        for h in own[:top]:
            share = 100 * h.inclusive_seconds / total if total else 0.0
            lines.append(f"{h.inclusive_seconds:8.2f} {share:6.1f}%  {h.function} ({h.location})")
    return "\n".join(lines)


def profile_pcapcheck(capture: str, top: int = 20) -> str:
    """Profile the full ``pcapcheck analyze`` job on ``capture`` and render its hot spots."""
    with tempfile.TemporaryDirectory(prefix="pcb-prof-") as tmp:
        session = Path(tmp) / "run.pyisession"
        argv = ["pcapcheck.cli", "analyze", capture, "--json", f"{tmp}/x.json", "--csv", f"{tmp}/xcsv", "-q"]
        code = profile_session(argv, session)
        if not session.exists():
            return f"profiling failed: pcapcheck exited {code} and left no session"
        total, spots = hotspots(session)
    note = "" if code in (0, 1) else f"\n(pcapcheck exited {code}: the profile covers a failed run)"
    return render(total, spots, top, only="pcapcheck/") + note


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capture")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    print(profile_pcapcheck(args.capture, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
