"""Stage 4: replay one connection through the RFC 9293 state machine, for both endpoints.

Contract: ``replay(connection, profile) -> Replay`` (see model.py for what a Replay holds).
``replay(connection, profile, capture_end=t)`` lets a TIME-WAIT that would expire before the
capture's last packet (of any connection) expire within the replay.
``end_time_wait_by_new_incarnation(previous_replay, new_connection)`` ends a TIME-WAIT that the
next incarnation's SYN on the same 4-tuple cut short (one replay cannot see the next connection),
and ends a half-open previous incarnation (RFC 9293 §3.5.2 Figure 10) the same way
(``end_half_open_by_new_incarnation``, which it calls).
"""

from .engine import replay
from .incarnation import end_time_wait_by_new_incarnation

__all__ = ["end_time_wait_by_new_incarnation", "replay"]
