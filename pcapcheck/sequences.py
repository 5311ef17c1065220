"""Sequences that stand for a list without holding one: read from disk or made as they are read."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import islice


class IteratedSequence(Sequence):
    """Indexing and slicing by walking ``__iter__``: reports read such sequences in order, once or
    twice (HTML takes the first rows); nothing indexes them at random."""

    __slots__ = ()

    def __getitem__(self, index):
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            return list(islice(iter(self), start, stop, step))
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return next(islice(iter(self), index, None))


class ComparesAsList:
    """Equality as the list it stands for compares: with lists and with its own kind, item by item."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, type(self))):
            return list(self) == list(other)  # type: ignore[call-overload]
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]
