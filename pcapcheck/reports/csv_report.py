"""CSV reports: connections.csv and findings.csv, one row per connection / finding.

Columns carry the JSON field names.  A connection's transitions become one compact ``states``
column ("frame endpoint FROM>TO; ..."), so a spreadsheet still shows how each side moved without
a nested structure.  Both files are written even when empty (header only).

The text is byte for byte what pandas writes for the records (``reference_*``: a DataFrame of
document.connection_record / finding_record, ``to_csv(index=False, float_format="%.6f")``), but
formatted row by row as the connections are iterated, without a DataFrame of all of them: ints
and bools as ``str``, floats as ``%.6f`` (NaN empty), strings quoted exactly when the csv module
pandas writes through would quote them.  pandas picks a column's type from all its values, so a
value of an unexpected type (a None where a number belongs) makes the whole file go through the
pandas reference instead; the capture pipeline never produces one.
"""

from __future__ import annotations

import csv
import functools
import io
import os
import re
from collections.abc import Callable, Iterable, Iterator
from operator import itemgetter
from pathlib import Path
from typing import IO, TYPE_CHECKING

from ..replay.model import TemplatedTransitions, TransitionPattern
from ..segments import flags_text
from ..templated import by_source, report_pieces, shown_addresses
from ..timestamps import seconds
from .atomic import ReportWriteError, write_atomically
from .document import PatternTexts, connection_record, finding_record, plain_numbers
from .fragments import CSV, prerendered, prerendered_findings, write_blocks

if TYPE_CHECKING:
    import pandas as pd

    from ..analysis import AnalysisResult, ConnectionReport
    from ..findings import Finding
    from ..replay.model import Transition
    from ..templated import BlockKind, TemplatedBlock

CONNECTION_COLUMNS = [
    "id", "client", "server", "incarnation", "roles_inferred", "first_frame", "last_frame", "start", "end",
    "duration", "packets", "packets_client_to_server", "packets_server_to_client", "bytes_client_to_server",
    "bytes_server_to_client", "client_final_state", "server_final_state", "close", "vantage", "flags_seen",
    "states",
]  # fmt: skip
FINDING_COLUMNS = ["rule", "severity", "connection", "endpoint", "frame", "time", "message", "rfc", "capture_quality"]
# float_format keeps microseconds of epoch times without pandas' scientific notation.
FLOAT_FORMAT = "%.6f"
# pandas' to_csv defaults: the csv module's minimal quoting, lines ended by os.linesep.
LINE_END = os.linesep
ROWS_PER_WRITE = 2000
MAX_STATE_TEXTS = 4096
# Block kinds whose prepared text is kept (a few KB each); a bucket uses a few hundred at most.
BLOCK_FORMATS = 1024


class _Unusual(Exception):
    """A value of a type pandas would give its column a different rendering for."""


def _csv_line(fields: list) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=LINE_END).writerow(fields)
    return buffer.getvalue()


def _quoting_characters() -> str:
    # The csv module quotes a field for the characters in it (minimal quoting); which characters
    # those are depends on the dialect and the Python version, so ask it rather than assume.
    return "".join(c for c in map(chr, range(256)) if _csv_line(["a" + c + "b", ""]) != f"a{c}b,{LINE_END}")


_NEEDS_QUOTES = re.compile("[" + re.escape(_quoting_characters()) + "]")


def csv_text(value: str | None) -> str:
    """A string column's value as the csv module writes it in a row of several fields (None: empty)."""
    if value is None:
        return ""
    if type(value) is not str:
        raise _Unusual
    if _NEEDS_QUOTES.search(value) is None:
        return value
    return _csv_line([value, ""])[: -len(LINE_END) - 1]


def csv_float(value: float) -> str:
    if type(value) is not float:
        raise _Unusual
    return FLOAT_FORMAT % value if value == value else ""  # pandas writes NaN as its empty na_rep


def csv_bool(value: bool) -> str:
    if type(value) is not bool:
        raise _Unusual
    return "True" if value else "False"


