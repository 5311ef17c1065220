"""Helpers for the sample tests: read samples/*.toml, count frames, run the pipeline, compare verdicts.

A sample is a capture in samples/ (a .pcap/.pcapng file, or a folder holding a ring buffer) plus
``samples/<name>.toml`` with what a person read in the capture: every connection and every finding.
Nothing here imports a pipeline stage at module level: a stage that does not exist yet makes the
tests that need it fail one by one, with a clear message, instead of breaking the test session.
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import dpkt

ROOT = Path(__file__).resolve().parent.parent
SAMPLES_DIR = ROOT / "samples"
RULES_DIR = ROOT / "rules"

SOURCES = ("linux", "crafted")
VANTAGES = ("client", "server", "middle")
STATES = (
    "CLOSED LISTEN SYN-SENT SYN-RECEIVED ESTABLISHED FIN-WAIT-1 FIN-WAIT-2 CLOSE-WAIT CLOSING LAST-ACK "
    "TIME-WAIT UNKNOWN"
).split()
CLOSES = ("graceful", "abortive", "refused", "incomplete", "open")
ENDPOINTS = ("client", "server", "none")
PROFILES = ("rfc9293", "linux", "windows")

REQUIRED_SAMPLE_KEYS = ("name", "capture", "source", "made_by", "vantage", "description", "kernel")
CONNECTION_KEYS = ("id", "client", "server", "incarnation", "client_final_state", "server_final_state", "close")
FINDING_KEYS = ("rule", "connection", "endpoint", "frame")

# Severities of the rule table in the project brief: the CLI test picks its samples by them, so it
# does not depend on rules/ being complete.  Unknown ids count as errors (the safe side).
SEVERITY = {
    "rst-instead-of-final-ack": "error",
    "abortive-close": "warning",
    "rst-answers-fin-retransmit": "error",
    "missing-fin-retransmit": "error",
    "short-time-wait": "error",
    "time-wait-reuse": "info",
    "close-wait-leak": "warning",
    "handshake-incomplete": "warning",
    "connection-refused": "info",
    "capture-midstream": "info",
    "capture-gap": "info",
    "capture-one-direction": "info",
    "fin-wait-2-timeout": "warning",
    "data-after-fin": "error",
    "data-after-rst": "warning",
    "synack-bad-ack": "error",
    "fin-ack-mismatch": "error",
    "rst-out-of-window": "warning",
    "option-not-negotiated": "error",
    "timestamps-dropped": "warning",
    "syn-retransmit-too-early": "warning",
    "simultaneous-open": "info",
    "simultaneous-close": "info",
    "time-wait-assassination": "info",
}


@dataclass(frozen=True, order=True)
class ExpectedConnection:
    id: int
    client: str
    server: str
    incarnation: int
    client_final_state: str
    server_final_state: str
    close: str

    def line(self) -> str:
        return (
            f"#{self.id} {self.client} -> {self.server} incarnation {self.incarnation}: "
            f"client {self.client_final_state}, server {self.server_final_state}, close {self.close}"
        )


@dataclass(frozen=True, order=True)
class ExpectedFinding:
    rule: str
    connection: int
    endpoint: str
    frame: int

    def line(self) -> str:
        return f"{self.rule} on connection {self.connection}, endpoint {self.endpoint}, frame {self.frame}"


@dataclass
class Sample:
    name: str
    toml_path: Path
    data: dict  # the whole parsed toml, for the metadata test
    captures: list[Path]
    profile: str = "linux"
    params: dict = field(default_factory=dict)
    connections: list[ExpectedConnection] = field(default_factory=list)
    findings: list[ExpectedFinding] = field(default_factory=list)

    @property
    def capture_paths(self) -> list[str]:
        return [str(p) for p in self.captures]

    def error_rules(self) -> list[str]:
        return [f.rule for f in self.findings if SEVERITY.get(f.rule, "error") == "error"]


def sample_tomls() -> list[Path]:
    return sorted(SAMPLES_DIR.glob("*.toml"))


def capture_files(paths: list[Path]) -> list[Path]:
    """The files a capture entry names: a file as is, a folder as its capture files in name order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if is_capture_file(p))
        else:
            files.append(path)
    return files


# tcpdump -C/-W names a ring buffer's files x.pcap, x.pcap1, x.pcap2, ...
_CAPTURE_NAME = re.compile(r"\.(pcap|pcapng|cap)\d*(\.gz)?$")


