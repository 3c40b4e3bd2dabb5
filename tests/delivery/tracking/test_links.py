"""Rewriting rendered HTML: which links are tracked, how they are numbered, the open pixel."""

import re
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from uuid import UUID

import mjml
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from delivery.tracking.links import track_html
from delivery.tracking.tokens import MAX_LINK, MAX_URL_BYTES, Kind, Tokens, Tracked

WORKSPACE = UUID("0b9f6a5e-1a2b-4c3d-8e9f-0123456789ab")
DELIVERY = UUID("c3d4e5f6-0718-4293-a4b5-c6d7e8f90a1b")
AT = datetime(2025, 3, 14, 15, 9, 26, tzinfo=UTC)
BASE = "https://t.example.com"
TOKENS = Tokens("links-test-secret", lifetime=timedelta(days=30))
UNSUBSCRIBE = "https://app.example.com/u?w=1&d=2"
PREFERENCES = "https://app.example.com/p?w=1&d=2"
PIXEL = re.compile(
    r'<img src="https://t\.example\.com/t/o/([A-Za-z0-9_-]+)" width="1" height="1" alt="" '
    r'style="display:block;height:1px;width:1px;border:0;margin:0;padding:0" />'
)


def track(
    html: str,
    *,
    clicks: bool = True,
    opens: bool = False,
    keep: Collection[str] = (UNSUBSCRIBE, PREFERENCES),
) -> str:
    return track_html(
        html,
        tokens=TOKENS,
        base_url=BASE + "/",
        workspace_id=WORKSPACE,
        delivery_id=DELIVERY,
        at=AT,
        clicks=clicks,
        opens=opens,
        keep=keep,
    )


def tracked(url: str, link: int) -> str:
    """The href that the link with this index and URL becomes."""
    return f"{BASE}/t/c/{TOKENS.click(WORKSPACE, DELIVERY, link, url, AT)}"


def clicks_in(html: str) -> list[Tracked]:
    found = re.findall(re.escape(BASE) + r"/t/c/([A-Za-z0-9_-]+)", html)
    return [TOKENS.read(token, Kind.CLICK, AT) for token in found]


# Which links are rewritten


def test_links_are_numbered_in_document_order() -> None:
    html = (
        '<p><a href="https://a.example/1">one</a> <a href="https://b.example/2">two</a></p>'
        '<a href="http://c.example/3">three</a>'
    )
    found = clicks_in(track(html))
    assert [(click.link, click.url) for click in found] == [
        (0, "https://a.example/1"),
        (1, "https://b.example/2"),
        (2, "http://c.example/3"),
    ]
    assert {(click.workspace_id, click.delivery_id, click.issued) for click in found} == {
        (WORKSPACE, DELIVERY, AT)
    }


def test_only_rewritten_links_are_counted() -> None:
    html = (
        '<a href="https://a.example/">a</a><a href="mailto:x@example.com">m</a>'
        f'<a href="{UNSUBSCRIBE.replace("&", "&amp;")}">u</a><a rel="notrack" href="https://n.example/">n</a>'
        '<a href="#top">t</a><a href="https://b.example/">b</a>'
    )
    assert [(click.link, click.url) for click in clicks_in(track(html))] == [
        (0, "https://a.example/"),
        (1, "https://b.example/"),
    ]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (
            '<a class="btn" href="https://a.example/x" style="color:red" target=_blank>',
            '<a class="btn" href="{}" style="color:red" target=_blank>',
        ),
        ("<a href='https://a.example/x' title=\"t\">", "<a href='{}' title=\"t\">"),
        ("<a href=https://a.example/x>", "<a href={}>"),
        ('<a id=x href = "https://a.example/x" >', '<a id=x href = "{}" >'),
        ('<A HREF="https://a.example/x">', '<A HREF="{}">'),
        (
            '<a\n   class="b"\n   href=\n  "https://a.example/x"\n   target="_blank"\n>',
            '<a\n   class="b"\n   href=\n  "{}"\n   target="_blank"\n>',
        ),
        ('<a/href="https://a.example/x">', '<a/href="{}">'),
        ('<a href="https://a.example/x"/>', '<a href="{}"/>'),
    ],
    ids=["double", "single", "unquoted", "spaced", "upper", "lines", "slash", "self-closing"],
)
def test_rewrite_keeps_attributes_and_quote_style(before: str, after: str) -> None:
    html = f"<p>{before}go</a></p>"
    assert track(html) == f"<p>{after.format(tracked('https://a.example/x', 0))}go</a></p>"


def test_href_inside_another_attribute_value_is_not_the_href() -> None:
    html = (
        '<a data-x="href=https://evil.example/1" title=\'href="https://evil.example/2"\' '
        'href="https://good.example/">x</a>'
        '<a data-x="href=https://evil.example/3">no href</a>'
        "<a data-y='a href=\"https://evil.example/4\"'>no href</a>"
    )
    out = track(html)
    assert [click.url for click in clicks_in(out)] == ["https://good.example/"]
    assert out.count("evil.example") == 4


