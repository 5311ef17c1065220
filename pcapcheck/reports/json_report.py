"""JSON report: the whole report document in one file, written as it is formatted.

The document (document.build_document) is one object whose "connections" list holds every
connection with all its state transitions: tens of MB for a capture of a whole test run.  Building
it as dicts and handing it to json.dumps doubled the report stage's memory and took seconds, so the
connections are formatted straight to text here, one at a time, and written in chunks.  The text is
byte for byte what ``json.dumps(build_document(result), ensure_ascii=False, separators=(",", ":"))``
writes (``reference_json_text``; tests/test_report_writers_identical.py holds the two together).
Any value of an unexpected type sends its record through json.dumps, so odd input still comes out
exactly as the reference would write it.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from json.encoder import encode_basestring  # what json.dumps(ensure_ascii=False) uses for a str
from operator import itemgetter
from typing import IO, TYPE_CHECKING

import numpy as np

from ..replay.model import TemplatedTransitions, TransitionPattern
from ..segments import flags_text
from ..templated import by_source, report_pieces, shown_addresses
from ..timestamps import texts
from .atomic import write_atomically
from .fragments import ID_PREFIX, JSON, prerendered, prerendered_findings, write_blocks
from .document import (
    PatternTexts,
    build_document,
    connection_record,
    document_head,
    document_tail,
    finding_record,
    plain_numbers,
)

if TYPE_CHECKING:
    from ..analysis import AnalysisResult, ConnectionReport
    from ..findings import Finding
    from ..templated import BlockKind, TemplatedBlock
    from ..replay.model import Transition

# Compact, as json.dumps with these separators: pretty-printing made a whole test run's file 2-3
# times larger and slower to write.  `jq .` pretty-prints it for a person.
DUMPS_OPTIONS = {"ensure_ascii": False, "separators": (",", ":")}
# Connections formatted before the text goes to the file: large writes, little held at once.
CHUNK_CONNECTIONS = 2000
CHUNK_FINDINGS = 5000
# Distinct (endpoint, from, to, cause, rfc) texts remembered; replay has a few dozen.
MAX_TAILS = 4096
# Templates' "states" texts remembered (memo.py makes one per connection shape and timing class).
MAX_PATTERNS = 4096
# Block kinds whose prepared text is kept (a few KB each); a bucket uses a few hundred at most.
BLOCK_FORMATS = 1024

_float_repr = float.__repr__  # json's own float text: shortest repr, also for float subclasses
_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}  # json.dumps(allow_nan=True)


class _Unusual(Exception):
    """A record holds a value of a type the fast formatting does not cover."""


def _json_float(value: float) -> str:
    text = _float_repr(value)  # TypeError for anything but a float
    return _NON_FINITE.get(text, text)


def _json_str(value: str) -> str:
    return encode_basestring(value)  # TypeError for anything but a str


class _TransitionsText:
    """A connection's "states" list as JSON text; the text after "frame" is remembered per kind."""

    def __init__(self) -> None:
        self._tails: dict[tuple, str] = {}
        self._patterns = PatternTexts(self._compile, MAX_PATTERNS)

    def _tail(self, key: tuple) -> str:
        endpoint, from_state, to_state, cause, rfc = key
        tail = (
            f'"endpoint":{_json_str(endpoint.value)},"from":{_json_str(from_state.value)},'
            f'"to":{_json_str(to_state.value)},"cause":{_json_str(cause)},"rfc":{_json_str(rfc)}}}'
        )
        if len(self._tails) < MAX_TAILS:
            self._tails[key] = tail
        return tail

    def text(self, transitions: Iterable["Transition"]) -> str:
        if type(transitions) is TemplatedTransitions and transitions.compact:
            return self._templated_text(transitions)
        tails = self._tails
        parts = []
        # The two endpoints' transitions on one segment share its time: format it once.  Equal
        # floats have equal text except 0.0 and -0.0, hence `and time`.
        last_time: object = None
        last_text = ""
        for t in transitions:
            time = t.time
            if not (time == last_time and time and type(time) is float):
                last_text = _json_float(time)
                last_time = time
            frame = t.frame
            if type(frame) is not int:
                raise _Unusual
            key = (t.endpoint, t.from_state, t.to_state, t.cause, t.rfc)
            tail = tails.get(key) or self._tail(key)
            parts.append(f'{{"time":{last_text},"frame":{frame},{tail}')
        return "[" + ",".join(parts) + "]"

    def _templated_text(self, transitions: TemplatedTransitions) -> str:
        """One %-format of the pattern's text with the connection's times and frames."""
        pattern, values = transitions.pattern, transitions.values
        entry = self._patterns.get(pattern)
        # %r writes a float as float.__repr__, as json does, except NaN and infinities: the times
        # come from integer nanoseconds, but the sum catches any that did not (inf - inf is NaN).
        if not math.isfinite(sum(values)):
            return self.text(list(transitions))
        return entry[1] % entry[2](values)

    def _compile(self, pattern: TransitionPattern) -> tuple[str, Callable[[tuple], tuple]]:
        pieces, order = [], []
        for m in pattern.moves:
            tail = self._tails.get(m[2:]) or self._tail(m[2:])
            pieces.append('{"time":%r,"frame":%d,' + tail.replace("%", "%%"))
            order += [m.time_at, m.frame_at]
        # One move still gives two items, so itemgetter returns a tuple (none: formats nothing).
        pick = itemgetter(*order) if order else (lambda values: ())
        return "[" + ",".join(pieces) + "]", pick


