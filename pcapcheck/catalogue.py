"""The rule catalogue: rules/*.toml loaded and validated; the one source for help, reports and SARIF.

Contract (the rules work fills ``load_catalogue``):

    catalogue = load_catalogue(extra_dirs=[...])   # raises RuleFileError naming file and field
    spec = catalogue["short-time-wait"]            # RuleSpec
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .findings import Severity


@dataclass(frozen=True, slots=True)
class RuleSpec:
    id: str
    title: str
    severity: Severity  # default severity
    category: str  # "close", "handshake", "reset", "timing", "options", "capture-quality"
    rfc: tuple[str, ...]  # e.g. ("RFC 9293 §3.6.1", "RFC 6191")
    explanation: str
    remedy: str
    example: str = ""
    parameters: dict = field(default_factory=dict)  # name -> default value
    path: str = ""  # the file it came from