def test_first_href_wins() -> None:
    out = track('<a href="https://first.example/" href="https://second.example/">x</a>')
    assert [click.url for click in clicks_in(out)] == ["https://first.example/"]


@pytest.mark.parametrize(
    "tag",
    [
        "<a>",
        '<a name="top">',
        "<a href>",
        '<a href="">',
        "<a href=''>",
        '<a href="mailto:someone@example.com?subject=Hi">',
        '<a href="MAILTO:someone@example.com">',
        '<a href="tel:+4930123456">',
        '<a href="sms:+4930123456">',
        '<a href="#top">',
        '<a href="/relative/path">',
        '<a href="relative.html">',
        '<a href="?q=1">',
        '<a href="//cdn.example.com/x">',
        '<a href="javascript:alert(1)">',
        '<a href="ftp://files.example.com/x">',
        '<a href="data:text/html,hi">',
        '<a href="https://">',
        '<a href="https:///path">',
        '<a href="https:\\\\evil.example">',
        '<a href="https://a.example/&#10;x">',
        '<a href="https://a.example/' + "x" * MAX_URL_BYTES + '">',
        '<abbr href="https://a.example/">',
        '<area href="https://a.example/">',
        '<address href="https://a.example/">',
        '<a\u00a0href="https://a.example/">',
    ],
)
def test_links_left_alone(tag: str) -> None:
    html = f"<p>{tag}x</a></p>"
    assert track(html) == html


def test_keep_list_is_matched_after_unescaping() -> None:
    html = (
        f'<a href="{UNSUBSCRIBE.replace("&", "&amp;")}">Unsubscribe</a>'
        f"<a href='{PREFERENCES}'>Preferences</a>"
        '<a href="https://app.example.com/u?w=1&amp;d=3">Someone else</a>'
    )
    out = track(html)
    assert out.startswith(html[: html.index('<a href="https://app.example.com/u?w=1&amp;d=3')])
    assert [click.url for click in clicks_in(out)] == ["https://app.example.com/u?w=1&d=3"]


def test_keep_list_is_only_what_is_given() -> None:
    html = f'<a href="{UNSUBSCRIBE.replace("&", "&amp;")}">Unsubscribe</a>'
    assert [click.url for click in clicks_in(track(html, keep=[]))] == [UNSUBSCRIBE]


@pytest.mark.parametrize(
    ("href", "url"),
    [
        ("https://a.example/?x=1&amp;y=2&amp;z=3", "https://a.example/?x=1&y=2&z=3"),
        ("https://a.example/?x=1&#38;y=2&#x26;z=&quot;3&quot;", 'https://a.example/?x=1&y=2&z="3"'),
        ("https://a.example/?x=&amp;lt;", "https://a.example/?x=&lt;"),
        ("https://a.example/?x=1&y=2", "https://a.example/?x=1&y=2"),
        ("https://a.example/caf&eacute;", "https://a.example/café"),
        ("\n   https://a.example/x \t", "https://a.example/x"),
        ("&#32;https://a.example/x", "https://a.example/x"),
        ("https://例え.jp/パス?q=ü", "https://例え.jp/パス?q=ü"),
    ],
)
def test_token_carries_the_unescaped_url(href: str, url: str) -> None:
    out = track(f'<a href="{href}">x</a>')
    assert [click.url for click in clicks_in(out)] == [url]
    assert href not in out


def test_too_many_links_stop_being_tracked_without_error() -> None:
    html = '<a href="https://a.example/">x</a>' * (MAX_LINK + 2)
    out = track(html)
    assert out.count(BASE) == MAX_LINK + 1
    assert out.endswith('<a href="https://a.example/">x</a>')
    assert out.count('<a href="https://a.example/">') == 1


def test_links_are_left_alone_without_click_tracking() -> None:
    html = '<a href="https://a.example/">a</a><a href="https://b.example/">b</a>'
    assert track(html, clicks=False) == html


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        track_html(
            "<p>x</p>",
            tokens=TOKENS,
            base_url=BASE,
            workspace_id=WORKSPACE,
            delivery_id=DELIVERY,
            at=AT.replace(tzinfo=None),
            clicks=True,
            opens=False,
            keep=(),
        )