def _connection_text(conn: "ConnectionReport", transitions: _TransitionsText) -> str:
    cid, incarnation, first, last = conn.id, conn.incarnation, conn.first_frame, conn.last_frame
    packets, p_cs, p_sc = conn.packets, conn.packets_client_to_server, conn.packets_server_to_client
    b_cs, b_sc = conn.bytes_client_to_server, conn.bytes_server_to_client
    if not plain_numbers(conn) or type(conn.roles_inferred) is not bool:
        raise _Unusual
    start, end = conn.start, conn.end
    return (
        f'{{"id":{cid},"client":{_json_str(str(conn.client))},"server":{_json_str(str(conn.server))},'
        f'"incarnation":{incarnation},"roles_inferred":{"true" if conn.roles_inferred else "false"},'
        f'"first_frame":{first},"last_frame":{last},"start":{_json_float(start)},"end":{_json_float(end)},'
        f'"duration":{_json_float(conn.duration)},"packets":{packets},"packets_client_to_server":{p_cs},'
        f'"packets_server_to_client":{p_sc},"bytes_client_to_server":{b_cs},"bytes_server_to_client":{b_sc},'
        f'"client_final_state":{_json_str(conn.client_final_state)},'
        f'"server_final_state":{_json_str(conn.server_final_state)},"close":{_json_str(conn.close)},'
        f'"vantage":{_json_str(conn.vantage)},"flags_seen":{_json_str(conn.flags_seen)},'
        f'"states":{transitions.text(conn.transitions)}}}'
    )


def connection_texts(connections: Iterable["ConnectionReport"]) -> Iterator[str]:
    """Each connection's record as compact JSON text, exactly as json.dumps writes it."""
    pieces = report_pieces(connections, CHUNK_CONNECTIONS)
    if pieces is None:
        yield from _texts(connections)
        return
    for piece in pieces:
        made = fragments_of(piece)
        if made is None:
            yield from _texts(piece)
        else:
            yield from (f'{{"id":{number},' + text for number, text in zip(piece.ids(), made))


def _texts(connections: Iterable["ConnectionReport"]) -> Iterator[str]:
    transitions = _TransitionsText()
    for conn in connections:
        try:
            yield _connection_text(conn, transitions)
        except (_Unusual, TypeError, AttributeError):
            yield json.dumps(connection_record(conn), **DUMPS_OPTIONS)


def fragments_of(connections: Iterable["ConnectionReport"]) -> list[str] | None:
    """Each record's text after ``{"id":N,`` (reports/fragments.py); None if one needs json.dumps.
    Templated blocks (pcapcheck.templated) are formatted a block at a time, the texts of all their
    times at once (timestamps.texts costs tens of microseconds a call, a block has tens of members)."""
    blocks = getattr(connections, "blocks", None)
    if not blocks:
        return by_source(connections, _object_fragments, block_fragments)
    shown = iter(_time_texts(blocks))
    return by_source(connections, _object_fragments, lambda block: block_fragments(block, next(shown)))