def is_capture_file(path: Path) -> bool:
    return path.is_file() and bool(_CAPTURE_NAME.search(path.name))


def load_sample(toml_path: Path) -> Sample:
    """Parse one samples/<name>.toml (KeyError/TypeError on a malformed file: the metadata test
    reports those precisely; the other tests only need well-formed ones)."""
    with open(toml_path, "rb") as handle:
        data = tomllib.load(handle)
    meta = data["sample"]
    entries = meta["capture"] if isinstance(meta["capture"], list) else [meta["capture"]]
    captures = capture_files([SAMPLES_DIR / entry for entry in entries])
    analysis = data.get("analysis", {})
    expect = data.get("expect", {})
    return Sample(
        name=meta["name"],
        toml_path=toml_path,
        data=data,
        captures=captures,
        profile=analysis.get("profile", "linux"),
        params=dict(analysis.get("params", {})),
        connections=[ExpectedConnection(**{k: c[k] for k in CONNECTION_KEYS}) for c in expect.get("connections", [])],
        findings=[ExpectedFinding(**{k: f[k] for k in FINDING_KEYS}) for f in expect.get("findings", [])],
    )


def all_samples() -> list[Sample]:
    return [load_sample(p) for p in sample_tomls()]


def orphan_captures() -> list[Path]:
    """Capture files (or ring-buffer folders) in samples/ that no toml names."""
    named: set[Path] = set()
    for path in sample_tomls():
        with open(path, "rb") as handle:
            capture = tomllib.load(handle).get("sample", {}).get("capture", [])
        for entry in capture if isinstance(capture, list) else [capture]:
            target = (SAMPLES_DIR / entry).resolve()
            named.add(target)
            named.add(target.parent)  # a file inside a ring-buffer folder names the folder too
    found = [p for p in SAMPLES_DIR.iterdir() if is_capture_file(p)]
    found += [d for d in SAMPLES_DIR.iterdir() if d.is_dir() and any(is_capture_file(p) for p in d.iterdir())]
    return sorted(p for p in found if p.resolve() not in named)


# ---- frames -------------------------------------------------------------------------------------


def count_frames(paths: list[Path]) -> int:
    """Every record in the files (TCP or not): Wireshark's frame numbers run from 1 to this."""
    total = 0
    for path in paths:
        opener = _gzip_open if path.name.endswith(".gz") else open
        with opener(path, "rb") as handle:
            magic = handle.read(4)
            handle.seek(0)
            reader = dpkt.pcapng.Reader(handle) if magic == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(handle)
            total += sum(1 for _ in reader)
    return total


def _gzip_open(path: Path, mode: str):
    import gzip

    return gzip.open(path, mode)


# ---- running the pipeline -----------------------------------------------------------------------


def param_strings(params: dict) -> list[str]:
    """{"rule.name": value} as the command line writes them: "rule.name=value"."""
    out = []
    for key, value in params.items():
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        out.append(f"{key}={text}")
    return out


def config_for(sample: Sample):
    from pcapcheck.config import load_config

    return load_config(None, profile=sample.profile, params=param_strings(sample.params))


def analyze_sample(sample: Sample):
    """pcapcheck.analysis.analyze over the sample's capture files, with its profile and params."""
    from pcapcheck.analysis import analyze

    return analyze(sample.capture_paths, config_for(sample))


def endpoint_name(side) -> str:
    return "none" if side is None else getattr(side, "value", str(side))


def actual_connections(result) -> list[ExpectedConnection]:
    return [
        ExpectedConnection(
            id=c.id,
            client=str(c.client),
            server=str(c.server),
            incarnation=c.incarnation,
            client_final_state=c.client_final_state,
            server_final_state=c.server_final_state,
            close=c.close,
        )
        for c in result.connections
    ]


def actual_findings(findings) -> list[ExpectedFinding]:
    return [ExpectedFinding(f.rule, f.connection, endpoint_name(f.endpoint), f.frame) for f in findings]


def connections_diff(expected: list[ExpectedConnection], actual: list[ExpectedConnection]) -> str:
    """Empty when equal; otherwise both lists side by side, line by line, with the first difference."""
    if expected == actual:
        return ""
    lines = ["connections differ (expected | actual):"]
    for i in range(max(len(expected), len(actual))):
        exp = expected[i].line() if i < len(expected) else "-"
        act = actual[i].line() if i < len(actual) else "-"
        mark = "  " if exp == act else "!!"
        lines.append(f" {mark} expected {exp}")
        if exp != act:
            lines.append(f" {mark} actual   {act}")
    return "\n".join(lines)


