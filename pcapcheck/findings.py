"""Findings: what a check reports about one connection."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .segments import Side


class Severity(str, Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return {"info": 1, "warning": 2, "error": 3}[self.value]

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str  # rule id, e.g. "rst-answers-fin-retransmit"
    severity: Severity
    connection: int  # Connection.id
    endpoint: Side | None  # endpoint at fault; None for capture-quality notes
    frame: int  # the segment that evidences the problem (see each rule file)
    time: float
    message: str  # one sentence a person understands, with frame numbers
    rfc: str = ""  # e.g. "RFC 9293 §3.6.1"
    capture_quality: bool = False  # a note about the capture, never a fault of the endpoints
