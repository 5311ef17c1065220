"""Stage 5: checks, one module per rule, turning a replay into findings.

Contract: ``run_checks(conn, replay, *, previous, capture_end, config, catalogue) -> list[Finding]``
where ``previous`` is the (Connection, Replay) of the incarnation before on the same tuple, or None.

Each module in this package declares ``RULE`` (the rule id, = rules/<RULE>.toml) and one generator
``check(ctx: CheckContext)`` yielding findings.  Adding a rule: write the module and the rule file,
and add the module to ``_MODULES`` below.

A module may also declare ``NEEDS``, the flag bits (segments.SYN | FIN | RST) every connection it
can find something in carries: on a capture of many short connections most rules have nothing to
look at in most of them (no RST, say), and ``run_checks`` then skips the rule without building its
context.  Each rule's effective parameters are resolved once per run (configuration and catalogue
unchanged), not once per connection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ..catalogue import RuleSpec
from ..connections import Connection
from ..findings import Finding, Severity
from ..profiles import Profile
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
from .reuse import Words

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
# Flag bits (segments.SYN, FIN, RST) a connection must have carried for a rule to find anything,
# from each module's ``NEEDS``; a rule without it runs on every connection.
NEEDS: dict[str, int] = {module.RULE: getattr(module, "NEEDS", 0) for module in _MODULES}
# Rules that read the previous incarnation on the tuple (``READS_PREVIOUS = True`` in the module):
# the memo's key cannot fix what they find, so they run on every member of a template.
READS_PREVIOUS: frozenset[str] = frozenset(m.RULE for m in _MODULES if getattr(m, "READS_PREVIOUS", False))


@dataclass(frozen=True, slots=True)
class _RulePlan:
    """One enabled rule, resolved for a run: what each connection's CheckContext needs from config."""

    rule_id: str
    check: CheckFunction
    needs: int
    spec: RuleSpec
    params: Mapping[str, Any]
    severity: Severity


@dataclass(frozen=True, slots=True)
class _Plan:
    config: Any
    catalogue: Mapping[str, RuleSpec]
    fingerprint: tuple
    profile: Profile
    rules: tuple[_RulePlan, ...]
    # Effective parameters of every catalogued rule, enabled or not: a rule that must agree with
    # another rule's timer (rst-instead-of-final-ack with fin-wait-2-timeout) reads it here.
    all_params: Mapping[str, Mapping[str, Any]]


# The plan of the last run: configuration and catalogue do not change between the connections of
# one run, so the effective parameters are resolved once, not once per rule per connection.
_last_plan: _Plan | None = None


def _fingerprint(config, catalogue: Mapping[str, RuleSpec]) -> tuple:
    """What the plan depends on, cheap to compare: a config or catalogue changed in place is noticed."""
    return (
        config.profile,
        tuple(sorted(config.disabled)),
        tuple(sorted(config.severities.items())),
        repr(config.params),
        tuple(map(catalogue.get, CHECKS)),  # tuples compare items by identity first: cheap
    )


def _plan(config, catalogue: Mapping[str, RuleSpec]) -> _Plan:
    global _last_plan
    fingerprint = _fingerprint(config, catalogue)
    plan = _last_plan
    if plan is not None and plan.config is config and plan.catalogue is catalogue and plan.fingerprint == fingerprint:
        return plan
    profile = config.profile_for_run()
    rules = []
    all_params = {rule_id: config.parameters(spec, profile) for rule_id, spec in catalogue.items()}
    for rule_id, check in CHECKS.items():
        spec = catalogue.get(rule_id)
        if spec is None or not config.enabled(rule_id):
            continue
        # Read-only: every connection's context shares it.
        params = MappingProxyType(all_params[rule_id])
        rules.append(_RulePlan(rule_id, check, NEEDS[rule_id], spec, params, config.severity_of(spec)))
    _last_plan = plan = _Plan(config, catalogue, fingerprint, profile, tuple(rules), all_params)
    return plan