# Opt-outs


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ('<a data-cdp-notrack href="https://a.example/">', '<a href="https://a.example/">'),
        ('<a href="https://a.example/" data-cdp-notrack>', '<a href="https://a.example/">'),
        ('<a href="https://a.example/" data-cdp-notrack="">', '<a href="https://a.example/">'),
        (
            "<a href='https://a.example/' data-cdp-notrack='yes' id=x>",
            "<a href='https://a.example/' id=x>",
        ),
        ('<a DATA-CDP-NOTRACK=1 HREF="https://a.example/">', '<a HREF="https://a.example/">'),
        (
            '<a class="x"\n   data-cdp-notrack\n   href="https://a.example/">',
            '<a class="x"\n   href="https://a.example/">',
        ),
        ("<a data-cdp-notrack>", "<a>"),
    ],
)
def test_data_attribute_opts_out_and_is_removed(before: str, after: str) -> None:
    assert track(f"<p>{before}x</a></p>") == f"<p>{after}x</a></p>"


def test_data_attribute_is_removed_without_click_tracking() -> None:
    html = '<a data-cdp-notrack href="https://a.example/">x</a>'
    assert track(html, clicks=False) == '<a href="https://a.example/">x</a>'


@pytest.mark.parametrize(
    "tag",
    [
        '<a rel="notrack" href="https://a.example/">',
        "<a href='https://a.example/' rel='NoTrack'>",
        '<a href="https://a.example/" rel=notrack>',
        '<a href="https://a.example/" rel="nofollow  notrack\tnoopener">',
        '<a href="https://a.example/" rel="nofollow" rel="notrack">',
        '<a href="https://a.example/" rel="notrack" rel="nofollow">',
        '<a href="https://a.example/" rel="&#110;otrack">',
    ],
)
def test_rel_notrack_opts_out(tag: str) -> None:
    html = f"<p>{tag}x</a></p>"
    assert track(html) == html


@pytest.mark.parametrize(
    "rel", ["notracking", "no-track", "nofollow", "", 'x" data-notrack="notrack']
)
def test_other_rel_values_are_tracked(rel: str) -> None:
    out = track(f'<a rel="{rel}" href="https://a.example/">x</a>')
    assert [click.url for click in clicks_in(out)] == ["https://a.example/"]


# The open pixel


def test_pixel_goes_before_the_last_body_end_tag() -> None:
    html = "<html><body><p>Hi</p><!-- </body> --></body></html>"
    out = track(html, opens=True)
    pixel = PIXEL.search(out)
    assert pixel is not None
    assert out == html.replace("</body></html>", pixel.group(0) + "</body></html>")


@pytest.mark.parametrize(
    "end", ["</BODY>", "</Body >", "</body\n>", "</bOdY>"], ids=["upper", "spaced", "line", "mixed"]
)
def test_pixel_finds_the_body_end_tag_in_any_case(end: str) -> None:
    html = f"<html><body><p>Hi</p></body><p>late</p>{end}</html>"
    out = track(html, opens=True)
    assert re.fullmatch(
        re.escape(html[: -len(end + "</html>")]) + PIXEL.pattern + re.escape(end + "</html>"), out
    )


def test_pixel_ignores_other_tags_starting_with_body() -> None:
    html = "<body><p>Hi</p></body><bodyguard></bodyguard>"
    out = track(html, opens=True)
    assert out.endswith("</p>" + PIXEL.search(out).group(0) + "</body><bodyguard></bodyguard>")  # type: ignore[union-attr]


def test_pixel_is_appended_without_a_body_end_tag() -> None:
    html = "<p>fragment</p></bodyguard>"
    out = track(html, opens=True)
    assert out.startswith(html)
    assert PIXEL.fullmatch(out[len(html) :])


def test_pixel_carries_an_open_token() -> None:
    match = PIXEL.search(track("<body></body>", opens=True))
    assert match is not None
    assert TOKENS.read(match.group(1), Kind.OPEN, AT) == Tracked(
        kind=Kind.OPEN, workspace_id=WORKSPACE, delivery_id=DELIVERY, link=0, url=None, issued=AT
    )


def test_exactly_one_pixel_and_none_without_open_tracking() -> None:
    html = '<body><a href="https://a.example/">x</a></body>'
    assert len(PIXEL.findall(track(html, opens=True))) == 1
    assert "/t/o/" not in track(html, opens=False)


def test_opens_without_clicks_leaves_links_alone() -> None:
    html = '<body><a href="https://a.example/">x</a></body>'
    out = track(html, clicks=False, opens=True)
    assert out.startswith('<body><a href="https://a.example/">x</a><img src=')
    assert len(PIXEL.findall(out)) == 1


# Odd HTML


@pytest.mark.parametrize(
    "html",
    [
        "",
        "<a",
        "<a ",
        "<a href=",
        '<a href="https://a.example/',
        "<a href='https://a.example/\"",
        '<a "">',
        "<a =x>",
        "<a ==>",
        "<a href=>",
        '<a href="https://a.example/" ' + " " * 10_000,
        "<a " + "x=" * 5_000,
        "<a " + '"' * 5_000,
        "<a href='" + "<" * 5_000,
        "<<<a>>>",
        "</a></a><a/>",
        '<a href="https://a.example/\ud800">',
        "\x00<a href=\x00>",
    ],
)
def test_odd_html_does_not_raise(html: str) -> None:
    assert isinstance(track(html, opens=True), str)


