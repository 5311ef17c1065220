"""Stage 4: replay one connection through the RFC 9293 state machine, for both endpoints.

Contract: ``replay(connection, profile) -> Replay`` (see model.py for what a Replay holds).
"""
