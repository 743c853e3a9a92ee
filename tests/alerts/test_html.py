"""Alerts as Telegram HTML: golden renderings, hostile post text, the length cut, the digest, properties."""

from __future__ import annotations

import re
import unicodedata
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telethon.extensions import html as telethon_html
from telethon.helpers import add_surrogate, del_surrogate
from telethon.tl.types import MessageEntityBlockquote, MessageEntityBold, MessageEntityTextUrl

from bot.alerts.format import merge_spans
from bot.alerts.html import (
    LIMIT,
    MAX_ENTITIES,
    MAX_SOURCES,
    render_html,
    render_html_digest,
    render_html_sources,
    visible_length,
)

TZ = ZoneInfo("Europe/Kyiv")
OWN_DATE = "2024-03-12T03:04:00+00:00"
TEXT = "Ракетна небезпека! Балістика з півночі, всі в укриття."
OWN = {
    "channel_id": 1902000001,
    "channel_title": "Повітряні Сили",
    "message_id": 4101,
    "link": "https://t.me/kpszsu/4101",
}


def alert(**fields: Any) -> dict[str, Any]:
    """A missile alert as `build_alert` makes it, with `delayed_s` as the dispatcher adds it."""
    return {
        "id": "9f2c0a4e1b7d3c5a6e8f",
        "created_at": "2024-03-12T03:04:05.000+00:00",
        "category": "missile",
        "severity": "critical",
        "all_clear": False,
        "rules": ["missile"],
        "channel_id": 1902000001,
        "channel_title": "Повітряні Сили",
        "channel_username": "kpszsu",
        "message_id": 4101,
        "link": "https://t.me/kpszsu/4101",
        "date": OWN_DATE,
        "edited": False,
        "text": TEXT,
        "matches": [{"start": 0, "end": 17}, {"start": 19, "end": 28}],
        "media": [],
        "forward_from": None,
        "sources": [OWN],
        "clears": None,
        "late_s": None,
        "delayed_s": 0,
        **fields,
    }


def spans(*pairs: tuple[int, int]) -> list[dict[str, Any]]:
    return [{"start": s, "end": e} for s, e in pairs]


