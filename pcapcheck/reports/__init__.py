"""Stage 6: reports (terminal, JSON, CSV, HTML, JUnit, SARIF), all written atomically.

Contract: ``write_reports(result, *, json_path, csv_dir, html_path, junit_path, sarif_path)``.
"""
