"""Report text made ahead: each connection's JSON record and CSV row, without its id; each
finding's, without its connection's number and what comes before it.

A partitioned run (pcapcheck.partition) spills its connections bucket by bucket, numbered within
the bucket; their ids in the run are known only when every bucket is done.  Everything else in a
connection's JSON record and CSV row is known at once, so the text is made where the bucket is
analysed — in parallel under ``--jobs`` — and kept next to the spilled reports; writing a report
then only puts the id in front.  The analysis stage does not import reports: the CLI hands it this
renderer, and the store keeps whatever text it makes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from ..analysis import ConnectionReport
    from ..findings import Finding

JSON = "json"
CSV = "csv"
# What goes in front of a fragment: the connection's id, then the fragment; what goes between records.
ID_PREFIX = {JSON: b'{"id":%d,', CSV: b"%d,"}
SEPARATOR = {JSON: b",", CSV: b""}  # a CSV row ends with its line end


class Renderer:
    """Called with some of a bucket's reports; yields, per kind, (kind, their fragments) — None: not
    possible for these reports, e.g. a value of an odd type (the writer then formats the reports
    itself).  A kind at a time: only one kind's text is held at once."""

    def __init__(self, kinds: Sequence[str]):
        self.kinds = tuple(kinds)

    def __call__(self, reports: Sequence["ConnectionReport"]) -> Iterator[tuple[str, list[str] | None]]:
        for kind in self.kinds:
            yield kind, _writer(kind).fragments_of(reports)

    def findings(self, findings: Sequence["Finding"]) -> dict[str, list[str] | None]:
        """Per kind, each of one bucket's findings' text after its connection's number
        (pcapcheck.finding_store); None as for reports."""
        return {kind: _writer(kind).finding_tails(findings) for kind in self.kinds}


def _writer(kind: str):
    """The report module that writes ``kind``."""
    from . import csv_report, json_report  # they import this module for ``prerendered``

    return json_report if kind == JSON else csv_report


def renderer_for(*, json: bool, csv: bool) -> Renderer | None:
    kinds = [kind for kind, wanted in ((JSON, json), (CSV, csv)) if wanted]
    return Renderer(kinds) if kinds else None


def prerendered(connections: object, kind: str) -> Iterator[bytes] | None:
    """The connections' records (id in front), as UTF-8 in blocks to be written one after the other
    (JSON's joined by commas within and, by ``write_blocks``, between blocks), from text a
    partitioned run made; None unless it made them for every bucket (the writer formats the
    reports)."""
    joined = getattr(connections, "joined_fragments", None)
    if joined is None:
        return None
    return joined(kind, ID_PREFIX[kind], SEPARATOR[kind])


def prerendered_findings(
    findings: object, kind: str, head_of: Callable[[str, str], bytes]
) -> Iterator[bytes] | None:
    """The findings' records, each ``head_of(rule, severity)``, its connection's number and the
    text a partitioned run made, in blocks as ``prerendered``'s; None unless it made them for every
    bucket."""
    joined = getattr(findings, "joined_texts", None)
    if joined is None:
        return None
    return joined(kind, head_of, SEPARATOR[kind])


def write_blocks(handle: IO[str], blocks: Iterable[bytes], kind: str) -> None:
    """``prerendered``'s blocks into a text file (UTF-8), joined as the kind's records are."""
    separator = SEPARATOR[kind]
    raw = getattr(handle, "buffer", None)
    if raw is None:  # a text-only handle (io.StringIO)
        handle.write(separator.join(blocks).decode("utf-8"))
        return
    handle.flush()  # what the text layer holds goes first
    first = True
    for block in blocks:
        if not first and separator:
            raw.write(separator)
        raw.write(block)
        first = False