def test_unterminated_tag_is_left_alone() -> None:
    html = '<p>x</p><a href="https://a.example/" class="b"'
    assert track(html) == html


FRAGMENTS = st.sampled_from(
    [
        "<a", "<A", " ", "\n", "href", "HREF", "=", '"', "'", ">", "/", "<", "&amp;", "&",
        "https://a.example/", "http://b.example/?x=1", "mailto:x", "#", "rel", "notrack",
        "data-cdp-notrack", "data-x", "</a>", "<body>", "</body>", "</BODY", "text", "é", "<!--",
        "-->",
    ]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(FRAGMENTS, max_size=40).map("".join))
def test_any_tag_soup_does_not_raise_and_untracked_html_is_unchanged(html: str) -> None:
    out = track(html, opens=True)
    assert len(PIXEL.findall(out)) >= 1
    for click in clicks_in(out):
        assert click.url in {"https://a.example/", "http://b.example/?x=1"}
    if "data-cdp-notrack" not in html.lower():
        assert track(html, clicks=False) == html


# Opt-outs through real MJML compilation


def _mjml(body: str) -> str:
    return mjml.mjml2html(
        f"<mjml><mj-body><mj-section><mj-column>{body}</mj-column></mj-section></mj-body></mjml>"
    )


def test_mj_button_rel_notrack_survives_compilation() -> None:
    html = _mjml(
        '<mj-button href="https://a.example/kept" rel="notrack">Kept</mj-button>'
        '<mj-button href="https://a.example/tracked">Tracked</mj-button>'
    )
    out = track(html)
    assert 'href="https://a.example/kept"' in out
    assert [click.url for click in clicks_in(out)] == ["https://a.example/tracked"]


def test_mj_image_rel_notrack_survives_compilation() -> None:
    html = _mjml(
        '<mj-image src="https://cdn.example/a.png" href="https://a.example/kept" rel="notrack" />'
        '<mj-image src="https://cdn.example/b.png" href="https://a.example/tracked" />'
    )
    out = track(html)
    assert 'href="https://a.example/kept"' in out
    assert [click.url for click in clicks_in(out)] == ["https://a.example/tracked"]


@pytest.mark.parametrize(
    "component",
    [
        (
            '<mj-navbar><mj-navbar-link href="https://a.example/kept" rel="notrack">Nav'
            "</mj-navbar-link></mj-navbar>"
        ),
        (
            '<mj-social><mj-social-element name="web" href="https://a.example/kept" rel="notrack">'
            "Web</mj-social-element></mj-social>"
        ),
    ],
    ids=["navbar-link", "social-element"],
)
def test_other_components_keep_rel_notrack(component: str) -> None:
    html = _mjml(f'{component}<mj-button href="https://a.example/tracked">Go</mj-button>')
    out = track(html)
    assert 'href="https://a.example/kept"' in out
    assert [click.url for click in clicks_in(out)] == ["https://a.example/tracked"]


def test_raw_block_data_attribute_survives_compilation_and_is_removed() -> None:
    html = _mjml('<mj-raw><a data-cdp-notrack href="https://a.example/kept">Kept</a></mj-raw>')
    assert "data-cdp-notrack" in html
    out = track(html)
    assert '<a href="https://a.example/kept">Kept</a>' in out
    assert clicks_in(out) == []


def test_raw_link_data_attribute_survives_compilation_and_is_removed() -> None:
    html = _mjml(
        "<mj-text>"
        '<a data-cdp-notrack href="https://a.example/kept">Kept</a> '
        '<a href="https://a.example/tracked">Tracked</a>'
        "</mj-text>"
    )
    assert "data-cdp-notrack" in html
    out = track(html)
    assert '<a href="https://a.example/kept">Kept</a>' in out
    assert "data-cdp-notrack" not in out
    assert [click.url for click in clicks_in(out)] == ["https://a.example/tracked"]


def test_mjml_drops_the_data_attribute_from_its_components() -> None:
    # Why the docs point component authors to rel="notrack" instead.
    html = _mjml('<mj-button href="https://a.example/x" data-cdp-notrack>Go</mj-button>')
    assert "data-cdp-notrack" not in html
    assert [click.url for click in clicks_in(track(html))] == ["https://a.example/x"]


def test_compiled_mjml_gets_its_pixel_inside_the_body() -> None:
    html = _mjml('<mj-text><a href="https://a.example/">x</a></mj-text>')
    out = track(html, opens=True)
    assert re.search(PIXEL.pattern + r"\s*</body>\s*</html>\s*$", out)
