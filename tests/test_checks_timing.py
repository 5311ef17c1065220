"""TIME-WAIT reuse rules: the new incarnation's SYN compared with the previous incarnation's TIME-WAIT."""

from __future__ import annotations

from pcapcheck.config import Config
from pcapcheck.findings import Severity
from pcapcheck.replay.model import TimeWait
from pcapcheck.segments import Side
from tests.builders import Conversation
from tests.test_checks_support import last_time, replay_for, run_rule

T0 = 1_700_000_000.0
CLIENT_CLOSES = ["SS SR", "E SR", "E E", "FW1 CW", "FW2 CW", "FW2 LA", "TW C"]
SERVER_CLOSES = ["SS SR", "E SR", "E E", "CW FW1", "CW FW2", "LA FW2", "C TW"]


def old_incarnation(closer: str = "client", ts: bool = False):
    """Handshake and a graceful close started by ``closer``; the closer enters TIME-WAIT (frame 6/7)."""
    opt = (lambda v: {"ts": (v, v)}) if ts else (lambda v: {})
    conv = Conversation(client_isn=1000, server_isn=5000, start=T0)
    conv.client("S", **opt(100)).server("SA", **opt(900)).client("A", **opt(101))
    first, second = (conv.client, conv.server) if closer == "client" else (conv.server, conv.client)
    first("FA", **opt(102 if closer == "client" else 901))
    second("A", **opt(902 if closer == "client" else 103))
    second("FA", **opt(903 if closer == "client" else 104))
    first("A", **opt(105 if closer == "client" else 905))
    return conv, replay_for(conv, CLIENT_CLOSES if closer == "client" else SERVER_CLOSES, id=1)


def new_incarnation(after: float, client_isn: int, answer: bool = True, ts: int | None = None):
    conv = Conversation(client_isn=client_isn, server_isn=77000, start=T0 + after)
    conv.skip_frame(7)
    conv.client("S", **({"ts": (ts, 0)} if ts is not None else {}))  # frame 8
    if answer:
        conv.server("SA").client("A")
    return conv, replay_for(conv, id=2, incarnation=2)


def findings(rule, old, new, config=None):
    (_, previous), (conv, (conn, rep)) = old, new
    return run_rule(rule, conn, rep, previous=previous, capture_end=last_time(conv) + 10, config=config)


def test_client_reopening_its_time_wait_tuple_after_5_s_is_short_time_wait():
    old = old_incarnation("client")
    [f] = findings("short-time-wait", old, new_incarnation(5, client_isn=500))
    assert (f.frame, f.endpoint, f.severity) == (8, Side.CLIENT, Severity.ERROR)
    assert "frame 7" in f.message


def test_server_accepting_a_lower_isn_syn_in_time_wait_is_short_time_wait():
    old = old_incarnation("server")
    [f] = findings("short-time-wait", old, new_incarnation(5, client_isn=500))
    assert (f.frame, f.endpoint) == (8, Side.SERVER)


def test_server_accepting_a_higher_isn_syn_in_time_wait_is_time_wait_reuse():
    old = old_incarnation("server")
    new = new_incarnation(5, client_isn=900_000)
    assert findings("short-time-wait", old, new) == []
    [f] = findings("time-wait-reuse", old, new)
    assert (f.frame, f.endpoint, f.severity) == (8, Side.SERVER, Severity.INFO)
    assert "ISN" in f.message


def test_newer_timestamp_makes_time_wait_reuse_safe():
    old = old_incarnation("client", ts=True)
    new = new_incarnation(5, client_isn=500, ts=5000)
    assert findings("short-time-wait", old, new) == []
    assert [f.frame for f in findings("time-wait-reuse", old, new)] == [8]


def test_older_timestamp_is_short_time_wait():
    old = old_incarnation("client", ts=True)
    assert [f.frame for f in findings("short-time-wait", old, new_incarnation(5, client_isn=500, ts=50))] == [8]


def test_reuse_after_the_full_time_wait_is_neither():
    old = old_incarnation("client")
    new = new_incarnation(61, client_isn=500)  # linux TIME-WAIT is 60 s
    assert findings("short-time-wait", old, new) == []
    assert findings("time-wait-reuse", old, new) == []


