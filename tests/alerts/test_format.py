"""How an alert reads: media summaries, excerpt windows, times, the console rendering."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from bot.alerts.format import (
    category_mark,
    excerpt_window,
    local_time,
    media_summary,
    merge_spans,
    render_console,
)


@pytest.mark.parametrize(
    ("media", "expected"),
    [
        ([], ""),
        ([{"kind": "photo"}], "photo"),
        ([{"kind": "photo"}, {"kind": "photo"}, {"kind": "video", "duration": 35}], "2 photos, video 0:35"),
        ([{"kind": "video", "duration": 3725.4}], "video 1:02:05"),
        ([{"kind": "voice", "duration": 9}], "voice note 0:09"),
        ([{"kind": "video", "duration": 10}, {"kind": "video", "duration": 20}], "2 videos"),
        ([{"kind": "document"}, {"kind": "geo"}, {"kind": "poll"}], "document, location, poll"),
        ([{"kind": "hologram"}, {"kind": "hologram"}], "2 attachments"),
        ([{"kind": "video", "duration": None}], "video"),
    ],
)
def test_media_summary(media: list[dict[str, object]], expected: str) -> None:
    assert media_summary(media) == expected


def test_merge_spans() -> None:
    assert merge_spans([(10, 15), (0, 3), (2, 5), (15, 20)]) == [(0, 5), (10, 20)]
    assert merge_spans([]) == []


def test_excerpt_window_short_text_is_whole() -> None:
    assert excerpt_window("short text", [(6, 10)], 320) == (0, 10)


def test_excerpt_window_starts_a_little_before_the_first_match() -> None:
    text = "x" * 1000
    start, end = excerpt_window(text, [(500, 510), (900, 905)], 320)
    assert end - start == 320
    assert start < 500 < 510 <= end
    assert start == 500 - 320 // 4


def test_excerpt_window_near_the_end_and_without_matches() -> None:
    text = "x" * 1000
    assert excerpt_window(text, [(990, 995)], 320) == (680, 1000)
    assert excerpt_window(text, [], 320) == (0, 320)


def test_local_time() -> None:
    assert local_time("2024-03-12T03:04:00+00:00", ZoneInfo("Europe/Moscow")) == "2024-03-12 06:04 MSK"
    assert local_time(None, ZoneInfo("UTC")) == ""


def test_category_marks() -> None:
    assert category_mark("missile") == "🚀"
    assert category_mark("all_clear") == "✅"
    assert category_mark("something_new") == "⚠️"


ALERT = {
    "id": "abc",
    "category": "air_raid",
    "severity": "high",
    "all_clear": False,
    "rules": ["air-raid", "shelter-call"],
    "channel_id": 1902000001,
    "channel_title": "Вячеслав Гладков",
    "channel_username": "gladkov_demo",
    "message_id": 4101,
    "link": "https://t.me/gladkov_demo/4101",
    "date": "2024-03-12T03:04:00+00:00",
    "edited": True,
    "text": "🚨 Воздушная тревога!\nПройдите в укрытия.",
    "matches": [{"start": 2, "end": 19}, {"start": 21, "end": 39}],
    "media": [{"kind": "photo"}, {"kind": "photo"}],
    "forward_from": "Другой канал",
}


def test_render_console() -> None:
    rendered = render_console(ALERT, ZoneInfo("Europe/Moscow"))
    plain = rendered.plain
    assert plain.startswith("🚨 AIR RAID · high · 2024-03-12 06:04 MSK · Вячеслав Гладков @gladkov_demo (edited)")
    assert "\n  🚨 Воздушная тревога!\n  Пройдите в укрытия." in plain
    assert "https://t.me/gladkov_demo/4101" in plain
    assert "forwarded from Другой канал" in plain
    assert "2 photos" in plain
    assert "rules: air-raid, shelter-call" in plain
    highlighted = [plain[s.start : s.end] for s in rendered.spans if "reverse" in str(s.style)]
    assert highlighted == ["Воздушная тревога", "Пройдите в укрытия"]


def test_render_console_minimal_alert() -> None:
    alert = {"category": "all_clear", "severity": "info", "all_clear": True, "channel_id": 5, "text": "Отбой"}
    plain = render_console(alert, ZoneInfo("UTC")).plain
    assert plain.startswith("✅ ALL CLEAR · info")
    assert " · 5" in plain
    assert "Отбой" in plain


def test_render_console_long_text_is_an_excerpt() -> None:
    text = "слово " * 200 + "ТРЕВОГА " + "слово " * 200
    start = text.index("ТРЕВОГА")
    alert = {**ALERT, "text": text, "matches": [{"start": start, "end": start + 7}]}
    plain = render_console(alert, ZoneInfo("UTC")).plain
    assert "…" in plain
    assert "ТРЕВОГА" in plain
    assert len(plain) < len(text)