class _Tags(HTMLParser):
    """Every tag opened is closed, in order, and only tags Telegram knows are used."""

    allowed = frozenset({"b", "i", "u", "s", "code", "pre", "a", "blockquote", "tg-spoiler"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in self.allowed, tag
        assert tag not in self.stack, f"nested <{tag}>"
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack, f"</{tag}> without <{tag}>"
        assert self.stack.pop() == tag


def check_wellformed(html: str) -> str:
    """Tags balanced, entities complete, Telethon's parse stable and under the limits; the visible text."""
    tags = _Tags()
    tags.feed(html)
    tags.close()
    assert tags.stack == []
    assert not re.search(r"&(?!(?:amp|lt|gt|quot|#x27);)", html), "a bare or broken entity"
    text, entities = telethon_html.parse(html)
    assert telethon_html.parse(telethon_html.unparse(text, entities)) == (text, entities)
    assert len(entities) <= MAX_ENTITIES
    assert visible_length(html) == len(text.encode("utf-16-le")) // 2 <= LIMIT
    return str(text)


def quoted(html: str) -> tuple[str, list[tuple[int, int]]]:
    """The visible post text (the blockquote) and its bold ranges, in characters."""
    text, entities = telethon_html.parse(html)
    wide = add_surrogate(text)
    (quote,) = [e for e in entities if isinstance(e, MessageEntityBlockquote)]
    inside = wide[quote.offset : quote.offset + quote.length]

    def chars(unit: int) -> int:
        return len(del_surrogate(inside[:unit]))

    bolds = [
        (chars(e.offset - quote.offset), chars(e.offset - quote.offset + e.length))
        for e in entities
        if isinstance(e, MessageEntityBold) and quote.offset <= e.offset < quote.offset + quote.length
    ]
    return str(del_surrogate(inside)), bolds


def bold_texts(html: str) -> list[str]:
    shown, bolds = quoted(html)
    return [shown[s:e] for s, e in bolds]


# Golden renderings


def test_missile_with_two_matches_and_a_photo() -> None:
    photo = {"kind": "photo", "mime_type": "image/jpeg", "size": 81234, "duration": None}
    assert render_html(alert(media=[photo]), TZ) == (
        "🚀 <b>MISSILE</b> · 🔴 critical\n"
        '<a href="https://t.me/kpszsu/4101">Повітряні Сили</a> · 2024-03-12 05:04 EET\n'
        "<blockquote><b>Ракетна небезпека</b>! <b>Балістика</b> з півночі, всі в укриття.</blockquote>\n"
        "📎 photo\n"
        '<a href="https://t.me/kpszsu/4101">Open post</a>'
    )


def test_all_clear_names_the_alarm_it_ends() -> None:
    clear = alert(
        category="all_clear",
        severity="low",
        all_clear=True,
        message_id=4107,
        link="https://t.me/kpszsu/4107",
        date="2024-03-12T03:40:00+00:00",
        text="Відбій ракетної небезпеки.",
        matches=spans((0, 5)),
        clears={
            "id": "9f2c0a4e1b7d3c5a6e8f",
            "category": "missile",
            "date": "2024-03-12T03:04:00+00:00",
            "message_id": 4101,
        },
    )
    assert render_html(clear, TZ) == (
        "✅ <b>ALL CLEAR</b>\n"
        '<a href="https://t.me/kpszsu/4107">Повітряні Сили</a> · 2024-03-12 05:40 EET\n'
        'Ends the <a href="https://t.me/kpszsu/4101">🚀 MISSILE</a> alert of 2024-03-12 05:04 EET\n'
        "<blockquote><b>Відбі</b>й ракетної небезпеки.</blockquote>\n"
        '<a href="https://t.me/kpszsu/4107">Open post</a>'
    )


def test_three_sources_and_a_forward() -> None:
    others = [
        {"channel_id": 2, "channel_title": "Odesa <Live> & Co", "message_id": 6, "link": "https://t.me/odesa/6"},
        {"channel_id": 3, "channel_title": "Закритий канал", "message_id": 7, "link": "https://t.me/c/3/7"},
    ]
    uav = alert(
        category="uav",
        severity="high",
        text="Шахеди на Київ",
        matches=spans((0, 6)),
        forward_from="Monitor UA",
        sources=[OWN, *others],
    )
    assert render_html(uav, TZ) == (
        "🛩 <b>UAV</b> · 🟠 high\n"
        '<a href="https://t.me/kpszsu/4101">Повітряні Сили</a> · 2024-03-12 05:04 EET\n'
        "↪️ Forwarded from Monitor UA\n"
        "<blockquote><b>Шахеди</b> на Київ</blockquote>\n"
        '🔁 Also in: <a href="https://t.me/odesa/6">Odesa &lt;Live&gt; &amp; Co</a>, '
        '<a href="https://t.me/c/3/7">Закритий канал</a>\n'
        '<a href="https://t.me/kpszsu/4101">Open post</a>'
    )


def test_late_delayed_edited_private_channel_with_tags() -> None:
    late = alert(
        late_s=3725,
        delayed_s=600,
        edited=True,
        channel_username=None,
        link="https://t.me/c/1902000001/4101",
        channel_tags=["kyiv", "south-east"],
        media=[{"kind": "photo"}, {"kind": "photo"}, {"kind": "video", "duration": 35}],
    )
    assert render_html(late, TZ) == (
        "🚀 <b>MISSILE</b> · 🔴 critical\n"
        '<a href="https://t.me/c/1902000001/4101">Повітряні Сили</a> · 2024-03-12 05:04 EET'
        " · #kyiv #south_east (edited)\n"
        "<blockquote><b>Ракетна небезпека</b>! <b>Балістика</b> з півночі, всі в укриття.</blockquote>\n"
        "📎 2 photos, video 0:35\n"
        "🕓 read 1 h 02 min after posting (catch-up)\n"
        "⏳ delivered 10 min late\n"
        '<a href="https://t.me/c/1902000001/4101">Open post</a>'
    )


def test_custom_category_unknown_severity_no_link() -> None:
    odd = alert(category="chem_threat", severity="urgent", link=None, text="хімічна загроза", matches=spans((0, 7)))
    assert render_html(odd, TZ) == (
        "⚠️ <b>CHEM THREAT</b> · urgent\n"
        "Повітряні Сили · 2024-03-12 05:04 EET\n"
        "<blockquote><b>хімічна</b> загроза</blockquote>"
    )


def test_delays_under_a_minute_are_not_mentioned() -> None:
    assert "delivered" not in render_html(alert(delayed_s=59), TZ)
    assert "delivered 1 min late" in render_html(alert(delayed_s=60), TZ)


def test_sources_edit_is_the_alert_rendered_again() -> None:
    more = alert(sources=[OWN, {"channel_id": 2, "channel_title": "B", "message_id": 1, "link": "https://t.me/b/1"}])
    assert render_html_sources(more, TZ) == render_html(more, TZ)
    assert 'Also in: <a href="https://t.me/b/1">B</a>' in render_html_sources(more, TZ)


def test_many_sources_are_counted_past_the_first_ten() -> None:
    others = [
        {"channel_id": i, "channel_title": f"C{i}", "message_id": 1, "link": f"https://t.me/c{i}/1"} for i in range(25)
    ]
    html = render_html(alert(sources=[OWN, *others]), TZ)
    assert html.count('<a href="https://t.me/c') == MAX_SOURCES
    assert f"C{MAX_SOURCES - 1}</a> and {25 - MAX_SOURCES} more\n" in html
    check_wellformed(html)


# Hostile text


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script> ракета",
        "</b></blockquote></a> ракета <b>",
        "Tom & Jerry &amp; &lt; &#x27; ракета",
        '<a href="javascript:alert(1)">тут</a> ракета',
        "\"quoted\" and 'single' ракета",
    ],
)
def test_post_text_cannot_inject_html(text: str) -> None:
    at = text.index("ракета")
    html = render_html(alert(text=text, matches=spans((at, at + 6))), TZ)
    visible = check_wellformed(html)
    assert text in visible
    assert bold_texts(html) == ["ракета"]
    _, entities = telethon_html.parse(html)
    assert {e.url for e in entities if isinstance(e, MessageEntityTextUrl)} == {"https://t.me/kpszsu/4101"}


