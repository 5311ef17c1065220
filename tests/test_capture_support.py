"""Helpers shared by the reader's tests: read a capture whole, compare segment columns."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from pcapcheck.capture import CaptureInfo, open_capture
from pcapcheck.segments import SEGMENT_DTYPE

DATA = Path(__file__).parent / "data"
SAMPLES = Path(__file__).parents[1] / "samples"

# Columns that describe the TCP segment itself (not where or when it was recorded).
WIRE_COLUMNS = tuple(
    name for name in SEGMENT_DTYPE.names if name not in ("frame", "file_index", "file_frame", "ts_ns")
)


def read_all(*paths: Path | str, reader: str = "dpkt") -> tuple[np.ndarray, CaptureInfo]:
    capture = open_capture([str(p) for p in paths], reader=reader)
    batches = list(capture.batches())
    rows = np.concatenate(batches) if batches else np.zeros(0, dtype=SEGMENT_DTYPE)
    return rows, capture.info


def differing_columns(a: np.ndarray, b: np.ndarray, columns=SEGMENT_DTYPE.names) -> list[str]:
    if len(a) != len(b):
        return [f"row count {len(a)} != {len(b)}"]
    return [name for name in columns if not np.array_equal(a[name], b[name])]


@functools.cache
def make_captures():
    """tests/data/make_captures.py as a module: its pcap reader and writer build test variants."""
    spec = importlib.util.spec_from_file_location("make_captures", DATA / "make_captures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
