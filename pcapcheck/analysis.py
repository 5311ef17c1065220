"""One analysis run: capture -> segments -> connections -> replay -> findings, gathered for the reports.

This module only wires the stages together; each stage is usable and testable on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .capture import CaptureInfo, open_capture
from .catalogue import RuleSpec, load_catalogue
from .checks import run_checks
from .config import Config
from .connections import Connection, Endpoint, rebuild
from .errors import PcapcheckError
from .findings import Finding
from .profiles import Profile
from .replay import end_time_wait_by_new_incarnation, replay
from .replay.model import Replay, Step, Transition
from .segments import Side, flags_text


@dataclass(slots=True)
class ConnectionReport:
    """What the reports need to know about one connection."""

    id: int
    client: Endpoint
    server: Endpoint
    incarnation: int
    roles_inferred: bool
    first_frame: int
    last_frame: int
    start: float
    end: float
    packets: int
    packets_client_to_server: int
    packets_server_to_client: int
    bytes_client_to_server: int
    bytes_server_to_client: int
    client_final_state: str
    server_final_state: str
    close: str
    vantage: str
    flags_seen: str
    transitions: list[Transition]
    # Kept only for connections with findings: the ladder diagram draws them.
    steps: list[Step] | None = None


@dataclass(slots=True)
class AnalysisResult:
    capture: CaptureInfo
    connections: list[ConnectionReport]
    findings: list[Finding]
    rules: dict[str, RuleSpec]
    profile: Profile
    config: Config
    # Set when the run stopped early on bad input: the error line; results so far are still reported.
    error: str | None = None
    suppressed: int = 0  # findings matched by the baseline


def connection_report(conn: Connection, rep: Replay, keep_steps: bool) -> ConnectionReport:
    return ConnectionReport(
        id=conn.id,
        client=conn.client,
        server=conn.server,
        incarnation=conn.incarnation,
        roles_inferred=conn.roles_inferred,
        first_frame=conn.first_frame,
        last_frame=conn.last_frame,
        start=conn.start,
        end=conn.end,
        packets=conn.packets,
        packets_client_to_server=conn.packets_sent(Side.CLIENT),
        packets_server_to_client=conn.packets_sent(Side.SERVER),
        bytes_client_to_server=conn.bytes_sent(Side.CLIENT),
        bytes_server_to_client=conn.bytes_sent(Side.SERVER),
        client_final_state=rep.final_state[Side.CLIENT].value,
        server_final_state=rep.final_state[Side.SERVER].value,
        close=rep.close.value,
        vantage=rep.vantage.value,
        flags_seen=flags_text(conn.flags_seen),
        transitions=list(rep.transitions),
        steps=list(rep.steps) if keep_steps else None,
    )


def analyze(
    paths: Sequence[str],
    config: Config,
    *,
    reader: str = "dpkt",
    progress: Callable[[int], None] | None = None,
) -> AnalysisResult:
    """Run every stage over ``paths``.

    Bad input discovered part-way (a corrupt record in the middle of a file) does not throw away
    what was already analysed: the result carries ``error`` and the CLI still writes the reports,
    then exits 2.  Bad input found before anything was read raises PcapcheckError.
    """
    catalogue = load_catalogue(config.extra_rule_dirs)
    config.validate(catalogue)
    profile = config.profile_for_run()
    capture = open_capture(list(paths), reader=reader)

    reports_by_id: dict[int, ConnectionReport] = {}
    findings: list[Finding] = []
    error: str | None = None
    # The previous incarnation on each tuple: short-time-wait and time-wait-reuse compare the two.
    last_on_tuple: dict[tuple, tuple[Connection, Replay]] = {}

    def batches():
        for batch in capture.batches():
            if progress is not None:
                progress(len(batch))
            yield batch

    try:
        for conn in rebuild(batches()):
            rep = replay(conn, profile, capture_end=capture.info.last_time)
            key = tuple(sorted((conn.client, conn.server)))
            previous = last_on_tuple.get(key)
            if previous is not None and end_time_wait_by_new_incarnation(previous[1], conn):
                # One replay cannot see the next incarnation: its SYN ended the old TIME-WAIT.
                reports_by_id[previous[0].id] = connection_report(
                    previous[0], previous[1], keep_steps=reports_by_id[previous[0].id].steps is not None
                )
            found = run_checks(
                conn,
                rep,
                previous=previous,
                capture_end=capture.info.last_time,
                config=config,
                catalogue=catalogue,
            )
            last_on_tuple[key] = (conn, rep)
            findings.extend(found)
            reports_by_id[conn.id] = connection_report(conn, rep, keep_steps=bool(found))
    except PcapcheckError as err:
        error = str(err)

    findings.sort(key=lambda f: (f.frame, f.connection, f.rule))
    return AnalysisResult(
        capture=capture.info,
        connections=list(reports_by_id.values()),
        findings=findings,
        rules=dict(catalogue),
        profile=profile,
        config=config,
        error=error,
    )
