"""Replay: a TIME-WAIT that the next incarnation's SYN on the same 4-tuple cut short."""

from pcapcheck.profiles import PROFILES
from pcapcheck.replay import end_time_wait_by_new_incarnation, replay
from pcapcheck.replay.model import State
from pcapcheck.segments import Side
from tests.builders import Conversation

LINUX = PROFILES["linux"]


def closed_by_client(start: float = 1_700_000_000.0) -> Conversation:
    conv = Conversation(start=start).client("S").server("SA").client("A")
    return conv.client("FA").server("A").server("FA").client("A")


def test_new_syn_within_time_wait_ends_it_as_new_syn():
    old = replay(closed_by_client().connection(), LINUX)
    new = Conversation(start=1_700_000_002.0, client_isn=900_000).client("S").server("SA").client("A")
    assert end_time_wait_by_new_incarnation(old, new.connection(id=2, incarnation=2, previous_id=1)) is True
    assert old.final_state[Side.CLIENT] is State.CLOSED
    assert old.time_wait.ended_by == "new-syn"
    assert old.time_wait.ended_time == new.records[0]["time"]
    last = old.transitions[-1]
    assert (last.endpoint, last.from_state, last.to_state) == (Side.CLIENT, State.TIME_WAIT, State.CLOSED)


def test_new_syn_after_time_wait_expired_changes_nothing():
    conn = closed_by_client().connection()
    old = replay(conn, LINUX, capture_end=conn.end + LINUX.time_wait + 10)
    new = Conversation(start=conn.end + LINUX.time_wait + 5).client("S").connection(id=2, incarnation=2)
    assert end_time_wait_by_new_incarnation(old, new) is False
    assert old.time_wait.ended_by == "expired"


def test_expiry_later_than_the_new_syn_is_replaced_by_the_new_syn():
    conn = closed_by_client().connection()
    old = replay(conn, LINUX, capture_end=conn.end + LINUX.time_wait + 10)
    new = Conversation(start=conn.end + 3).client("S").connection(id=2, incarnation=2)
    assert end_time_wait_by_new_incarnation(old, new) is True
    causes = [t.cause for t in old.transitions if t.from_state is State.TIME_WAIT]
    assert causes == ["new incarnation's SYN on the same 4-tuple"]
