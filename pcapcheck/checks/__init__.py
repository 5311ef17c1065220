"""Stage 5: checks, one module per rule, turning a replay into findings.

Contract: ``run_checks(conn, replay, *, previous, capture_end, config, catalogue) -> list[Finding]``
where ``previous`` is the (Connection, Replay) of the incarnation before on the same tuple, or None.
"""
