"""Stage 6: reports (terminal, JSON, CSV, HTML, JUnit, SARIF), all written atomically.

Contract: ``write_reports(result, *, json_path, csv_dir, html_path, junit_path, sarif_path)``.
Each path may be None (that report is not wanted).  Every report is written even when
``result.error`` is set, with what was computed before the run stopped, and carries the error.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..analysis import AnalysisResult

PathLike = str | os.PathLike | None


def write_reports(
    result: "AnalysisResult",
    *,
    json_path: PathLike = None,
    csv_dir: PathLike = None,
    html_path: PathLike = None,
    junit_path: PathLike = None,
    sarif_path: PathLike = None,
) -> None:
    # Each writer is imported when its report is wanted: jinja2 alone costs a CI run ~20 ms.
    if json_path is not None:
        from .json_report import write_json

        write_json(result, json_path)
    if csv_dir is not None:
        from .csv_report import write_csv

        write_csv(result, csv_dir)
    if html_path is not None:
        from .html_report import write_html

        write_html(result, html_path)
    if junit_path is not None:
        from .junit import write_junit

        write_junit(result, junit_path)
    if sarif_path is not None:
        from .sarif import write_sarif

        write_sarif(result, sarif_path)