def test_titles_and_names_are_escaped_and_unsafe_links_dropped() -> None:
    hostile = alert(
        channel_title='<b>"Fake"</b>',
        forward_from="<i>x</i> & y",
        link="javascript:alert(1)",
        sources=[OWN, {"channel_id": 2, "channel_title": "B", "message_id": 1, "link": 'https://t.me/b/1"><b>'}],
    )
    html = render_html(hostile, TZ)
    visible = check_wellformed(html)
    assert '<b>"Fake"</b>' in visible
    assert "Forwarded from <i>x</i> & y" in visible
    assert "javascript" not in html
    assert "Open post" not in html
    assert html.endswith("🔁 Also in: B")


def test_control_characters_are_removed_and_matches_still_land() -> None:
    text = "\x00\x07Ракетна\x1b небезпека\r\n\tБалістика\x7f\u200f"
    html = render_html(alert(text=text, matches=spans((2, 20), (23, 32))), TZ)
    shown, _ = quoted(html)
    assert shown == "Ракетна небезпека\n\tБалістика\u200f"
    assert bold_texts(html) == ["Ракетна небезпека", "Балістика"]


def test_right_to_left_text_survives_unchanged() -> None:
    arabic = "تحذير: صاروخ باليستي في الطريق إلى المدينة 🚀"
    hebrew = "אזעקה: ירי טילים לעבר הצפון, היכנסו למרחב מוגן"
    text = f"{arabic}\n{hebrew}"
    html = render_html(alert(text=text, matches=spans((7, 12), (len(arabic) + 1, len(arabic) + 6))), TZ)
    shown, _ = quoted(html)
    assert shown == text
    assert bold_texts(html) == ["صاروخ", "אזעקה"]


def test_arabic_vowel_marks_stay_on_their_letters_at_a_cut() -> None:
    word = "صَارُوخٌ"  # letters carrying harakat (combining marks), and no space to cut at
    text = word * 1200
    html = render_html(alert(text=text, matches=spans((0, len(word)))), TZ)
    core = quoted(html)[0].removesuffix("…")
    assert text.startswith(core)
    assert unicodedata.category(text[len(core)]) != "Mn"


# The cut


def _long(text: str, at: int, length: int, **fields: Any) -> tuple[str, str]:
    html = render_html(alert(text=text, matches=spans((at, at + length)), **fields), TZ)
    check_wellformed(html)
    return html, quoted(html)[0]


def test_long_post_with_the_match_at_the_start() -> None:
    text = "Ракетна небезпека " + " ".join(f"слово{i}" for i in range(900))
    html, shown = _long(text, 0, 17)
    assert bold_texts(html) == ["Ракетна небезпека"]
    assert shown.startswith("Ракетна")
    assert shown.endswith("…")
    assert text.startswith(shown.removesuffix("…"))
    assert text[len(shown) - 1] == " ", "cut at a word boundary"
    assert visible_length(html) > LIMIT - 200, "the post fills the message"


