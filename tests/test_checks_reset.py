"""Reset rules on hand-built replays."""

from __future__ import annotations

from pcapcheck.findings import Severity
from pcapcheck.replay.model import NOTE_RST_OUT_OF_WINDOW, Close, TimeWait
from pcapcheck.segments import Side
from tests.builders import Conversation
from tests.test_checks_support import HANDSHAKE_STATES, handshake, only


# abortive-close ------------------------------------------------------------------------


def test_rst_in_established_without_fin_is_an_abortive_close():
    conv = handshake().client("PA", length=100).server("A").client("R")  # RST is frame 6
    [f] = only("abortive-close", conv, HANDSHAKE_STATES + ["E E", "E E", "C C"], close=Close.ABORTIVE)
    assert (f.frame, f.endpoint, f.severity) == (6, Side.CLIENT, Severity.WARNING)


def test_rst_in_close_wait_without_fin_is_an_abortive_close():
    conv = handshake().client("FA").server("A").server("R")  # server had unread data: RST, frame 6
    [f] = only("abortive-close", conv, HANDSHAKE_STATES + ["FW1 CW", "FW2 CW", "C C"])
    assert (f.frame, f.endpoint) == (6, Side.SERVER) and "CLOSE-WAIT" in f.message


def test_refused_connection_is_not_an_abortive_close():
    conv = Conversation().client("S").server("RA", seq=0)
    assert only("abortive-close", conv, ["SS L", "C L"], close=Close.REFUSED) == []


def test_rst_after_own_fin_is_not_an_abortive_close():
    conv = handshake().client("FA").server("A").server("FA").client("R")
    assert only("abortive-close", conv, HANDSHAKE_STATES + ["FW1 CW", "FW2 CW", "TW LA", "C C"]) == []


def test_out_of_window_rst_is_not_an_abortive_close():
    conv = handshake().client("R", seq=99999)
    notes = {4: {NOTE_RST_OUT_OF_WINDOW}}
    assert only("abortive-close", conv, HANDSHAKE_STATES + ["E E"], notes=notes) == []


def test_rst_in_unknown_state_of_a_midstream_capture_is_not_an_abortive_close():
    conv = Conversation().client("PA", length=10).server("A").client("R")
    assert only("abortive-close", conv, ["U U", "U U", "C C"], initial="U U") == []


# data-after-rst ------------------------------------------------------------------------


def test_data_sent_seconds_after_the_peers_rst_is_data_after_rst():
    conv = handshake().server("R").client("PA", length=50, dt=2)  # frame 5
    [f] = only("data-after-rst", conv)
    assert (f.frame, f.endpoint, f.severity) == (5, Side.CLIENT, Severity.WARNING)


def test_data_crossing_the_rst_in_flight_is_not_data_after_rst():
    conv = handshake().server("R").client("PA", length=50, dt=0.01)
    assert only("data-after-rst", conv) == []


def test_data_after_an_out_of_window_rst_is_not_data_after_rst():
    conv = handshake().server("R", seq=999999).client("PA", length=50, dt=2)
    assert only("data-after-rst", conv, notes={4: {NOTE_RST_OUT_OF_WINDOW}}) == []


def test_data_after_own_rst_is_data_after_rst_at_once():
    conv = handshake().client("R").client("PA", length=5, dt=0.001)
    assert [f.frame for f in only("data-after-rst", conv)] == [5]


# rst-out-of-window ------------------------------------------------------------------------


def test_rst_the_replay_marks_out_of_window_is_reported():
    conv = handshake().server("R", seq=900000)
    [f] = only("rst-out-of-window", conv, HANDSHAKE_STATES + ["E E"], notes={4: {NOTE_RST_OUT_OF_WINDOW}})
    assert (f.frame, f.endpoint, f.severity) == (4, Side.SERVER, Severity.WARNING)


def test_rst_in_window_is_not_rst_out_of_window():
    conv = handshake().server("R")
    assert only("rst-out-of-window", conv, HANDSHAKE_STATES + ["C C"]) == []


def test_out_of_window_rst_in_a_midstream_capture_is_not_reported():
    conv = Conversation().client("PA", length=10).server("R", seq=900000)
    notes = {2: {NOTE_RST_OUT_OF_WINDOW}}
    assert only("rst-out-of-window", conv, ["E E", "E E"], initial="E E", notes=notes) == []


# time-wait-assassination ------------------------------------------------------------------------


def test_rst_reaching_an_endpoint_in_time_wait_is_an_assassination():
    conv = handshake().client("FA").server("A").server("FA").client("A").server("R", dt=1)  # RST frame 8
    states = HANDSHAKE_STATES + ["FW1 CW", "FW2 CW", "TW LA", "TW C", "C C"]
    [f] = only("time-wait-assassination", conv, states)
    assert (f.frame, f.endpoint, f.severity) == (8, Side.SERVER, Severity.INFO)


def test_replay_saying_time_wait_ended_by_rst_is_an_assassination():
    conv = handshake().client("FA").server("A").server("FA").client("A").server("R", dt=1)
    entered = conv.records[5]["time"]
    tw = TimeWait(Side.CLIENT, entered, 6, 60.0, conv.records[-1]["time"], "rst")
    assert [f.frame for f in only("time-wait-assassination", conv, time_wait=tw)] == [8]


def test_rst_to_an_endpoint_not_in_time_wait_is_not_an_assassination():
    conv = handshake().server("R")
    assert only("time-wait-assassination", conv, HANDSHAKE_STATES + ["C C"]) == []


def test_data_after_the_rst_answering_a_bad_synack_is_not_data_after_rst():
    # RFC 9293 §3.10.7.3: the opener resets the bad SYN-ACK, stays in SYN-SENT and tries again.
    conv = Conversation().client("S").server("SA", ack=4242).client("R", seq=4242)
    conv.client("S", seq=1000, dt=0.01).server("SA").client("A").client("PA", length=100, dt=1)
    states = ["SS SR", "SS SR", "SS SR", "SS SR", "SS SR", "E SR", "E E"]
    assert only("data-after-rst", conv, states) == []


def test_midstream_rst_from_a_side_that_sent_no_data_is_not_an_abortive_close():
    # The replay may assume ESTABLISHED; the sender could have sent its FIN before the capture.
    conv = Conversation().server("PA", length=10).client("A").client("R")
    assert only("abortive-close", conv, ["E E", "E E", "C C"], initial="E E") == []


def test_midstream_rst_from_a_side_that_sent_data_is_an_abortive_close():
    conv = Conversation().client("PA", length=10).server("A").client("R")
    assert [f.frame for f in only("abortive-close", conv, ["E E", "E E", "C C"], initial="E E")] == [3]
