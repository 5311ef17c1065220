"""Link-layer header types (https://www.tcpdump.org/linktypes.html) that pcapcheck can decode."""

from __future__ import annotations

NULL = 0  # BSD loopback: 4-byte address family in the *writer's* byte order
EN10MB = 1  # Ethernet, with 802.1Q / 802.1ad (QinQ) tags
RAW = 101  # raw IPv4 or IPv6, version from the first nibble
LOOP = 108  # OpenBSD loopback: 4-byte address family in network byte order
LINUX_SLL = 113  # Linux cooked capture v1 (tcpdump -i any, old)
IPV4 = 228
IPV6 = 229
LINUX_SLL2 = 276  # Linux cooked capture v2 (tcpdump -i any since libpcap 1.10)

NAMES = {
    NULL: "NULL",
    EN10MB: "EN10MB",
    RAW: "RAW",
    LOOP: "LOOP",
    LINUX_SLL: "LINUX_SLL",
    IPV4: "IPV4",
    IPV6: "IPV6",
    LINUX_SLL2: "LINUX_SLL2",
}

# Some writers store DLT_RAW's platform value (12 or 14) instead of LINKTYPE_RAW.
ALIASES = {12: RAW, 14: RAW}

SUPPORTED = frozenset(NAMES)


def canonical(linktype: int) -> int:
    return ALIASES.get(linktype, linktype)


def name(linktype: int) -> str:
    return NAMES.get(linktype, f"LINKTYPE_{linktype}")