def findings_diff(expected: list[ExpectedFinding], actual: list[ExpectedFinding]) -> str:
    """Empty when the multisets are equal; otherwise what is missing and what is unexpected."""
    missing = Counter(expected) - Counter(actual)
    extra = Counter(actual) - Counter(expected)
    if not missing and not extra:
        return ""
    lines = ["findings differ:"]
    for finding, n in sorted(missing.items()):
        lines.append(f"  missing    {finding.line()}" + (f" (x{n})" if n > 1 else ""))
    for finding, n in sorted(extra.items()):
        lines.append(f"  unexpected {finding.line()}" + (f" (x{n})" if n > 1 else ""))
    return "\n".join(lines)


# ---- the pipeline on segment rows (property tests) ----------------------------------------------

FLAG_FIN, FLAG_SYN, FLAG_RST, FLAG_ACK = 0x01, 0x02, 0x04, 0x10
_MOD = 1 << 32


@dataclass(frozen=True)
class Rows:
    """A sample's TCP segment rows, each with the frame number it had in the original capture."""

    rows: object  # np.ndarray of SEGMENT_DTYPE
    origin: object  # np.ndarray of int: original frame of each row
    capture_end: float | None


@dataclass(frozen=True)
class Verdict:
    """What the property tests compare, free of ids, roles and frame renumbering: connections by
    (both endpoints, incarnation) with each endpoint's final state and the close; findings with the
    endpoint's address and the segment's frame in the *original* capture."""

    connections: tuple  # ((ep_a, ep_b, incarnation), ((ep, final state), (ep, final state)), close), sorted
    findings: tuple  # (rule, severity, (ep_a, ep_b, incarnation), endpoint address or "none", original frame)

    def faults(self) -> Counter:
        """Error and warning findings: the verdicts about the endpoints (info notes excluded)."""
        return Counter(f for f in self.findings if f[1] in ("error", "warning"))


def read_rows(sample: Sample) -> Rows:
    import numpy as np

    from pcapcheck.capture import open_capture

    capture = open_capture(sample.capture_paths)
    batches = list(capture.batches())
    rows = np.concatenate(batches) if batches else np.zeros(0)
    return Rows(rows=rows, origin=rows["frame"].astype(np.int64), capture_end=capture.info.last_time)


def renumbered(rows, origin) -> tuple:
    """The rows with frame numbers 1..n in their new order; ``origin`` keeps the original ones."""
    rows = rows.copy()
    rows["frame"] = range(1, len(rows) + 1)
    rows["file_frame"] = rows["frame"]
    rows["file_index"] = 0
    return rows, origin


def verdict_of(rows, origin, sample: Sample, capture_end: float | None) -> Verdict:
    """rebuild -> replay -> run_checks over ``rows`` (as pcapcheck.analysis.analyze wires them)."""
    from pcapcheck.catalogue import load_catalogue
    from pcapcheck.checks import run_checks
    from pcapcheck.connections import rebuild
    from pcapcheck.replay import replay
    from pcapcheck.segments import Side

    rows, origin = renumbered(rows, origin)
    config = config_for(sample)
    catalogue = load_catalogue(config.extra_rule_dirs)
    config.validate(catalogue)
    profile = config.profile_for_run()
    last_on_tuple: dict = {}
    connections, findings = [], []
    for conn in rebuild([rows]):
        rep = replay(conn, profile)
        key = tuple(sorted((conn.client, conn.server)))
        found = run_checks(
            conn, rep, previous=last_on_tuple.get(key), capture_end=capture_end, config=config, catalogue=catalogue
        )
        last_on_tuple[key] = (conn, rep)
        # Endpoints by address, not by role: which side is "client" may flip when two SYNs cross.
        ident = (*sorted((str(conn.client), str(conn.server))), conn.incarnation)
        states = tuple(sorted((str(conn.endpoint(side)), rep.final_state[side].value) for side in Side))
        connections.append((ident, states, rep.close.value))
        for f in found:
            who = "none" if f.endpoint is None else str(conn.endpoint(f.endpoint))
            findings.append((f.rule, str(f.severity), ident, who, int(origin[f.frame - 1])))
    return Verdict(connections=tuple(sorted(connections)), findings=tuple(sorted(findings)))


