"""Stage 4: replay one connection through the RFC 9293 state machine, for both endpoints.

Contract: ``replay(connection, profile) -> Replay`` (see model.py for what a Replay holds).
``replay(connection, profile, capture_end=t)`` lets a TIME-WAIT that would expire before the
capture's last packet (of any connection) expire within the replay.
"""

from .engine import replay

__all__ = ["replay"]