class _StatesText:
    """The ``states`` column: 'frame endpoint FROM>TO' per transition, joined by '; ', as csv writes it."""

    def __init__(self) -> None:
        self._moves: dict[tuple, str] = {}
        self._patterns = PatternTexts(self._compile, MAX_STATE_TEXTS)

    def _move(self, key: tuple) -> str:
        endpoint, from_state, to_state = key
        move = f" {endpoint.value} {from_state.value}>{to_state.value}"
        if len(self._moves) < MAX_STATE_TEXTS:
            self._moves[key] = move
        return move

    def text(self, transitions: Iterable["Transition"]) -> str:
        moves = self._moves
        parts = []
        for t in transitions:
            key = (t.endpoint, t.from_state, t.to_state)
            parts.append(f"{t.frame}{moves.get(key) or self._move(key)}")
        return "; ".join(parts)

    def field(self, transitions: Iterable["Transition"]) -> str:
        """The column's field: for a templated connection one %-format of its pattern's text."""
        if type(transitions) is TemplatedTransitions and transitions.compact:
            entry = self._patterns.get(transitions.pattern)
            if entry[1] is not None:
                return entry[1] % entry[2](transitions.values)
        return csv_text(self.text(transitions))

    def _compile(self, pattern: TransitionPattern) -> tuple[str | None, Callable[[tuple], tuple]]:
        pieces = ["%d" + (self._moves.get(m[2:5]) or self._move(m[2:5])).replace("%", "%%") for m in pattern.moves]
        fixed = "".join(pieces)
        # Frames are digits, never quoted; text that csv would quote takes the general way.
        format_text = None if _NEEDS_QUOTES.search(fixed + "; 0123456789") else "; ".join(pieces)
        frames = [m.frame_at for m in pattern.moves]
        pick = itemgetter(*frames) if len(frames) > 1 else (lambda values: tuple(values[i] for i in frames))
        return format_text, pick


def _connection_row(conn: "ConnectionReport", states: _StatesText) -> str:
    cid, incarnation, first, last = conn.id, conn.incarnation, conn.first_frame, conn.last_frame
    packets, p_cs, p_sc = conn.packets, conn.packets_client_to_server, conn.packets_server_to_client
    b_cs, b_sc = conn.bytes_client_to_server, conn.bytes_server_to_client
    if not plain_numbers(conn):
        raise _Unusual
    start, end = conn.start, conn.end
    return (
        f"{cid},{csv_text(str(conn.client))},{csv_text(str(conn.server))},{incarnation},"
        f"{csv_bool(conn.roles_inferred)},{first},{last},{csv_float(start)},{csv_float(end)},"
        f"{csv_float(conn.duration)},{packets},{p_cs},{p_sc},{b_cs},{b_sc},{csv_text(conn.client_final_state)},"
        f"{csv_text(conn.server_final_state)},{csv_text(conn.close)},{csv_text(conn.vantage)},"
        f"{csv_text(conn.flags_seen)},{states.field(conn.transitions)}{LINE_END}"
    )


def _finding_row(f: "Finding") -> str:
    if type(f.connection) is not int:
        raise _Unusual
    return _finding_head(f.rule, f.severity.value) + str(f.connection) + _finding_tail(f)


def _finding_head(rule: str, severity: str) -> str:
    return f"{_csv_repeated(rule)},{_csv_repeated(severity)},"


def finding_head(rule: str, severity: str) -> bytes:
    """A finding's row up to its connection's number, as UTF-8: its rule and severity fix it."""
    return _finding_head(rule, severity).encode("utf-8")


def _finding_tail(f: "Finding") -> str:
    """A finding's row after its connection's number."""
    if type(f.frame) is not int:
        raise _Unusual
    endpoint = f.endpoint._value_ if f.endpoint is not None else None  # .value, cheaper
    return (
        f",{_csv_repeated(endpoint)},{f.frame},{csv_float(f.time)},{csv_text(f.message)},{_csv_repeated(f.rfc)},"
        f"{csv_bool(f.capture_quality)}{LINE_END}"
    )