def _time_texts(blocks: Sequence["TemplatedBlock"]) -> list[tuple[list[str], list[str]]]:
    """Per block, the texts of its times column by column, and of its members' durations."""
    times = texts(np.concatenate([b.times.T.ravel() for b in blocks]))
    durations = texts(np.concatenate([b.durations() for b in blocks]))  # apart: fewer whole digits
    out, at, member = [], 0, 0
    for b in blocks:
        out.append((times[at : at + b.times.size], durations[member : member + len(b)]))
        at += b.times.size
        member += len(b)
    return out


def _object_fragments(connections: Iterable["ConnectionReport"]) -> list[str] | None:
    transitions = _TransitionsText()
    out = []
    try:
        for conn in connections:
            text = _connection_text(conn, transitions)
            out.append(text[len(f'{{"id":{conn.id},') :])
    except (_Unusual, TypeError, AttributeError):
        return None
    return out


def block_fragments(block: "TemplatedBlock", shown: tuple[list[str], list[str]] | None = None) -> list[str]:
    """Every member's record text after ``{"id":N,``: one %-format per member, of a text made
    once per template; the same text ``_connection_text`` makes from the member's report.
    ``shown``: the texts of its times and durations (``_time_texts``), if made already."""
    kind = block.kind
    made = _block_format(kind)
    client = shown_addresses(block.client_addr, _json_plain)
    server = shown_addresses(block.server_addr, _json_plain)
    if made is None or client is None or server is None or not np.isfinite(block.deadlines).all():
        fallback = _object_fragments(block.reports())
        assert fallback is not None  # the values are plain: ints, floats, str
        return fallback
    text, order = made
    values = [*block.times.T, *block.frames.T, *block.deadlines.T]
    floats = _FloatTexts(values, block.times.shape[1], block.frames.shape[1], shown or _time_texts([block])[0])
    totals = block.totals.T
    flags = [_json_flags(f) for f in block.flags_seen.tolist()]
    rows = zip(
        client, block.client_port.tolist(), server, block.server_port.tolist(), block.incarnation.tolist(),
        block.first_frame.tolist(), block.last_frame.tolist(), floats.like(block.start_ns),
        floats.like(block.end_ns), floats.durations, block.packets.tolist(),
        *(column.tolist() for column in totals),
        flags, *(floats.column(i) for i in order),
    )  # fmt: skip
    return [text % row for row in rows]


class _FloatTexts:
    """A block's TemplatedTransitions.values by column as their JSON text (times kept in ns, then
    frames, then deadlines in seconds), and its members' durations: each time column is written
    once, however many transitions (and the start and end) show it. ``shown``: the texts of the
    times, column after column, and of the durations (``_time_texts``)."""

    def __init__(self, values: list[np.ndarray], times: int, frames: int, shown: tuple[list[str], list[str]]):
        self._values = values
        self._times = range(times)
        self._frames = range(times, times + frames)
        made, self.durations = shown
        n = len(self.durations)
        self._texts: dict[int, list] = {i: made[i * n : (i + 1) * n] for i in self._times}

    def column(self, i: int) -> list:
        made = self._texts.get(i)
        if made is None:
            if i in self._frames:
                made = self._values[i].tolist()
            else:
                made = list(map(_float_repr, self._values[i].tolist()))
            self._texts[i] = made
        return made

    def like(self, ns: np.ndarray) -> list[str]:
        """The texts of the times ``ns``, from a time column equal to it when there is one."""
        first = ns[0]
        for i in self._times:
            column = self._values[i]
            # The first values first: most columns differ there, and array_equal costs microseconds.
            if column[0] == first and np.array_equal(column, ns):
                return self.column(i)
        return texts(ns)