def run_checks(
    conn: Connection,
    replay: Replay,
    *,
    previous: tuple[Connection, Replay] | None,
    capture_end: float | None,
    config,
    catalogue: Mapping[str, RuleSpec],
    only: frozenset[str] | None = None,
    end_readers: set[str] | None = None,
) -> list[Finding]:
    """Every enabled rule (or those of them in ``only``) over one connection, in frame order;
    severities as configured.  ``end_readers``: where to add every rule run when one of them read
    ``capture_end`` (the others may have used what it derived: CheckContext.shared)."""
    plan = _plan(config, catalogue)
    rules = plan.rules if only is None else [rule for rule in plan.rules if rule.rule_id in only]
    return _findings(plan, rules, conn, replay, previous, capture_end, {}, end_readers)


def _findings(
    plan: _Plan,
    rules: Sequence[_RulePlan],
    conn: Connection,
    replay: Replay | None,
    previous: tuple[Connection, Replay] | None,
    capture_end: float | None,
    shared: dict[str, Any],
    end_readers: set[str] | None = None,
) -> list[Finding]:
    """``rules`` over one connection, in frame order; ``shared``: what they derive alike;
    ``end_readers``: see ``run_checks``."""
    seen = conn.flags_seen  # the OR of every segment's flags, as the steps would give
    findings: list[Finding] = []
    read_capture_end = False
    for rule in rules:
        if rule.needs & seen != rule.needs:
            continue  # e.g. a RST rule on a connection without RST: nothing to find
        ctx = CheckContext(
            connection=conn,
            replay=replay,  # type: ignore[arg-type]
            previous=previous,
            _capture_end=capture_end,
            params=rule.params,
            profile=plan.profile,
            spec=rule.spec,
            severity=rule.severity,
            rule_params=plan.all_params,
            shared=shared,
        )
        findings.extend(rule.check(ctx))
        read_capture_end = read_capture_end or ctx.read_capture_end
    if end_readers is not None and read_capture_end:
        end_readers.update(rule.rule_id for rule in rules)
    return _in_frame_order(findings)


@dataclass(frozen=True, slots=True)
class ReuseRule:
    """An enabled rule that reads the previous incarnation, resolved for a run, as the column lane
    of reopened tuples (pcapcheck.reopened) applies it to a reuse known from columns: what the
    rule's check (checks.reuse.reuse_check) reads: its VERDICTS, ``words`` and parameter, and how
    ``_findings`` runs it (NEEDS) and its findings read (CheckContext.finding)."""

    verdicts: frozenset[int]
    words: Words
    time_wait: float  # its parameter
    needs: int
    spec: RuleSpec
    severity: Severity


def reuse_rules(config, catalogue: Mapping[str, RuleSpec]) -> tuple[ReuseRule, ...]:
    """The enabled rules that read the previous incarnation, which they read only through
    checks.reuse.find_reuse, by rule id: the order of a connection's findings at one frame
    (``_in_frame_order``), where each of them reports (the reuse's SYN)."""
    plan = _plan(config, catalogue)
    chosen = (rule for rule in plan.rules if rule.rule_id in READS_PREVIOUS)
    return tuple(
        ReuseRule(
            _REUSE_MODULES[rule.rule_id].VERDICTS, _REUSE_MODULES[rule.rule_id].words,
            rule.params["time_wait"], rule.needs, rule.spec, rule.severity,
        )  # fmt: skip
        for rule in sorted(chosen, key=lambda rule: rule.rule_id)
    )


def _in_frame_order(findings: list[Finding]) -> list[Finding]:
    """A connection's findings in frame order, as run_checks gives them (rules by id at one frame)."""
    if len(findings) > 1:
        findings.sort(key=lambda f: (f.frame, f.rule))
    return findings


# Each rule that reads the previous incarnation reads only its Reuse, through
# checks.reuse.reuse_check with its VERDICTS and ``words``.
_REUSE_MODULES = {m.RULE: m for m in _MODULES if getattr(m, "READS_PREVIOUS", False)}
