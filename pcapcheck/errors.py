"""Errors that end a run with exit code 2 and one clear line on stderr."""

from __future__ import annotations


class PcapcheckError(Exception):
    """Base class: the CLI prints str(err) on one line and exits 2."""


class CaptureError(PcapcheckError):
    """A capture file cannot be read (missing, not a capture, unsupported link type, corrupt)."""

    def __init__(self, path: str, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class RuleFileError(PcapcheckError):
    """A rule file (or configuration) is malformed; names the file and the field."""

    def __init__(self, path: str, field: str, problem: str):
        self.path = str(path)
        self.field = field
        self.problem = problem
        super().__init__(f"{self.path}: field '{field}': {problem}")


class ConfigError(PcapcheckError):
    """Bad configuration or command-line usage."""
