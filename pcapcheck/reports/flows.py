"""``pcapcheck flows``: one table row per connection, as the rebuilder sees them (no replay)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..capture import CaptureInfo
from ..connections import Connection
from ..segments import Side, flags_text


def flows_table(conns: Sequence[Connection], info: CaptureInfo) -> Table:
    title = f"{len(conns)} TCP connections in {info.tcp_packets} of {info.packets} packets"
    table = Table(title=title, title_justify="left", caption="c→s, s→c: packets/payload bytes", caption_justify="left")
    table.add_column("id", justify="right")
    # Addresses fold rather than truncate: a flows listing is read and grepped for them.
    table.add_column("client", overflow="fold")
    table.add_column("server", overflow="fold")
    table.add_column("inc", justify="right")
    table.add_column("frames", justify="right")
    table.add_column("c→s", justify="right")
    table.add_column("s→c", justify="right")
    table.add_column("flags", no_wrap=True)
    for conn in conns:
        # Text, not markup: "[fd00::1]:80" must not be read as a style tag.
        client = Text(str(conn.client) + (" ?" if conn.roles_inferred else ""))
        table.add_row(
            str(conn.id),
            client,
            Text(str(conn.server)),
            str(conn.incarnation),
            f"{conn.first_frame}-{conn.last_frame}",
            f"{conn.packets_sent(Side.CLIENT)}/{conn.bytes_sent(Side.CLIENT)}",
            f"{conn.packets_sent(Side.SERVER)}/{conn.bytes_sent(Side.SERVER)}",
            flags_text(conn.flags_seen),
        )
    return table


def print_flows(conns: Sequence[Connection], info: CaptureInfo, console: Console) -> None:
    """Print the flows table; '?' after the client marks roles inferred from a mid-stream pickup."""
    console.print(flows_table(conns, info))
    if any(c.roles_inferred for c in conns):
        console.print("? = no SYN seen: client and server guessed from SYN-ACK, ports and listeners", markup=False)