def test_rfc9293_profile_demands_240_s():
    old = old_incarnation("client")
    new = new_incarnation(61, client_isn=500)
    assert [f.frame for f in findings("short-time-wait", old, new, Config(profile="rfc9293"))] == [8]


def test_time_wait_parameter_override_wins_over_the_profile():
    old = old_incarnation("client")
    config = Config(params={"short-time-wait": {"time_wait": 3}})
    assert findings("short-time-wait", old, new_incarnation(5, client_isn=500), config) == []


def test_syn_the_time_wait_server_does_not_answer_is_not_short_time_wait():
    old = old_incarnation("server")
    assert findings("short-time-wait", old, new_incarnation(5, client_isn=500, answer=False)) == []


def test_time_wait_assassinated_by_rst_is_not_short_time_wait():
    old_conv, (old_conn, old_rep) = old_incarnation("client")
    old_rep.time_wait = TimeWait(Side.CLIENT, last_time(old_conv), 7, 60.0, last_time(old_conv) + 1, "rst")
    assert findings("short-time-wait", (old_conv, (old_conn, old_rep)), new_incarnation(5, client_isn=500)) == []


def test_first_incarnation_has_no_time_wait_findings():
    conv, (conn, rep) = new_incarnation(5, client_isn=500)
    assert run_rule("short-time-wait", conn, rep, previous=None, capture_end=last_time(conv)) == []


def test_after_a_simultaneous_close_the_time_wait_holder_taking_part_is_named():
    # Both ends held TIME-WAIT.  The server, listed first, ignores the new SYN; the client sent it.
    old_conv, (old_conn, old_rep) = old_incarnation("client")
    t = last_time(old_conv)
    old_rep.time_waits = [TimeWait(side, t, 7, 60.0, None, "running") for side in (Side.SERVER, Side.CLIENT)]
    old_rep.time_wait = old_rep.time_waits[0]
    new = new_incarnation(5, client_isn=500, answer=False)
    found = findings("short-time-wait", (old_conv, (old_conn, old_rep)), new)
    assert [(f.endpoint, f.frame) for f in found] == [(Side.CLIENT, 8)]


class SnappedConversation(Conversation):
    """A conversation captured with a snap length that cut the TCP options of every segment."""

    def rows(self):
        batch = super().rows()
        batch["truncated"] = True
        return batch


def test_syn_whose_options_the_snap_length_cut_is_not_short_time_wait():
    # The old connection carried timestamps; the new SYN's options were cut (editcap -s 54): a
    # timestamp the capture did not keep is not a missing one.
    old = old_incarnation("client", ts=True)
    conv = SnappedConversation(client_isn=500, server_isn=77000, start=T0 + 5)
    conv.skip_frame(7)
    conv.client("S").server("SA").client("A")
    new = (conv, replay_for(conv, id=2, incarnation=2))
    assert findings("short-time-wait", old, new) == []
    [f] = findings("time-wait-reuse", old, new)
    assert (f.frame, f.severity, f.capture_quality) == (8, Severity.INFO, True)


def test_equal_timestamp_and_higher_isn_received_in_time_wait_is_time_wait_reuse():
    # RFC 6191 §2: the server in TIME-WAIT honours a SYN whose TSval equals the client's last one
    # (104) when its sequence number is higher than the old connection's.
    old = old_incarnation("server", ts=True)
    new = new_incarnation(5, client_isn=900_000, ts=104)
    assert findings("short-time-wait", old, new) == []
    [f] = findings("time-wait-reuse", old, new)
    assert "RFC 6191 §2" in f.message


def test_equal_timestamp_and_lower_isn_is_short_time_wait_saying_why():
    old = old_incarnation("server", ts=True)
    [f] = findings("short-time-wait", old, new_incarnation(5, client_isn=500, ts=104))
    assert "TSval 104 is equal to the old connection's last 104" in f.message
    assert "ISN 500 is not above" in f.message


def test_short_time_wait_message_names_the_older_timestamp():
    old = old_incarnation("client", ts=True)
    [f] = findings("short-time-wait", old, new_incarnation(5, client_isn=500, ts=50))
    assert "TSval 50 is older than the old connection's last 105" in f.message
    assert "higher ISN" not in f.message
