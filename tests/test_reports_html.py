"""The HTML report: self-contained, escaped, with a ladder diagram per connection with findings."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from pcapcheck.reports import write_reports
from pcapcheck.reports.html_report import render_html
from pcapcheck.reports.ladder import build_ladder, kept_indices
from tests.test_reports_sample import long_transfer, rst_close, sample_result


class Elements(HTMLParser):
    """Every start tag with its attributes, to inspect the page as a browser would parse it."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def by_id(self, element_id):
        return next(attrs for tag, attrs in self.tags if attrs.get("id") == element_id)


def test_report_file_is_written(tmp_path):
    write_reports(sample_result(), html_path=tmp_path / "r.html")
    assert (tmp_path / "r.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_each_connection_with_findings_gets_an_inline_svg_ladder():
    page = Elements(render_html(sample_result()))
    svgs = [attrs for tag, attrs in page.tags if tag == "svg"]
    assert [s["aria-label"] for s in svgs] == [
        "Ladder diagram of connection 1",
        "Ladder diagram of connection 3",  # the clean IPv6 connection 2 gets none
        "Ladder diagram of connection 4",
    ]


def test_page_loads_nothing_from_the_network():
    html = render_html(sample_result(comments=["see https://example.invalid/x"]))
    page = Elements(html)
    for tag, attrs in page.tags:
        for name in ("src", "href", "xlink:href", "action", "data"):
            assert not re.match(r"\s*(https?:)?//", attrs.get(name) or ""), (tag, attrs)
        assert tag not in ("script", "link", "iframe", "img", "object", "embed")
    assert "@import" not in html and not re.search(r"url\(\s*['\"]?(https?:)?//", html)


def test_text_from_the_capture_is_escaped():
    html = render_html(
        sample_result(
            comments=["<script>alert('comment')</script>"],
            paths=["caps/<img src=x onerror=alert(1)>.pcap"],
        )
    )
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(&#39;comment&#39;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;.pcap" in html


def test_findings_table_links_to_the_highlighted_segment():
    html = render_html(sample_result())
    page = Elements(html)
    assert 'href="#c1-f8"' in html
    group = page.by_id("c1-f8")
    assert group is not None
    segment_line = re.search(r'<g id="c1-f8">.*?<line class="([^"]+)"', html, re.S).group(1)
    assert segment_line.split() == ["seg", "hl", "error"]
    # An unflagged segment of the same connection is drawn plainly.
    assert re.search(r'<g id="c1-f7">.*?<line class="([^"]+)"', html, re.S).group(1) == "seg"


def test_connection_anchors_exist_for_every_linked_connection():
    html = render_html(sample_result())
    ids = {attrs.get("id") for _tag, attrs in Elements(html).tags}
    for target in re.findall(r'href="#([^"]+)"', html):
        assert target in ids, target


def test_long_connection_is_elided_around_the_finding():
    html = render_html(sample_result())
    # 1207 segments: handshake+first data (4), 7 around the finding at frame 641, the close (5).
    assert "… 594 segments …" in html and "… 597 segments …" in html
    for frame in [40, 41, 42, 638, 641, 644, 1242, 1246]:
        assert f'id="c3-f{frame}"' in html
    for frame in [100, 637, 645, 1241]:
        assert f'id="c3-f{frame}"' not in html


def test_kept_indices_keep_handshake_close_and_context():
    steps = long_transfer(data_segments=50).steps  # 3 + 100 + 4 segments
    kept = kept_indices(steps, focus_frames=[steps[60].segment.frame], context=2)
    assert kept[:4] == [0, 1, 2, 3]
    assert [i for i in kept if 10 < i < 100] == [58, 59, 60, 61, 62]
    assert kept[-5:] == [102, 103, 104, 105, 106]


def test_small_gaps_are_not_elided():
    steps = long_transfer(data_segments=2).steps  # 3 + 4 + 4 = 11 segments; 4 and 5 are plain data
    assert kept_indices(steps, focus_frames=[], context=2) == list(range(11))


def test_lifelines_show_each_endpoints_states_in_order():
    conn = rst_close()
    ladder = build_ladder(str(conn.client), str(conn.server), conn.steps, conn.transitions, {conn.last_frame: ["r"]})
    client = [label.text for label in ladder.labels if label.x < ladder.client_x]
    server = [label.text for label in ladder.labels if label.x > ladder.server_x]
    assert client == ["CLOSED", "SYN-SENT", "ESTABLISHED", "FIN-WAIT-1", "CLOSED"]
    assert server == ["LISTEN", "SYN-RECEIVED", "ESTABLISHED", "CLOSE-WAIT", "LAST-ACK", "CLOSED"]
    client_bands = [b.state for b in ladder.bands if b.x == ladder.client_x]
    assert client_bands == ["CLOSED", "SYN-SENT", "ESTABLISHED", "FIN-WAIT-1", "CLOSED"]
    assert [a.highlight for a in ladder.arrows] == [False] * 7 + [True]


def test_the_error_of_a_stopped_run_is_shown():
    html = render_html(sample_result(error="run.pcap: record 1301 is corrupt"))
    assert "The run stopped early on bad input" in html and "record 1301 is corrupt" in html


def test_only_the_worst_connections_get_diagrams_when_there_are_many(monkeypatch):
    monkeypatch.setattr("pcapcheck.reports.html_report.MAX_LADDERS", 2)
    html = render_html(sample_result())
    labels = [attrs["aria-label"] for tag, attrs in Elements(html).tags if tag == "svg"]
    # The error (connection 1) and the warning (4) are drawn, the info note (3) is not.
    assert labels == ["Ladder diagram of connection 1", "Ladder diagram of connection 4"]
    assert html.count("Diagram omitted") == 1


def test_a_capture_without_tcp_says_so():
    result = sample_result()
    result.connections, result.findings = [], []
    html = render_html(result)
    assert "No TCP connections." in html and "No findings." in html and "<svg" not in html