def test_long_post_with_the_match_at_the_end_still_shows_it() -> None:
    text = "x" * 4990 + " ракета"
    html, shown = _long(text, 4991, 6)
    assert shown.startswith("…")
    assert shown.endswith("ракета")
    assert bold_texts(html) == ["ракета"]


def test_long_post_with_the_match_in_the_middle_keeps_context_before_it() -> None:
    text = " ".join(["abcd"] * 600) + " ракета " + " ".join(["efgh"] * 600)
    at = text.index("ракета")
    _, shown = _long(text, at, 6)
    assert shown.startswith("…abcd")
    assert shown.endswith("efgh…")
    assert shown.index("ракета") > 500


def test_a_cut_inside_a_later_match_moves_before_it() -> None:
    filler = "y" * 300 + " "
    html = render_html(alert(text=filler * 30, matches=spans((0, 1))), TZ)
    end = len(quoted(html)[0]) - 1  # where the cut falls with nothing in the way
    text = filler * 30
    long_match = (end - 20, end + 300)
    html = render_html(alert(text=text, matches=spans((0, 1), long_match)), TZ)
    check_wellformed(html)
    shown, _ = quoted(html)
    assert shown.endswith("…")
    assert len(shown) - 1 <= long_match[0], "the cut moved before the match"
    assert bold_texts(html) == ["y"]


def test_a_first_match_longer_than_the_message_is_cut_inside_its_bold() -> None:
    text = "z" * 6000
    html = render_html(alert(text=text, matches=spans((100, 5900))), TZ)
    check_wellformed(html)
    (bold,) = bold_texts(html)
    assert set(bold) == {"z"}
    assert len(bold) > 3000


def test_cut_at_emoji_and_all_emoji_text() -> None:
    text = "🚀" * 5000
    html, shown = _long(text, 4990, 2)
    assert set(shown) == {"🚀", "…"}
    assert bold_texts(html) == ["🚀🚀"]
    assert visible_length(html) <= LIMIT