def finding_tails(findings: Iterable["Finding"]) -> list[str] | None:
    """Each finding's row after its connection's number (reports/fragments.py); None if one needs
    pandas."""
    try:
        return [_finding_tail(f) for f in findings]
    except (_Unusual, TypeError, AttributeError):
        return None


# Texts of repeated values remembered (rules, severities and references are a few dozen).
MAX_REPEATED = 1024


# typed: a str subclass equal to a remembered str still meets csv_text's refusal (pandas writes
# str() of it, which may differ).
@functools.lru_cache(maxsize=MAX_REPEATED, typed=True)
def _csv_repeated(value: str | None) -> str:
    """``csv_text`` of a value most rows repeat (a rule, a severity, an RFC reference); an
    unhashable value raises TypeError, which sends the writer to pandas as csv_text would."""
    return csv_text(value)


def _write_rows(handle: IO[str], columns: list[str], rows: Iterable[str]) -> None:
    handle.write(_csv_line(columns))
    pending: list[str] = []
    for row in rows:
        pending.append(row)
        if len(pending) == ROWS_PER_WRITE:
            handle.write("".join(pending))
            pending.clear()
    handle.write("".join(pending))


def _fast_connections(result: "AnalysisResult", handle: IO[str]) -> None:
    _write_table(
        handle, CONNECTION_COLUMNS, prerendered(result.connections, CSV), lambda: _connection_rows(result.connections)
    )


def _write_table(
    handle: IO[str], columns: list[str], blocks: Iterable[bytes] | None, rows: Callable[[], Iterable[str]]
) -> None:
    """A CSV file from the text a partitioned run made (``blocks``), else from the ``rows``."""
    if blocks is None:
        _write_rows(handle, columns, rows())
        return
    handle.write(_csv_line(columns))
    write_blocks(handle, blocks, CSV)


def _connection_rows(connections: Iterable["ConnectionReport"]) -> Iterator[str]:
    pieces = report_pieces(connections, ROWS_PER_WRITE)
    if pieces is None:
        states = _StatesText()
        yield from (_connection_row(c, states) for c in connections)
        return
    for piece in pieces:
        made = fragments_of(piece)
        if made is None:
            raise _Unusual
        yield from (f"{number}," + text for number, text in zip(piece.ids(), made))


def fragments_of(connections: Iterable["ConnectionReport"]) -> list[str] | None:
    """Each row's text after ``N,`` (reports/fragments.py); None if one needs pandas.  Templated
    blocks (pcapcheck.templated) are formatted a block at a time."""
    return by_source(connections, _object_fragments, block_fragments)


def _object_fragments(connections: Iterable["ConnectionReport"]) -> list[str] | None:
    states = _StatesText()
    out = []
    try:
        for conn in connections:
            out.append(_connection_row(conn, states)[len(f"{conn.id},") :])
    except (_Unusual, TypeError, AttributeError):
        return None
    return out


def block_fragments(block: "TemplatedBlock") -> list[str]:
    """Every member's row after ``N,``: one %-format per member, of a text made once per template;
    the same row ``_connection_row`` makes from the member's report."""
    made = _block_format(block.kind)
    client = shown_addresses(block.client_addr, _csv_plain)
    server = shown_addresses(block.server_addr, _csv_plain)
    if made is None or client is None or server is None:
        fallback = _object_fragments(block.reports())
        assert fallback is not None  # the values are plain: ints, floats, str
        return fallback
    text, order = made
    frames = block.frames.T
    offset = block.times.shape[1]  # TemplatedTransitions.values: times, then frames
    rows = zip(
        client, block.client_port.tolist(), server, block.server_port.tolist(), block.incarnation.tolist(),
        block.first_frame.tolist(), block.last_frame.tolist(), block.starts(), block.ends(),
        seconds(block.durations()).tolist(), block.packets.tolist(), *(column.tolist() for column in block.totals.T),
        [_csv_flags(f) for f in block.flags_seen.tolist()], *(frames[i - offset].tolist() for i in order),
    )  # fmt: skip
    return [text % row for row in rows]


