"""Report text made ahead: each connection's JSON record and CSV row, without its id.

A partitioned run (pcapcheck.partition) spills its connections bucket by bucket, numbered within
the bucket; their ids in the run are known only when every bucket is done.  Everything else in a
connection's JSON record and CSV row is known at once, so the text is made where the bucket is
analysed — in parallel under ``--jobs`` — and kept next to the spilled reports; writing a report
then only puts the id in front.  The analysis stage does not import reports: the CLI hands it this
renderer, and the store keeps whatever text it makes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..analysis import ConnectionReport

JSON = "json"
CSV = "csv"
# What goes in front of a fragment: the connection's id, then the fragment.
ID_PREFIX = {JSON: '{"id":%d,', CSV: "%d,"}


class Renderer:
    """Called with one bucket's reports; returns, per kind, their fragments (None: not possible for
    this bucket, e.g. a value of an odd type — the writer then formats the reports itself)."""

    def __init__(self, kinds: Sequence[str]):
        self.kinds = tuple(kinds)

    def __call__(self, reports: Sequence["ConnectionReport"]) -> dict[str, list[str] | None]:
        from . import csv_report, json_report  # they import this module for ``prerendered``

        out: dict[str, list[str] | None] = {}
        if JSON in self.kinds:
            out[JSON] = json_report.fragments_of(reports)
        if CSV in self.kinds:
            out[CSV] = csv_report.fragments_of(reports)
        return out


def renderer_for(*, json: bool, csv: bool) -> Renderer | None:
    kinds = [kind for kind, wanted in ((JSON, json), (CSV, csv)) if wanted]
    return Renderer(kinds) if kinds else None


def prerendered(connections: object, kind: str) -> Iterator[str] | None:
    """The connections' texts (id in front) from fragments a partitioned run made, if it made them
    for every bucket; None otherwise (the writer formats the reports)."""
    fragments = getattr(connections, "fragments", None)
    made = fragments(kind) if fragments is not None else None
    if made is None:
        return None
    prefix = ID_PREFIX[kind]
    return (prefix % number + text for number, text in made)
