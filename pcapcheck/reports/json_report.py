"""JSON report: the whole report document in one file."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from .atomic import write_atomically
from .document import build_document

if TYPE_CHECKING:
    from ..analysis import AnalysisResult


def write_json(result: "AnalysisResult", path: str | os.PathLike) -> None:
    document = build_document(result)

    def write(handle):
        json.dump(document, handle, indent=2, ensure_ascii=False)
        handle.write("\n")

    write_atomically(path, write)
