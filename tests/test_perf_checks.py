"""How much work the checks do per connection (counted, never timed).

The checks run once per connection of captures with hundreds of thousands of them: what does not
depend on the connection (each rule's effective parameters) is resolved once per run, and a rule
that cannot find anything in a connection (a RST rule where no RST was sent) is not run at all.
"""

from __future__ import annotations

import pcapcheck.checks as checks
from pcapcheck.catalogue import load_catalogue
from pcapcheck.checks import run_checks
from pcapcheck.config import Config, load_config
from pcapcheck.profiles import PROFILES
from pcapcheck.replay import replay
from pcapcheck.segments import RST
from tests.builders import Conversation

LINUX = PROFILES["linux"]


def _graceful() -> Conversation:
    return (
        Conversation()
        .client("S")
        .server("SA")
        .client("A")
        .client("PA", length=100)
        .server("A")
        .client("FA")
        .server("FA")
        .client("A")
    )


def _aborted() -> Conversation:
    return Conversation().client("S").server("SA").client("A").client("PA", length=100).client("RA", dt=0.002)


def _run(conv: Conversation, config: Config, catalogue) -> list:
    conn = conv.connection()
    return run_checks(conn, replay(conn, LINUX), previous=None, capture_end=None, config=config, catalogue=catalogue)


def test_rule_parameters_are_resolved_once_per_run_not_per_connection(monkeypatch):
    config = load_config(None)
    catalogue = load_catalogue(config.extra_rule_dirs)
    monkeypatch.setattr(checks, "_last_plan", None)
    calls = []
    original = Config.parameters

    def counted(self, spec, profile=None):
        calls.append(spec.id)
        return original(self, spec, profile)

    monkeypatch.setattr(Config, "parameters", counted)
    for _ in range(20):
        _run(_graceful(), config, catalogue)
    assert sorted(calls) == sorted(rule for rule in checks.CHECKS if rule in catalogue)


def test_a_rule_disabled_between_two_connections_of_the_same_config_is_no_longer_run():
    config = load_config(None)
    catalogue = load_catalogue(config.extra_rule_dirs)
    assert "abortive-close" in {f.rule for f in _run(_aborted(), config, catalogue)}
    config.disabled.add("abortive-close")
    assert "abortive-close" not in {f.rule for f in _run(_aborted(), config, catalogue)}


def test_rst_rules_are_not_run_on_a_connection_without_rst(monkeypatch):
    config = load_config(None)
    catalogue = load_catalogue(config.extra_rule_dirs)
    rst_rules = [rule for rule, needs in checks.NEEDS.items() if needs & RST]
    ran: list[str] = []

    def spy(rule):
        original = checks.CHECKS[rule]
        return lambda ctx: ran.append(rule) or original(ctx)

    for rule in rst_rules:
        monkeypatch.setitem(checks.CHECKS, rule, spy(rule))
    monkeypatch.setattr(checks, "_last_plan", None)
    _run(_graceful(), config, catalogue)
    assert ran == []
    _run(_aborted(), config, catalogue)  # SYN and RST, no FIN: the RST rules that need no FIN run
    assert sorted(ran) == [
        "abortive-close",
        "connection-refused",
        "data-after-rst",
        "rst-out-of-window",
        "time-wait-assassination",
    ]