def test_emoji_sequences_are_not_split() -> None:
    family = "👨\u200d👩\u200d👧"
    flag = "🇺🇦"
    for unit in (family, flag, "👍🏽", "❤️"):
        text = unit * (9000 // len(unit.encode("utf-16-le")))
        _, shown = _long(text, 0, len(unit))
        core = shown.removesuffix("…")
        assert core == unit * (len(core) // len(unit)), unit


def test_entities_at_the_cut_point_stay_whole() -> None:
    text = "&" * 6000
    html, shown = _long(text, 2, 3)
    assert set(shown.removesuffix("…")) == {"&"}
    assert bold_texts(html) == ["&&&"]
    assert html.count("&amp;") == len(shown) - 1


def test_many_matches_do_not_crowd_out_the_links() -> None:
    text = " ".join(["ракета"] * 300)
    matches = spans(*((i * 7, i * 7 + 6) for i in range(300)))
    html = render_html(alert(text=text, matches=matches, sources=[OWN, OWN]), TZ)
    check_wellformed(html)
    _, entities = telethon_html.parse(html)
    assert len(entities) == MAX_ENTITIES
    assert isinstance(entities[-1], MessageEntityTextUrl), "Open post stays a link"


def test_overlapping_and_out_of_range_matches() -> None:
    html = render_html(alert(text="abc def ghi", matches=spans((0, 5), (2, 7), (8, 11), (9, 50), (-3, 0))), TZ)
    check_wellformed(html)
    assert bold_texts(html) == ["abc def", "ghi"]


def test_an_alert_without_text() -> None:
    html = render_html(alert(text="", matches=[], media=[{"kind": "video", "duration": 12}]), TZ)
    check_wellformed(html)
    assert "blockquote" not in html
    assert "📎 video 0:12" in html


# The digest


def late(i: int, **fields: Any) -> dict[str, Any]:
    return alert(message_id=i, link=f"https://t.me/kpszsu/{i}", late_s=600 + 60 * i, **fields)


def test_digest_golden() -> None:
    alerts = [
        late(1),
        late(2, category="all_clear", all_clear=True, text="Відбій <тривоги> & все", matches=[]),
        late(3, text="", matches=[], media=[{"kind": "photo"}], channel_title="Odesa"),
    ]
    assert render_html_digest(alerts, TZ) == (
        "🕓 <b>3 late alerts</b>, read while catching up, 11 min to 13 min after posting\n"
        "🚀 MISSILE · 2024-03-12 05:04 EET · Повітряні Сили: "
        '<a href="https://t.me/kpszsu/1">Ракетна небезпека! Балістика з півночі, всі в укриття.</a>\n'
        "✅ ALL CLEAR · 2024-03-12 05:04 EET · Повітряні Сили: "
        '<a href="https://t.me/kpszsu/2">Відбій &lt;тривоги&gt; &amp; все</a>\n'
        '🚀 MISSILE · 2024-03-12 05:04 EET · Odesa: <a href="https://t.me/kpszsu/3">photo</a>'
    )


def test_digest_text_is_cut_near_a_hundred_characters() -> None:
    text = " ".join(["слово"] * 100)
    html = render_html_digest([late(1, text=text), late(2, text=text)], TZ)
    check_wellformed(html)
    first = html.splitlines()[1]
    label = first[first.index('">') + 2 : first.index("</a>")]
    assert label.endswith("слово…")
    assert 80 <= len(label) <= 101


def test_digest_of_two_hundred_stays_under_the_limit() -> None:
    html = render_html_digest([late(i) for i in range(200)], TZ)
    check_wellformed(html)
    lines = html.splitlines()
    shown = len(lines) - 2
    assert lines[-1] == f"… and {200 - shown} more"
    assert shown > 20
    assert visible_length(html) > LIMIT - 200


def test_digest_of_short_posts_stays_under_the_entity_limit() -> None:
    html = render_html_digest([late(i, text="x", channel_title="K", date=None) for i in range(200)], TZ)
    check_wellformed(html)
    _, entities = telethon_html.parse(html)
    assert len(entities) == MAX_ENTITIES
    assert html.endswith(f"… and {200 - (MAX_ENTITIES - 1)} more")


# Properties

_TEXT_CHARS = st.characters(exclude_categories=("Cs", "Cc")) | st.sampled_from("\n\t  ")


@st.composite
def posts(draw: st.DrawFn, chars: st.SearchStrategy[str] = _TEXT_CHARS) -> tuple[str, list[tuple[int, int]]]:
    """Short or long text (a drawn piece repeated: hypothesis draws little text), up to 20 match spans in it."""
    piece = draw(st.text(chars, min_size=1, max_size=80))
    text = piece * draw(st.sampled_from([1, 3, 300, 1500])) + draw(st.text(chars))
    offsets = st.integers(0, len(text))
    pairs = draw(st.lists(st.tuples(offsets, offsets), max_size=20))
    return text, [(min(a, b), max(a, b)) for a, b in pairs if a != b]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(posts(st.characters(exclude_categories=("Cs",))), st.text(max_size=300), st.text(max_size=300))
def test_any_post_renders_within_the_limits(post: tuple[str, list[tuple[int, int]]], title: str, name: str) -> None:
    text, pairs = post
    html = render_html(alert(text=text, matches=spans(*pairs), channel_title=title, forward_from=name), TZ)
    check_wellformed(html)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(posts())
def test_every_match_shown_whole_is_bold(post: tuple[str, list[tuple[int, int]]]) -> None:
    text, pairs = post
    html = render_html(alert(text=text, matches=spans(*pairs)), TZ)
    check_wellformed(html)
    stripped = text.strip()
    if not stripped:
        return
    lead = len(text) - len(text.lstrip())
    moved = [(max(s - lead, 0), min(e - lead, len(stripped))) for s, e in pairs]
    merged = merge_spans([(s, e) for s, e in moved if s < e])
    shown, bolds = quoted(html)
    # Where the shown text sits in the post: ellipses mark the ends cut off, but a post may hold "…" itself.
    readings = {(shown, 0)}
    if shown.startswith("…"):
        readings.add((shown[1:], 1))
    if shown.endswith("…"):
        readings |= {(core[:-1], skip) for core, skip in readings if core.endswith("…")}
    for core, skip in readings:
        at = stripped.find(core)
        while at >= 0:
            expected = [
                (max(s, at) - at + skip, min(e, at + len(core)) - at + skip)
                for s, e in merged
                if s < at + len(core) and e > at
            ]
            if bolds == expected:
                return
            at = stripped.find(core, at + 1)
    pytest.fail(f"bold ranges {bolds} match no placement of the shown text")
