"""Stage 5: checks, one module per rule, turning a replay into findings.

Contract: ``run_checks(conn, replay, *, previous, capture_end, config, catalogue) -> list[Finding]``
where ``previous`` is the (Connection, Replay) of the incarnation before on the same tuple, or None.

Each module in this package declares ``RULE`` (the rule id, = rules/<RULE>.toml) and one generator
``check(ctx: CheckContext)`` yielding findings.  Adding a rule: write the module and the rule file,
and add the module to ``_MODULES`` below.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from ..catalogue import RuleSpec
from ..connections import Connection
from ..findings import Finding
from ..replay.model import Replay
from . import (
    abortive_close,
    capture_gap,
    capture_midstream,
    capture_one_direction,
    close_wait_leak,
    connection_refused,
    data_after_fin,
    data_after_rst,
    fin_ack_mismatch,
    fin_wait_2_timeout,
    handshake_incomplete,
    missing_fin_retransmit,
    option_not_negotiated,
    rst_answers_fin_retransmit,
    rst_instead_of_final_ack,
    rst_out_of_window,
    short_time_wait,
    simultaneous_close,
    simultaneous_open,
    syn_retransmit_too_early,
    synack_bad_ack,
    time_wait_assassination,
    time_wait_reuse,
    timestamps_dropped,
)
from .context import CheckContext

CheckFunction = Callable[[CheckContext], Iterable[Finding]]

_MODULES = (
    rst_instead_of_final_ack,
    abortive_close,
    rst_answers_fin_retransmit,
    missing_fin_retransmit,
    short_time_wait,
    time_wait_reuse,
    close_wait_leak,
    handshake_incomplete,
    connection_refused,
    capture_midstream,
    capture_gap,
    capture_one_direction,
    fin_wait_2_timeout,
    data_after_fin,
    data_after_rst,
    synack_bad_ack,
    fin_ack_mismatch,
    rst_out_of_window,
    option_not_negotiated,
    timestamps_dropped,
    syn_retransmit_too_early,
    simultaneous_open,
    simultaneous_close,
    time_wait_assassination,
)

CHECKS: dict[str, CheckFunction] = {module.RULE: module.check for module in _MODULES}


def run_checks(
    conn: Connection,
    replay: Replay,
    *,
    previous: tuple[Connection, Replay] | None,
    capture_end: float | None,
    config,
    catalogue: Mapping[str, RuleSpec],
) -> list[Finding]:
    """Every enabled rule over one connection, in frame order; severities as configured."""
    profile = config.profile_for_run()
    findings: list[Finding] = []
    for rule_id, check in CHECKS.items():
        spec = catalogue.get(rule_id)
        if spec is None or not config.enabled(rule_id):
            continue
        ctx = CheckContext(
            connection=conn,
            replay=replay,
            previous=previous,
            capture_end=capture_end,
            params=config.parameters(spec, profile),
            profile=profile,
            spec=spec,
            severity=config.severity_of(spec),
        )
        findings.extend(check(ctx))
    findings.sort(key=lambda f: (f.frame, f.rule))
    return findings