def _tuple(row) -> tuple:
    a = (bytes(row["src"]), int(row["sport"]))
    b = (bytes(row["dst"]), int(row["dport"]))
    return (a, b) if a <= b else (b, a)


def _seg_end(row) -> int:
    flags = int(row["flags"])
    return (int(row["seq"]) + int(row["payload_len"]) + bool(flags & FLAG_SYN) + bool(flags & FLAG_FIN)) % _MOD


def _covers(ack: int, seq_end: int) -> bool:
    """ack >= seq_end in modulo-2**32 sequence space (RFC 9293 §3.4)."""
    return (ack - seq_end) % _MOD < (1 << 31)


def duplicable(rows) -> list[int]:
    """Rows whose copy is an exact network duplicate: no SYN, FIN or RST.

    A copy of a SYN, FIN or RST is, in the segment rows (no IP ID column), indistinguishable from the
    endpoint retransmitting it, which legitimately changes syn-retransmit-too-early,
    missing-fin-retransmit or rst-answers-fin-retransmit; those are left out.
    """
    return [i for i, flags in enumerate(rows["flags"]) if not int(flags) & (FLAG_SYN | FLAG_FIN | FLAG_RST)]


def crossing_pairs(rows, window_ns: int = 100_000_000) -> list[int]:
    """Indices i where rows i and i+1, less than ``window_ns`` apart, may be seen in either order.

    That holds for segments of different 4-tuples, and for two segments of one connection sent in
    opposite directions that *crossed*: both consume sequence space (data, SYN or FIN) and neither
    acknowledges the other's (a bare SYN acknowledges nothing; any other segment must carry an ACK
    that stops short of the other's sequence space) - each was sent before the other arrived, so a
    capture point nearer the other end sees them the other way round.  A pure ACK or a RST carries
    no evidence of what it answered, so a pair holding one is never swapped.
    """
    pairs = []
    for i in range(len(rows) - 1):
        a, b = rows[i], rows[i + 1]
        if int(b["ts_ns"]) - int(a["ts_ns"]) > window_ns:
            continue
        if _tuple(a) != _tuple(b):
            pairs.append(i)
            continue
        if bytes(a["src"]) == bytes(b["src"]) and int(a["sport"]) == int(b["sport"]):
            continue  # same direction: swapping them is reordering in the network, not vantage
        if (int(a["flags"]) | int(b["flags"])) & FLAG_RST:
            continue
        if _seg_end(a) == int(a["seq"]) or _seg_end(b) == int(b["seq"]):
            continue
        if _answers(b, a) or _answers(a, b):
            continue
        pairs.append(i)
    return pairs


def _answers(row, other) -> bool:
    """Could ``row`` have been sent after ``other`` arrived?  Yes unless its ACK proves otherwise."""
    flags = int(row["flags"])
    if not flags & FLAG_ACK:
        return not flags & FLAG_SYN  # a bare SYN answers nothing; anything else without ACK is unclear
    return _covers(int(row["ack"]), _seg_end(other))


def droppable(rows) -> list[int]:
    """Rows whose loss from the capture the analysis must explain as capture loss, nothing more.

    Left out: SYN, FIN and RST (their loss changes which connections and closes exist); the first
    segment from each side that acknowledges the peer's SYN (it alone may prove the handshake
    completed); and every segment acknowledging a FIN (without it the FIN looks unacknowledged, which
    is exactly what missing-fin-retransmit and fin-wait-2 reasoning read - a capture cannot tell a
    lost-in-capture ACK from an ACK never sent).  In a one-direction capture, every ACK that moves
    the acknowledged number on is left out too: with the peer's segments missing, it is the only
    evidence of what the peer sent (its FIN included).
    """
    senders: dict = {}
    for row in rows:
        senders.setdefault(_tuple(row), set()).add((bytes(row["src"]), int(row["sport"])))
    last_ack: dict = {}  # (tuple, acker) -> its previous ack, in a one-direction capture
    # Walk in capture order: a SYN starts a new incarnation of its tuple, forgetting the old FIN.
    syn_end: dict = {}  # (tuple, sender) -> end of its latest SYN
    fin_end: dict = {}  # (tuple, sender) -> end of its FIN in the current incarnation
    acked_syn: set = set()  # (tuple, acker): its first ACK of the peer's SYN was seen
    keep = []
    for i, row in enumerate(rows):
        flags = int(row["flags"])
        tup = _tuple(row)
        me = (tup, (bytes(row["src"]), int(row["sport"])))
        peer = (tup, (bytes(row["dst"]), int(row["dport"])))
        if flags & FLAG_SYN and syn_end.get(me) != _seg_end(row):
            syn_end[me] = _seg_end(row)
            fin_end.pop(me, None)
            acked_syn.discard(peer)
        if flags & FLAG_FIN:
            fin_end.setdefault(me, _seg_end(row))
        if flags & (FLAG_SYN | FLAG_FIN | FLAG_RST):
            continue
        if flags & FLAG_ACK:
            ack = int(row["ack"])
            if len(senders[tup]) == 1:
                moved = last_ack.get(me) != ack
                last_ack[me] = ack
                if moved:
                    continue
            if peer in fin_end and _covers(ack, fin_end[peer]):
                continue
            if peer in syn_end and _covers(ack, syn_end[peer]) and me not in acked_syn:
                acked_syn.add(me)
                continue
        keep.append(i)
    return keep