@functools.lru_cache(maxsize=BLOCK_FORMATS)
def _block_format(kind: "BlockKind") -> tuple[str, list[int]] | None:
    """The %-format of a member's record after its id, and which TemplatedTransitions.values (by
    index) fill its "states" in order; None when a fixed text is not plain."""
    fixed = [kind.client_final_state, kind.server_final_state, kind.close, kind.vantage]
    if not all(type(v) is str for v in fixed):
        return None
    states, _ = _TransitionsText()._compile(kind.pattern)
    # Times come as text (block_fragments writes each once): %s where _compile puts %r.
    states = states.replace('{"time":%r,', '{"time":%s,')
    order = [i for m in kind.pattern.moves for i in (m.time_at, m.frame_at)]
    cfs, sfs, close, vantage = (_json_str(v).replace("%", "%%") for v in fixed)
    head = (
        '"client":"%s:%d","server":"%s:%d","incarnation":%d,"roles_inferred":false,'
        '"first_frame":%d,"last_frame":%d,"start":%s,"end":%s,"duration":%s,"packets":%d,'
        '"packets_client_to_server":%d,"packets_server_to_client":%d,"bytes_client_to_server":%d,'
        f'"bytes_server_to_client":%d,"client_final_state":{cfs},"server_final_state":{sfs},'
        f'"close":{close},"vantage":{vantage},"flags_seen":%s,"states":'
    )
    return head + states + "}", order


def _json_plain(text: str) -> bool:
    return _json_str(text) == f'"{text}"'


@functools.cache
def _json_flags(flags: int) -> str:
    return _json_str(flags_text(flags))


def _write_list(handle: IO[str], texts: Iterable[str], chunk: int) -> None:
    """Write ``[a,b,...]`` from the item texts, ``chunk`` items per write."""
    handle.write("[")
    pending: list[str] = []
    first = True
    for text in texts:
        pending.append(text)
        if len(pending) == chunk:
            handle.write(("" if first else ",") + ",".join(pending))
            pending.clear()
            first = False
    if pending:
        handle.write(("" if first else ",") + ",".join(pending))
    handle.write("]")


def _finding_texts(findings: Iterable["Finding"]) -> Iterator[str]:
    # Read once in order (a large capture's findings are a sequence on disk, pcapcheck.finding_store),
    # written in batches.
    batch: list[str] = []
    for finding in findings:
        try:
            batch.append(_finding_text(finding))
        except (_Unusual, TypeError, AttributeError):
            batch.append(json.dumps(finding_record(finding), **DUMPS_OPTIONS))
        if len(batch) == CHUNK_FINDINGS:
            yield ",".join(batch)
            batch.clear()
    if batch:
        yield ",".join(batch)


def _finding_text(f: "Finding") -> str:
    """A finding's record as json.dumps writes it, for the usual types of its fields."""
    if type(f.connection) is not int:
        raise _Unusual
    return _finding_head(f.rule, f.severity.value) + str(f.connection) + _finding_tail(f)


# Texts of values most findings repeat (rules, severities, endpoints, references: a few dozen).
MAX_REPEATED = 1024


@functools.lru_cache(maxsize=MAX_REPEATED, typed=True)
def _finding_head(rule: str, severity: str) -> str:
    return f'{{"rule":{_json_str(rule)},"severity":{_json_str(severity)},"connection":'


def finding_head(rule: str, severity: str) -> bytes:
    """A finding's record up to its connection's number, as UTF-8: its rule and severity fix it."""
    return _finding_head(rule, severity).encode("utf-8")


@functools.lru_cache(maxsize=MAX_REPEATED, typed=True)
def _repeated(value: str) -> str:
    """``_json_str`` of a value most findings repeat (an endpoint, an RFC reference)."""
    return _json_str(value)


def _finding_tail(f: "Finding") -> str:
    """A finding's record after its connection's number."""
    frame, time, quality = f.frame, f.time, f.capture_quality
    if not (type(frame) is int and type(time) is float and type(quality) is bool):
        raise _Unusual
    if not math.isfinite(time):
        raise _Unusual
    endpoint = "null" if f.endpoint is None else _repeated(f.endpoint._value_)  # .value, cheaper
    return (
        f',"endpoint":{endpoint},"frame":{frame},"time":{float.__repr__(time)},"message":{_json_str(f.message)},'
        f'"rfc":{_repeated(f.rfc)},"capture_quality":{"true" if quality else "false"}}}'
    )


