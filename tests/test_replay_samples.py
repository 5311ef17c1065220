"""Replay on every sample capture: each endpoint's final state and the close, as a person read them.

Runs capture -> connections -> replay only (no checks), with the capture's end as the TIME-WAIT
horizon and each new incarnation ending the previous one's TIME-WAIT, as the analysis does.
"""

import pytest

from pcapcheck.capture import open_capture
from pcapcheck.connections import rebuild
from pcapcheck.profiles import PROFILES
from pcapcheck.replay import end_time_wait_by_new_incarnation, replay
from pcapcheck.segments import Side
from tests.samples_support import all_samples

SAMPLES = [s for s in all_samples() if s.connections]


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_replay_reaches_the_final_states_and_close_a_person_read(sample):
    capture = open_capture(sample.capture_paths)
    connections = list(rebuild(capture.batches()))
    replays = {}
    for conn in connections:
        replays[conn.id] = replay(conn, PROFILES[sample.profile], capture_end=capture.info.last_time)
        if conn.previous_id in replays:
            end_time_wait_by_new_incarnation(replays[conn.previous_id], conn)
    got = {
        conn.id: (
            replays[conn.id].final_state[Side.CLIENT].value,
            replays[conn.id].final_state[Side.SERVER].value,
            replays[conn.id].close.value,
        )
        for conn in connections
    }
    want = {c.id: (c.client_final_state, c.server_final_state, c.close) for c in sample.connections}
    assert got == want
