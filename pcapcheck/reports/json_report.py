"""JSON report: the whole report document in one file."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from .atomic import write_text_atomically
from .document import build_document

if TYPE_CHECKING:
    from ..analysis import AnalysisResult


def write_json(result: "AnalysisResult", path: str | os.PathLike) -> None:
    # Compact, and through json.dumps: only the one-shot encoder is the C one.  A capture of a
    # whole test run has tens of thousands of connections; pretty-printing made the file 2-3 times
    # larger and slower to write.  `jq .` pretty-prints it for a person.
    text = json.dumps(build_document(result), ensure_ascii=False, separators=(",", ":")) + "\n"
    write_text_atomically(path, text)
