"""Capture times as seconds: nanoseconds since the epoch (how the reader keeps them) to floats and
to the text the reports show.

Every conversion rounds once, to the float nearest the exact time. ``ns / 1e9`` rounds twice (the
nanoseconds to a float, above 2**53, then the quotient): a quarter of a microsecond capture's times
came out one unit in the last place off, and their shortest text grew a false seventh decimal
(1795549490.8631291 for the frame Wireshark shows at 1795549490.863129). Rounding once keeps the
scalar and the vectorised forms equal too, which the replay's memo keys rely on.
"""

from __future__ import annotations

import numpy as np

NS_PER_S = 1_000_000_000
# Below this many nanoseconds an int64 converts to a float exactly: one division, one rounding.
_EXACT_NS = 1 << 53
# A time in whole ns in the binade [2**e, 2**(e+1)) lies at least 512 * 2**e / (1e9 * 2**53) from
# a midpoint between two floats (the gcd of 2**(53-e) and 10**9 is 2**9, and an odd multiple of
# 2**(e-53) is no multiple of 10**-9). From 2**20 s on that is more than the error of
# fraction / 1e9 (2**-54), so adding it to the whole seconds rounds as the exact time would; below,
# it does not always (2819.734419226 s comes out 2819.7344192259998). Every time from 2**53 ns
# (104 days) up is above 2**20 s.
# Above 2**33 s the float spacing reaches a microsecond: a text of digits could be shorter.
_HIGH_S = 1 << 33
# repr switches to an exponent below 1e-4 s (and far above any time here).
_PLAIN_NS = 100_000


def second(ns: int) -> float:
    """The float nearest ``ns`` nanoseconds, in seconds (int / int is correctly rounded)."""
    return int(ns) / NS_PER_S


def seconds(ns: np.ndarray) -> np.ndarray:
    """``second`` of every element, vectorised: float64, equal element for element."""
    ns = np.asarray(ns, dtype=np.int64)
    if ns.size and ns.min() >= _EXACT_NS:  # a capture's epoch times: all of them at once
        whole, fraction = np.divmod(ns, NS_PER_S)
        return whole + fraction / 1e9
    out = ns.astype(np.float64) / 1e9
    big = np.abs(ns) >= _EXACT_NS
    if big.any():
        out[big] = [second(n) for n in ns[big].tolist()]
    return out


def texts(ns: np.ndarray) -> list[str]:
    """``repr(second(n))`` of every element: JSON's text of the time.

    For a time in whole microseconds between 1e-4 s and 2**33 s that text is its decimal digits
    with trailing zeros cut (at least one kept): the float spacing there is below a microsecond,
    so no shorter decimal rounds to the same float. Those are written from the digits at once, a
    count of whole digits at a time; the rest (nanosecond captures, tiny or far times) one by one."""
    ns = np.asarray(ns, dtype=np.int64).ravel()
    if not len(ns):
        return []
    micro, sub = np.divmod(ns, 1000)
    plain = (sub == 0) & (ns >= _PLAIN_NS) & (ns < _HIGH_S * NS_PER_S)
    whole = micro // 1_000_000
    widths = np.searchsorted(_POWERS_OF_TEN, whole, side="right") + 1  # 0 has one digit
    if plain.all() and widths.min() == widths.max():
        return _decimal_texts(micro, whole, int(widths[0]))
    out: list[str] = [""] * len(ns)
    # Not np.unique: its first call imports numpy.ma, about 8 ms.
    for width in np.flatnonzero(np.bincount(widths[plain])).tolist():
        at = np.flatnonzero(plain & (widths == width))
        for i, text in zip(at.tolist(), _decimal_texts(micro[at], whole[at], width)):
            out[i] = text
    for i in np.flatnonzero(~plain).tolist():
        out[i] = repr(second(int(ns[i])))
    return out


_POWERS_OF_TEN = 10 ** np.arange(1, 11, dtype=np.int64)
# The three digits of 0..999 as UCS-4 codes: numpy's str arrays are UCS-4, so the texts are made
# in place and tolist() hands out the str objects, with no bytes-to-str pass.
_THREE_DIGITS = np.array([[ord(c) for c in f"{i:03d}"] for i in range(1000)], dtype=np.uint32)


def _decimal_texts(micro: np.ndarray, whole: np.ndarray, width: int) -> list[str]:
    """``whole.fraction`` of microsecond counts whose ``whole`` seconds have ``width`` digits (at
    most 10), the fraction's trailing zeros cut but one digit kept."""
    size = width + 7
    n = len(micro)
    chars = np.empty((n, size), dtype=np.uint32)
    fraction = micro - whole * 1_000_000
    high = fraction // 1000
    chars[:, width + 1 : width + 4] = _THREE_DIGITS[high]
    chars[:, width + 4 :] = _THREE_DIGITS[fraction - high * 1000]
    chars[:, width] = 46  # "."
    digits = np.empty((n, 12), dtype=np.uint32)  # the whole seconds, zero-padded to 12 digits
    for k in range(4):
        whole, part = np.divmod(whole, 1000)
        digits[:, 9 - 3 * k : 12 - 3 * k] = _THREE_DIGITS[part]
    chars[:, :width] = digits[:, 12 - width :]
    # Trailing zeros become NULs, which end a numpy str.
    cut = np.logical_and.accumulate(chars[:, : width + 1 : -1] == 48, axis=1)
    chars[:, : width + 1 : -1][cut] = 0
    return chars.view(f"U{size}").ravel().tolist()