@functools.lru_cache(maxsize=BLOCK_FORMATS)
def _block_format(kind: "BlockKind") -> tuple[str, list[int]] | None:
    """The %-format of a member's row after its id, and which TemplatedTransitions.values (by index:
    frames) fill its states column in order; None when that column would need quotes."""
    fixed = [kind.client_final_state, kind.server_final_state, kind.close, kind.vantage]
    if not all(type(v) is str for v in fixed):
        return None
    states, _ = _StatesText()._compile(kind.pattern)
    if states is None:
        return None
    cfs, sfs, close, vantage = (csv_text(v).replace("%", "%%") for v in fixed)
    head = f"%s:%d,%s:%d,%d,False,%d,%d,%.6f,%.6f,%.6f,%d,%d,%d,%d,%d,{cfs},{sfs},{close},{vantage},%s,"
    return head + states + LINE_END.replace("%", "%%"), [m.frame_at for m in kind.pattern.moves]


def _csv_plain(text: str) -> bool:
    return _NEEDS_QUOTES.search(text) is None


@functools.cache
def _csv_flags(flags: int) -> str:
    return csv_text(flags_text(flags))


def _fast_findings(result: "AnalysisResult", handle: IO[str]) -> None:
    _write_table(
        handle, FINDING_COLUMNS, prerendered_findings(result.findings, CSV, finding_head),
        lambda: (_finding_row(f) for f in result.findings),
    )  # fmt: skip


def states_text(states: list[dict]) -> str:
    """Transitions as 'frame endpoint FROM>TO' joined by '; ' (e.g. '3 client SYN-SENT>ESTABLISHED')."""
    return "; ".join(f"{s['frame']} {s['endpoint']} {s['from']}>{s['to']}" for s in states)


def connections_frame(result: "AnalysisResult") -> "pd.DataFrame":
    import pandas as pd  # only the reference and odd input need it: a third of a second to import

    records = [connection_record(c) for c in result.connections]
    for record in records:
        record["states"] = states_text(record["states"])
    return pd.DataFrame.from_records(records, columns=CONNECTION_COLUMNS)


def findings_frame(result: "AnalysisResult") -> "pd.DataFrame":
    import pandas as pd

    return pd.DataFrame.from_records([finding_record(f) for f in result.findings], columns=FINDING_COLUMNS)


def reference_connections_csv(result: "AnalysisResult", handle: IO[str]) -> None:
    """connections.csv through pandas, all rows at once: what write_connections_csv must write."""
    connections_frame(result).to_csv(handle, index=False, float_format=FLOAT_FORMAT)


def reference_findings_csv(result: "AnalysisResult", handle: IO[str]) -> None:
    """findings.csv through pandas: what write_findings_csv must write."""
    findings_frame(result).to_csv(handle, index=False, float_format=FLOAT_FORMAT)


Writer = Callable[["AnalysisResult", IO[str]], None]


def _fast_or_reference(result: "AnalysisResult", handle: IO[str], fast: Writer, reference: Writer) -> None:
    try:
        fast(result, handle)
    except (_Unusual, TypeError, AttributeError):
        # pandas renders a column by the types of all its values: start again, the pandas way.
        handle.seek(0)
        handle.truncate()
        reference(result, handle)


def write_connections_csv(result: "AnalysisResult", handle: IO[str]) -> None:
    """connections.csv, row by row as the connections are iterated."""
    _fast_or_reference(result, handle, _fast_connections, reference_connections_csv)


def write_findings_csv(result: "AnalysisResult", handle: IO[str]) -> None:
    _fast_or_reference(result, handle, _fast_findings, reference_findings_csv)


def write_csv(result: "AnalysisResult", folder: str | os.PathLike) -> None:
    directory = Path(folder)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ReportWriteError(f"{directory}: cannot create the CSV folder: {err.strerror or err}") from None
    write_atomically(directory / "connections.csv", lambda handle: write_connections_csv(result, handle))
    write_atomically(directory / "findings.csv", lambda handle: write_findings_csv(result, handle))
