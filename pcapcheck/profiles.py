"""Stack profiles: the timing constants that differ between TCP implementations.

Each value is also a rule parameter (rules/*.toml), so a user may override it per rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    msl: float  # seconds
    time_wait: float  # how long the active closer holds TIME-WAIT (2*MSL, or the stack's constant)
    fin_wait_2: float  # how long an orphaned FIN-WAIT-2 is kept
    rto_initial: float  # RFC 6298 §2.1 initial RTO
    rto_min: float  # smallest RTO the stack uses (Linux 200 ms, RFC 6298 §2.4 says 1 s)
    description: str


PROFILES: dict[str, Profile] = {
    "rfc9293": Profile(
        name="rfc9293",
        msl=120.0,
        time_wait=240.0,
        fin_wait_2=600.0,  # RFC sets no limit; 10 min is the classic BSD keepalive-driven value
        rto_initial=1.0,
        rto_min=1.0,
        description="RFC 9293 / RFC 6298 values: MSL 2 min, TIME-WAIT 4 min, RTO at least 1 s",
    ),
    "linux": Profile(
        name="linux",
        msl=30.0,
        time_wait=60.0,  # TCP_TIMEWAIT_LEN
        fin_wait_2=60.0,  # net.ipv4.tcp_fin_timeout
        rto_initial=1.0,  # TCP_TIMEOUT_INIT
        rto_min=0.2,  # TCP_RTO_MIN
        description="Linux: TIME-WAIT 60 s, tcp_fin_timeout 60 s, RTO min 200 ms",
    ),
    "windows": Profile(
        name="windows",
        msl=60.0,
        time_wait=120.0,  # TcpTimedWaitDelay default; valid 30-300 s
        fin_wait_2=120.0,
        rto_initial=3.0,  # TcpInitialRtt-driven; classic 3 s
        rto_min=0.3,
        description="Windows: TcpTimedWaitDelay 120 s (valid 30-300 s)",
    ),
}

DEFAULT_PROFILE = "linux"


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(f"unknown profile '{name}' (known: {', '.join(sorted(PROFILES))})") from None
