"""TCP options (RFC 9293 §3.1, §3.7.1 MSS; RFC 7323 window scale and timestamps; RFC 2018 SACK).

The decoder handles the common layouts (none, NOP NOP TS) vectorised; this per-packet parser takes
the rest (SYN options, SACK blocks, unusual orders).  Malformed option lists are read as far as
they make sense and never raise: a length byte below 2 or past the end stops the walk, like
Wireshark does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..segments import MAX_SACK_BLOCKS

EOL, NOP, MSS, WSCALE, SACK_PERMITTED, SACK, TIMESTAMP = 0, 1, 2, 3, 4, 5, 8


@dataclass(slots=True)
class Options:
    mss: int = -1
    wscale: int = -1
    sack_permitted: bool = False
    has_ts: bool = False
    ts_val: int = 0
    ts_ecr: int = 0
    sack: list[tuple[int, int]] = field(default_factory=list)


def parse_options(data: bytes) -> Options:
    opts = Options()
    i, end = 0, len(data)
    while i < end:
        kind = data[i]
        if kind == EOL:
            break
        if kind == NOP:
            i += 1
            continue
        if i + 1 >= end:
            break
        length = data[i + 1]
        if length < 2 or i + length > end:
            break
        body = data[i + 2 : i + length]
        if kind == MSS and length == 4:
            opts.mss = int.from_bytes(body, "big")
        elif kind == WSCALE and length == 3:
            # Kept raw: a shift above 14 is itself worth reporting (RFC 7323 §2.3).
            opts.wscale = body[0]
        elif kind == SACK_PERMITTED and length == 2:
            opts.sack_permitted = True
        elif kind == SACK and (length - 2) % 8 == 0 and length > 2:
            for j in range(0, length - 2, 8):
                if len(opts.sack) < MAX_SACK_BLOCKS:
                    opts.sack.append((int.from_bytes(body[j : j + 4], "big"), int.from_bytes(body[j + 4 : j + 8], "big")))
        elif kind == TIMESTAMP and length == 10:
            opts.has_ts = True
            opts.ts_val = int.from_bytes(body[0:4], "big")
            opts.ts_ecr = int.from_bytes(body[4:8], "big")
        i += length
    return opts