def finding_tails(findings: Iterable["Finding"]) -> list[str] | None:
    """Each finding's record after its connection's number (reports/fragments.py); None if one
    needs json.dumps."""
    try:
        return [_finding_tail(f) for f in findings]
    except (_Unusual, TypeError, AttributeError):
        return None


def write_document(result: "AnalysisResult", handle: IO[str]) -> None:
    head = json.dumps(document_head(result), **DUMPS_OPTIONS)
    tail = json.dumps(document_tail(result), **DUMPS_OPTIONS)
    handle.write(head[:-1] + ',"connections":')
    _write_array(
        handle, prerendered(result.connections, JSON), lambda: connection_texts(result.connections), CHUNK_CONNECTIONS
    )
    handle.write(',"findings":')
    _write_array(
        handle, prerendered_findings(result.findings, JSON, finding_head), lambda: _finding_texts(result.findings), 1
    )
    handle.write("," + tail[1:] + "\n")


def _write_array(handle: IO[str], blocks: Iterable[bytes] | None, texts: Callable[[], Iterable[str]], chunk: int) -> None:
    """A JSON array from the text a partitioned run made (``blocks``), else from the records'
    ``texts`` (``_write_list``)."""
    if blocks is None:
        _write_list(handle, texts(), chunk)
        return
    handle.write("[")
    write_blocks(handle, blocks, JSON)
    handle.write("]")


def write_json(result: "AnalysisResult", path: str | os.PathLike) -> None:
    write_atomically(path, lambda handle: write_document(result, handle))


def document_pieces(
    result: "AnalysisResult", shares: Sequence[float], sizes: np.ndarray
) -> list[tuple[int, int, Callable[[IO[str]], None]]]:
    """``write_document``'s text as pieces that several processes can write at once: (k, offset in
    bytes, write(handle)) each, the k-th piece about ``shares[k]`` of the connections' bytes (empty
    ones left out), from the size of each connection's record (``ConnectionStore.record_sizes``,
    taken over: changed in place).  The first piece holds the document's head, the last the
    findings and the tail."""
    head = json.dumps(document_head(result), **DUMPS_OPTIONS)[:-1].encode("utf-8") + b',"connections":['
    # Where each record ends, with the comma before it (none before the first).
    ends = sizes
    ends += 1
    np.cumsum(ends, out=ends)
    ends -= 1
    total = int(ends[-1]) if len(ends) else 0
    weights = np.asarray(shares if sum(shares) > 0 else [1.0] * len(shares), dtype=np.float64)
    bounds = np.searchsorted(ends, np.cumsum(weights)[:-1] / weights.sum() * total, side="right").tolist()
    starts, stops = [0, *bounds], [*bounds, len(ends)]
    pieces: list[tuple[int, int, Callable[[IO[str]], None]]] = []
    offset = 0
    last = len(starts) - 1
    for k, (start, stop) in enumerate(zip(starts, stops)):
        if start == stop and 0 < k < last:
            continue
        write = functools.partial(_write_piece, result, start, stop, head if k == 0 else b"", k == last)
        pieces.append((k, offset, write))
        if start < stop:
            offset += int(ends[stop - 1]) - (int(ends[start - 1]) if start else 0)
        offset += len(head) if k == 0 else 0
    return pieces


def _write_piece(result: "AnalysisResult", start: int, stop: int, head: bytes, last: bool, handle: IO[str]) -> None:
    """Connections ``start`` to ``stop`` of ``document_pieces``, after ``head``; the rest of the
    document after them if ``last``."""
    handle.flush()
    raw = handle.buffer
    raw.write(head)
    if start < stop:
        if start:
            raw.write(b",")
        write_blocks(handle, result.connections.joined_fragments(JSON, ID_PREFIX[JSON], b",", start, stop), JSON)
    if last:
        handle.write('],"findings":')
        _write_array(
            handle, prerendered_findings(result.findings, JSON, finding_head), lambda: _finding_texts(result.findings), 1
        )
        handle.write("," + json.dumps(document_tail(result), **DUMPS_OPTIONS)[1:] + "\n")


def reference_json_text(result: "AnalysisResult") -> str:
    """The report as the whole document through json.dumps: what write_json must write, byte for byte."""
    return json.dumps(build_document(result), **DUMPS_OPTIONS) + "\n"