def with_duplicates(data: Rows, indices: list[int]) -> tuple:
    """Each chosen row followed by an exact copy with the same timestamp."""
    order = []
    chosen = set(indices)
    for i in range(len(data.rows)):
        order.append(i)
        if i in chosen:
            order.append(i)
    return data.rows[order], data.origin[order]


def with_swap(data: Rows, i: int) -> tuple:
    """Rows i and i+1 exchanged; timestamps stay where they were, so time still only grows."""
    rows, origin = data.rows.copy(), data.origin.copy()
    ts = rows["ts_ns"].copy()
    rows[[i, i + 1]] = rows[[i + 1, i]]
    origin[[i, i + 1]] = origin[[i + 1, i]]
    rows["ts_ns"] = ts
    return rows, origin


def verdict_without_frames(sample: Sample, frames) -> Verdict:
    """The verdict on ``sample`` with the packets of the given original frame numbers dropped (as
    ``editcap FILE OUT frames...`` would), findings keeping their original frame numbers."""
    import numpy as np

    data = read_rows(sample)
    keep = ~np.isin(data.rows["frame"], list(frames))
    assert (~keep).sum() == len(set(frames)), f"{sample.name}: not every frame of {frames} is a TCP segment"
    return verdict_of(data.rows[keep], data.origin[keep], sample, data.capture_end)


def verdict_first_sender_only(sample: Sample) -> Verdict:
    """The verdict on ``sample`` captured one-sidedly: only the packets of the first packet's sender
    (as ``tcpdump -r FILE 'src host ...'`` would keep), findings keeping their original frames."""
    data = read_rows(sample)
    first_src = data.rows["src"][0]
    keep = (data.rows["src"] == first_src).reshape(len(data.rows), -1).all(axis=1)
    return verdict_of(data.rows[keep], data.origin[keep], sample, data.capture_end)


def reuse_drops(rows) -> list[int]:
    """Rows whose loss by the capture blurs where one incarnation of a tuple ends and the next
    begins: the SYN and the SYN-ACK that open a second (or later) incarnation, and each FIN of an
    incarnation that a later one on the same tuple follows."""
    from pcapcheck.connections import rebuild

    index = {int(frame): i for i, frame in enumerate(rows["frame"])}
    conns = list(rebuild([rows]))
    last: dict = {}  # the latest incarnation of each tuple (endpoints in either role)
    for c in conns:
        key = frozenset((c.client, c.server))
        last[key] = max(last.get(key, 0), c.incarnation)
    chosen = set()
    for c in conns:
        flags = [int(f) for f in c.rows["flags"]]
        frames = [int(f) for f in c.rows["frame"]]
        if c.incarnation > 1:
            for want in (FLAG_SYN, FLAG_SYN | FLAG_ACK):
                first = next((fr for fr, fl in zip(frames, flags) if fl & (FLAG_SYN | FLAG_ACK) == want), None)
                if first is not None:
                    chosen.add(index[first])
        if c.incarnation < last[frozenset((c.client, c.server))]:
            chosen.update(index[fr] for fr, fl in zip(frames, flags) if fl & FLAG_FIN)
    return sorted(chosen)


def without(data: Rows, i: int) -> tuple:
    import numpy as np

    keep = np.ones(len(data.rows), dtype=bool)
    keep[i] = False
    return data.rows[keep], data.origin[keep]
