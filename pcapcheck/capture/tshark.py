"""The optional tshark reader (``--reader tshark``): the same segments, decoded by Wireshark.

It exists to cross-check the default reader, and as a fallback for link types pcapcheck does not
decode itself.  pyshark (the ``tshark`` extra) locates the tshark binary; the fields are read with
``tshark -T fields``, one line per frame, which is much faster than pyshark's per-packet objects
and gives every occurrence of every field.  File header problems are reported exactly as the
default reader reports them (the header is checked by the same code before tshark runs).
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from collections.abc import Iterator

import numpy as np

from ..errors import CaptureError, ConfigError
from ..segments import CHECKSUM_BAD, CHECKSUM_OK, CHECKSUM_UNKNOWN, MAX_SACK_BLOCKS, empty_batch
from .checksum import offloaded, pseudo_header_sum
from .decode import Decoded
from .source import is_stream

BATCH = 65536

FIELDS = (
    "frame.number",
    "frame.time_epoch",
    "frame.len",
    "frame.cap_len",
    "frame.protocols",
    "ip.src",
    "ip.dst",
    "ip.ttl",
    "ipv6.src",
    "ipv6.dst",
    "ipv6.hlim",
    "tcp.srcport",
    "tcp.dstport",
    "tcp.seq_raw",
    "tcp.ack_raw",
    "tcp.flags",
    "tcp.window_size_value",
    "tcp.len",
    "tcp.option_kind",
    "tcp.options.mss_val",
    "tcp.options.wscale.shift",
    "tcp.options.timestamp.tsval",
    "tcp.options.timestamp.tsecr",
    "tcp.options.sack_le",
    "tcp.options.sack_re",
    "tcp.checksum.status",
    "tcp.checksum",
    "tcp.hdr_len",
)
COLUMN = {name: i for i, name in enumerate(FIELDS)}

PREFERENCES = (
    "tcp.relative_sequence_numbers:FALSE",  # SACK edges raw, like the wire
    "tcp.check_checksum:TRUE",
    "tcp.desegment_tcp_streams:FALSE",
    "ip.defragment:FALSE",  # a first fragment is decoded as itself, like the default reader
    "ipv6.defragment:FALSE",
)


def tshark_path() -> str:
    try:
        import pyshark  # noqa: F401  (the extra that makes this reader available)
        from pyshark.tshark.tshark import TSharkNotFoundException, get_process_path
    except ImportError:
        raise ConfigError("the tshark reader needs pyshark: pip install 'pcapcheck[tshark]'") from None
    try:
        path = get_process_path()
    except TSharkNotFoundException:
        path = None
    if not path or not shutil.which(path):
        raise ConfigError("the tshark reader needs tshark (Wireshark) on PATH")
    return path


class TsharkFile:
    # Only the default reader reads pcapng interface statistics: this one is for cross-checks.
    dropped_by_interface: int | None = None

    def __init__(self, path: str, tshark: str):
        from .files import open_file

        self.path = path
        self.tshark = tshark
        if is_stream(path):
            # The header probe below and tshark would each read the pipe: neither would see it all.
            raise CaptureError(path, "the tshark reader needs a regular file, not a pipe (use --reader dpkt)")
        probe = open_file(path)  # same header checks and messages as the default reader
        try:
            # One chunk is enough to meet a pcapng file's interfaces and name their link types.
            next(probe.fmt.frames(), None)
        except CaptureError:
            pass  # tshark will meet the damage again and report it in order
        finally:
            probe.close()
        self.format_name = probe.format_name
        self.link_names = list(probe.link_names)
        self.warnings: list[str] = []
        self.comments: list[str] = []

    def decoded(self, file_index: int) -> Iterator[Decoded]:
        cmd = [self.tshark, "-n", "-r", self.path, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a"]
        cmd += ["-E", "aggregator=,"]
        for pref in PREFERENCES:
            cmd += ["-o", pref]
        for name in FIELDS:
            cmd += ["-e", name]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines: list[list[str]] = []
        first_frame = 1
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n").split("\t"))
            if len(lines) == BATCH:
                yield _batch(lines, first_frame, file_index)
                first_frame += len(lines)
                lines = []
        if lines:
            yield _batch(lines, first_frame, file_index)
        stderr = proc.stderr.read() if proc.stderr else ""
        if proc.wait() != 0:
            problem = next((ln for ln in stderr.splitlines() if ln.strip() and "Running as user" not in ln), "")
            if "cut short" in problem or "cut short" in stderr:
                self.warnings.append(f"{self.path}: last record is cut short; the packets before it were analysed")
            else:
                raise CaptureError(self.path, f"tshark: {problem or 'failed'}")

    def close(self) -> None:
        pass


def open_tshark_file(path: str) -> TsharkFile:
    return TsharkFile(path, tshark_path())


def _ns(epoch: str) -> int:
    sec, _, frac = epoch.partition(".")
    return int(sec) * 1_000_000_000 + int((frac + "000000000")[:9])


def _last(value: str) -> str:
    return value.rsplit(",", 1)[-1]


def _address(text: str) -> np.ndarray:
    ip = ipaddress.ip_address(text)
    raw = ip.packed if ip.version == 6 else b"\x00" * 10 + b"\xff\xff" + ip.packed
    return np.frombuffer(raw, dtype=np.uint8)


def _batch(lines: list[list[str]], first_frame: int, file_index: int) -> Decoded:
    record_ts = np.array([_ns(f[COLUMN["frame.time_epoch"]]) for f in lines], dtype=np.int64)
    # A TCP header not captured in full is no segment (the default reader skips it too).
    tcp_lines = [f for f in lines if _is_tcp(f[COLUMN["frame.protocols"]]) and f[COLUMN["tcp.ack_raw"]]]
    out = empty_batch(len(tcp_lines))
    c = COLUMN
    for i, f in enumerate(tcp_lines):
        row = out[i]
        row["file_index"] = file_index
        row["file_frame"] = row["frame"] = int(f[c["frame.number"]])
        row["ts_ns"] = _ns(f[c["frame.time_epoch"]])
        protos = f[c["frame.protocols"]].split(":")
        before_tcp = protos[: protos.index("tcp")]
        v6 = max((i for i, p in enumerate(before_tcp) if p in ("ip", "ipv6")), default=-1)
        is6 = v6 >= 0 and before_tcp[v6] == "ipv6"
        row["ip_version"] = 6 if is6 else 4
        prefix = "ipv6" if is6 else "ip"
        row["src"] = _address(_last(f[c[f"{prefix}.src"]]))
        row["dst"] = _address(_last(f[c[f"{prefix}.dst"]]))
        row["ttl"] = int(_last(f[c["ipv6.hlim" if is6 else "ip.ttl"]]))
        row["sport"] = int(f[c["tcp.srcport"]].split(",")[0])
        row["dport"] = int(f[c["tcp.dstport"]].split(",")[0])
        row["seq"] = int(f[c["tcp.seq_raw"]].split(",")[0])
        row["ack"] = int(f[c["tcp.ack_raw"]].split(",")[0])
        row["flags"] = int(f[c["tcp.flags"]].split(",")[0], 16)
        row["window"] = int(f[c["tcp.window_size_value"]].split(",")[0])
        row["payload_len"] = int(f[c["tcp.len"]].split(",")[0])
        row["truncated"] = int(f[c["frame.cap_len"]]) < int(f[c["frame.len"]])
        kinds = [int(k) for k in f[c["tcp.option_kind"]].split(",") if k]
        if f[c["tcp.options.mss_val"]]:
            row["mss"] = int(_last(f[c["tcp.options.mss_val"]]))
        if f[c["tcp.options.wscale.shift"]]:
            row["wscale"] = int(_last(f[c["tcp.options.wscale.shift"]]))
        row["sack_permitted"] = 4 in kinds
        # An option cut by the snaplen counts as absent, as in the default reader.
        if f[c["tcp.options.timestamp.tsval"]] and f[c["tcp.options.timestamp.tsecr"]]:
            row["has_ts"] = True
            row["ts_val"] = int(_last(f[c["tcp.options.timestamp.tsval"]]))
            row["ts_ecr"] = int(_last(f[c["tcp.options.timestamp.tsecr"]]))
        left = [int(v) for v in f[c["tcp.options.sack_le"]].split(",") if v]
        right = [int(v) for v in f[c["tcp.options.sack_re"]].split(",") if v]
        blocks = list(zip(left, right))[:MAX_SACK_BLOCKS]
        row["sack_count"] = len(blocks)
        for j, (le, re) in enumerate(blocks):
            row["sack"][j] = (le, re)
        status = f[c["tcp.checksum.status"]].split(",")[0]
        if status == "1":
            row["checksum"] = CHECKSUM_OK
        elif status == "0":
            row["checksum"] = CHECKSUM_BAD
            field = int(f[c["tcp.checksum"]].split(",")[0], 16)
            tcp_len = int(f[c["tcp.hdr_len"]].split(",")[0]) + int(row["payload_len"])
            pseudo = pseudo_header_sum(out["src"][i : i + 1], out["dst"][i : i + 1], np.array([not is6]), [tcp_len])
            if offloaded(np.array([field]), pseudo)[0]:
                row["checksum"] = CHECKSUM_UNKNOWN
    return Decoded(segments=out, record_ts=record_ts, first_file_frame=first_frame)


def _is_tcp(protocols: str) -> bool:
    """A TCP segment of its own, not a TCP header quoted inside an ICMP error."""
    protos = protocols.split(":")
    return "tcp" in protos and "icmp" not in protos and "icmpv6" not in protos
