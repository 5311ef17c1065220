#!/usr/bin/env python3
"""Make the sample captures: run scenarios in throw-away namespaces, check, write samples/<name>.toml.

    python3 samples/make.py                  # every scenario (as root)
    python3 samples/make.py lost-final-ack   # just these
    python3 samples/make.py --list           # names and one-line summaries
    python3 samples/make.py --check          # no root needed: every toml parses, every capture exists

For each scenario: run it in a fresh work folder, decode the capture with tshark, and compare the
packet sequence with the outline the expectations were written against.  A real stack's timing
can differ from run to run (a delayed ACK merged into a FIN, say); then the scenario is run again,
up to --attempts times, and only a capture that matches is stored - so the frame numbers in the
toml always describe the stored capture.  ``--draft`` stores it anyway and prints what it got,
which is how a person writes the expectations for a new scenario.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # keep samples/ free of __pycache__

from netlab import SCENARIOS, LabError, Sample, describe_frames, outline_of, read_frames  # noqa: E402

SCENARIO_MODULES = ("scenarios_linux", "crafted")
STATES = {"CLOSED", "LISTEN", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2",
          "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT", "UNKNOWN"}
CLOSES = {"graceful", "abortive", "refused", "incomplete", "open"}


# Scenarios of modules that keep their own registry (``SCENARIOS: name -> fn(out_dir)``, the
# function writing <name>.pcap and <name>.toml itself, as crafted.py does): name -> (fn, source).
EXTERNAL: dict[str, tuple] = {}


def load_scenarios() -> None:
    for module_name in SCENARIO_MODULES:
        if (HERE / f"{module_name}.py").exists() or (HERE / module_name).is_dir():
            module = __import__(module_name)
            own = getattr(module, "SCENARIOS", None)
            if isinstance(own, dict) and own is not SCENARIOS:
                for name, fn in own.items():
                    EXTERNAL[name] = (fn, module_name)


# ---- TOML output (the format is small and fixed; no writer library needed) --------------------


def _str(value: str) -> str:
    if "\n" in value:
        body = value.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
        return f'"""\n{body}"""' if body.endswith("\n") else f'"""\n{body}\n"""'
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return _str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_str(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def sample_toml(sample: Sample, capture_names: list[str], frames_text: str, kernel: str) -> str:
    capture = capture_names[0] if len(capture_names) == 1 else capture_names
    out = [
        "# Made by samples/make.py; expectations written by a person reading the capture (tshark -r).",
        "[sample]",
        f"name = {_str(sample.name)}",
        f"capture = {_value(capture)}",
        f"source = {_str(sample.source)}",
        f"made_by = {_str('python3 samples/make.py ' + sample.name)}",
        f"vantage = {_str(sample.vantage)}",
        f"description = {_str(sample.description.strip() + chr(10))}",
        f"kernel = {_str(kernel)}",
        f"outline = {_value(sample.outline)}",
        f"frames = {_str(frames_text + chr(10))}",
    ]
    if sample.sysctl:
        out.append("[sample.sysctl]")
        out += [f"{_str(k)} = {_str(v)}" for k, v in sample.sysctl.items()]
    for snap in sample.ss:
        out += ["", "[[sample.ss]]", f"moment = {_str(snap.moment)}", f"namespace = {_str(snap.namespace)}",
                f"output = {_str(snap.output + chr(10))}"]
    if sample.analysis:
        out += ["", "[analysis]"] + [f"{k} = {_value(v)}" for k, v in sample.analysis.items()]
    for i, conn in enumerate(sample.connections, 1):
        out += ["", "[[expect.connections]]", f"id = {i}", f"client = {_str(conn.client)}",
                f"server = {_str(conn.server)}", f"incarnation = {conn.incarnation}",
                f"client_final_state = {_str(conn.client_final_state)}",
                f"server_final_state = {_str(conn.server_final_state)}", f"close = {_str(conn.close)}"]
    for find in sample.findings:
        out += ["", "[[expect.findings]]", f"rule = {_str(find.rule)}", f"connection = {find.connection}",
                f"endpoint = {_str(find.endpoint)}", f"frame = {find.frame}"]
    return "\n".join(out) + "\n"


# ---- checks -------------------------------------------------------------------------------


def check_sample_file(toml_path: Path) -> list[str]:
    """Problems with one samples/<name>.toml: parse, required fields, captures exist, frames in range."""
    problems = []
    try:
        doc = tomllib.loads(toml_path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        return [f"{toml_path.name}: {err}"]
    sample = doc.get("sample", {})
    for key in ("name", "capture", "source", "made_by", "vantage", "description", "kernel"):
        if key not in sample:
            problems.append(f"{toml_path.name}: [sample] lacks '{key}'")
    captures = sample.get("capture", [])
    captures = [captures] if isinstance(captures, str) else captures
    for name in captures:
        if not (toml_path.parent / name).is_file():
            problems.append(f"{toml_path.name}: capture '{name}' does not exist")
    if sample.get("vantage") not in ("client", "server", "middle"):
        problems.append(f"{toml_path.name}: vantage must be client, server or middle")
    expect = doc.get("expect", {})
    conns = expect.get("connections", [])
    for i, conn in enumerate(conns, 1):
        if conn.get("id") != i:
            problems.append(f"{toml_path.name}: connection ids must be 1..n in order")
        for side in ("client_final_state", "server_final_state"):
            if conn.get(side) not in STATES:
                problems.append(f"{toml_path.name}: connection {i} {side} '{conn.get(side)}' is not an RFC state name")
        if conn.get("close") not in CLOSES:
            problems.append(f"{toml_path.name}: connection {i} close '{conn.get('close')}' unknown")
    n_frames = len(sample.get("outline", [])) or None
    if n_frames and conns and not problems and shutil.which("tshark"):
        # The stored capture must still be the one the expectations were written against.
        clients = {conn["client"] for conn in conns}
        got = outline_of(read_frames([toml_path.parent / c for c in captures]), clients)
        if got != sample["outline"]:
            problems.append(f"{toml_path.name}: the capture's packets no longer match its outline")
    for find in expect.get("findings", []):
        if not 1 <= find.get("connection", 0) <= len(conns):
            problems.append(f"{toml_path.name}: finding {find.get('rule')} names connection {find.get('connection')}")
        if find.get("endpoint") not in ("client", "server", "none"):
            problems.append(f"{toml_path.name}: finding {find.get('rule')} endpoint must be client, server or none")
        if n_frames and not 1 <= find.get("frame", 0) <= n_frames:
            problems.append(f"{toml_path.name}: finding {find.get('rule')} frame {find.get('frame')} outside the capture")
    return problems


def check_all() -> int:
    tomls = sorted(HERE.glob("*.toml"))
    problems = [p for t in tomls for p in check_sample_file(t)]
    total = sum(f.stat().st_size for f in HERE.rglob("*") if f.is_file() and f.suffix not in (".py", ".md", ".pyc"))
    for p in problems:
        print(p)
    print(f"{len(tomls)} sample files, {len(problems)} problems, captures and metadata {total / 1e6:.2f} MB")
    return 1 if problems else 0


# ---- making -------------------------------------------------------------------------------


def make_one(name: str, attempts: int, draft: bool) -> bool:
    scenario = SCENARIOS[name]
    kernel = platform.release()
    for attempt in range(1, attempts + 1):
        work = Path(tempfile.mkdtemp(prefix=f"pcc-{name}-"))
        try:
            started = time.monotonic()
            sample = scenario.run(work)
            frames = read_frames(sample.captures)
            clients = {sample.client} | {conn.client for conn in sample.connections}
            got = outline_of(frames, clients)
            if got != sample.outline and not draft:
                print(f"  {name}: attempt {attempt}: packet sequence differs from the outline:")
                print("    expected " + " ".join(sample.outline) + "\n    got      " + " ".join(got))
                continue
            names = _store(sample, work)
            text = sample_toml(sample, names, describe_frames(frames, clients), kernel)
            (HERE / f"{name}.toml").write_text(text)
            problems = check_sample_file(HERE / f"{name}.toml")
            for p in problems:
                print("  " + p)
            status = "DRAFT" if got != sample.outline else "ok"
            print(f"  {name}: {status} ({len(frames)} frames, {time.monotonic() - started:.1f} s)")
            if draft:
                print(describe_frames(frames, clients))
                print("    outline " + repr(got))
            return not problems
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(f"  {name}: FAILED after {attempts} attempts; nothing stored")
    return False


def _store(sample: Sample, work: Path) -> list[str]:
    """Move the capture(s) into samples/ and return their names relative to samples/."""
    if sample.folder:
        folder = HERE / sample.name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        names = []
        for path in sample.captures:
            shutil.move(str(path), folder / path.name)
            os.chmod(folder / path.name, 0o644)  # dumpcap creates its files 0600
            names.append(f"{sample.name}/{path.name}")
        return names
    names = []
    for path in sample.captures:
        target = HERE / path.name
        shutil.move(str(path), target)
        os.chmod(target, 0o644)
        names.append(path.name)
    return names


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Make pcapcheck's sample captures from real TCP stacks.")
    parser.add_argument("scenarios", nargs="*", help="scenario names (default: all)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--check", action="store_true", help="check every samples/*.toml and exit")
    parser.add_argument("--attempts", type=int, default=4, help="runs per scenario until the outline matches")
    parser.add_argument("--source", choices=("linux", "crafted"), help="only the scenarios of this source")
    parser.add_argument("--draft", action="store_true", help="store whatever the run produced and print it")
    args = parser.parse_args(argv)
    load_scenarios()
    if args.list:
        for scenario in SCENARIOS.values():
            if args.source in (None, scenario.source):
                print(f"{scenario.name:<34} {scenario.source:<8} {scenario.summary}")
        for name, (_, module_name) in EXTERNAL.items():
            if args.source in (None, module_name):
                print(f"{name:<34} {module_name:<8} (made by samples/{module_name}.py)")
        return 0
    if args.check:
        return check_all()
    unknown = [n for n in args.scenarios if n not in SCENARIOS and n not in EXTERNAL]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)} (see --list)", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("make.py needs root (namespaces, iptables, tcpdump)", file=sys.stderr)
        return 2
    # SIGTERM should unwind through every Lab's finally, like Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    names = args.scenarios or [
        n for n in [*SCENARIOS, *EXTERNAL]
        if args.source in (None, SCENARIOS[n].source if n in SCENARIOS else EXTERNAL[n][1])
    ]
    failed = []
    started = time.monotonic()
    for name in names:
        print(f"{name}:")
        try:
            if name in EXTERNAL:
                EXTERNAL[name][0](HERE)  # it checks its own capture and writes its own toml
                print(f"  {name}: ok")
            elif not make_one(name, args.attempts, args.draft):
                failed.append(name)
        except LabError as err:
            print(f"  {name}: {err}")
            failed.append(name)
        except KeyboardInterrupt:
            print(f"  {name}: interrupted; its namespaces were deleted, nothing stored", file=sys.stderr)
            return 130
    print(f"{len(names) - len(failed)} made, {len(failed)} failed in {time.monotonic() - started:.0f} s"
          + (f": {' '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
