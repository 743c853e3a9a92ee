"""Replay source: tgmon JSONL records, Telegram Desktop exports, bad input, cursors and resume."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.errors import UserError
from bot.models import Channel, Deletion, Edit, Entity, ForwardOrigin, MediaKind, Post
from bot.sources import SourceItem
from bot.sources.replay import (
    BadRecord,
    ReplaySource,
    detect_format,
    export_message_to_post,
    record_to_event,
    resolve_inputs,
    text_and_entities,
)
from tests.helpers import no_cursors, write_jsonl


async def collect(source: ReplaySource, cursors: Any = no_cursors) -> list[SourceItem]:
    return [item async for item in source.items(cursors)]


def events(items: list[SourceItem]) -> list[Any]:
    return [item.event for item in items if item.event is not None]


def rec(message_id: int | None, text: str = "text", **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"timestamp": "2024-03-12T03:04:00+00:00", "channel_id": 1902000001, "text": text}
    if message_id is not None:
        record["message_id"] = message_id
    record.update(fields)
    return record


# --- record_to_event ------------------------------------------------------------------------------


def test_full_post_record() -> None:
    event = record_to_event(
        {
            "timestamp": "2024-03-12T03:04:00+00:00",
            "channel_id": 1902000001,
            "channel_title": "Вячеслав Гладков",
            "username": "gladkov_demo",
            "message_id": 4101,
            "text": "Ракетная опасность",
            "entities": [{"type": "bold", "offset": 0, "length": 8}],
            "views": 111027,
            "forwards": 297,
            "replies": None,
            "reply_to": 4100,
            "forward_from": {"channel_id": 77, "message_id": 5, "name": "Other", "date": "2024-03-11T10:00:00Z"},
            "grouped_id": 13,
            "author": "press office",
            "media": {"kind": "video", "mime_type": "video/mp4", "size": 100, "duration": 47, "width": 1280},
        }
    )
    assert isinstance(event, Post)
    assert event.channel == Channel(1902000001, "Вячеслав Гладков", "gladkov_demo")
    assert event.message_id == 4101
    assert event.date == datetime(2024, 3, 12, 3, 4, tzinfo=UTC)
    assert event.entities == (Entity("bold", 0, 8),)
    assert (event.views, event.forwards, event.replies, event.reply_to) == (111027, 297, None, 4100)
    assert event.forward == ForwardOrigin(77, 5, "Other", datetime(2024, 3, 11, 10, 0, tzinfo=UTC))
    assert event.grouped_id == 13
    assert event.author == "press office"
    (media,) = event.media
    assert media.kind is MediaKind.VIDEO
    assert (media.mime_type, media.size, media.duration, media.width, media.height) == (
        "video/mp4",
        100,
        47.0,
        1280,
        None,
    )


def test_media_list_and_kind_string() -> None:
    event = record_to_event(rec(1, media=[{"kind": "photo"}, "photo", {"kind": "voice", "duration": 3.5}]))
    assert isinstance(event, Post)
    assert [m.kind for m in event.media] == [MediaKind.PHOTO, MediaKind.PHOTO, MediaKind.VOICE]
    assert event.media[2].duration == 3.5


def test_forward_from_as_string() -> None:
    event = record_to_event(rec(1, forward_from="Некий канал"))
    assert isinstance(event, Post)
    assert event.forward == ForwardOrigin(name="Некий канал")


@pytest.mark.parametrize("given", [-1001902000001, "-1001902000001", 1902000001, "1902000001"])
def test_bot_api_channel_ids_are_stripped(given: Any) -> None:
    event = record_to_event(rec(1, channel_id=given))
    assert isinstance(event, Post)
    assert event.channel.id == 1902000001


@pytest.mark.parametrize("given", [0, -5, -100])
def test_bad_channel_ids(given: int) -> None:
    with pytest.raises(BadRecord, match="channel_id"):
        record_to_event(rec(1, channel_id=given))


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2024-03-12T03:04:00", datetime(2024, 3, 12, 3, 4, tzinfo=UTC)),
        ("2024-03-12T03:04:00Z", datetime(2024, 3, 12, 3, 4, tzinfo=UTC)),
        ("2024-03-12T06:04:00+03:00", datetime(2024, 3, 12, 3, 4, tzinfo=UTC)),
        (1710212640, datetime(2024, 3, 12, 3, 4, tzinfo=UTC)),
        ("1710212640", datetime(2024, 3, 12, 3, 4, tzinfo=UTC)),
    ],
)
def test_timestamps(given: Any, expected: datetime) -> None:
    event = record_to_event(rec(1, timestamp=given))
    assert isinstance(event, Post)
    assert event.date == expected
    assert event.date.utcoffset() is not None
    assert event.date.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_edit_record() -> None:
    event = record_to_event(
        {"type": "edit", "timestamp": "2024-03-12T03:04:40", "channel_id": 5, "message_id": 9, "text": "fixed"}
    )
    assert event == Edit(Channel(5), 9, datetime(2024, 3, 12, 3, 4, 40, tzinfo=UTC), "fixed", (), None)
    with_media = record_to_event(
        {"type": "edit", "timestamp": "2024-03-12T03:04:40", "channel_id": 5, "message_id": 9, "media": "photo"}
    )
    assert isinstance(with_media, Edit)
    assert with_media.media is not None
    assert [m.kind for m in with_media.media] == [MediaKind.PHOTO]


def test_edit_needs_message_id_and_time() -> None:
    with pytest.raises(BadRecord, match="message_id"):
        record_to_event({"type": "edit", "timestamp": "2024-03-12T03:04:40", "channel_id": 5, "text": "x"})
    with pytest.raises(BadRecord, match="timestamp"):
        record_to_event({"type": "edit", "channel_id": 5, "message_id": 1, "text": "x"})


def test_delete_record() -> None:
    event = record_to_event(
        {"type": "delete", "channel_id": -1001902000001, "message_ids": [3, 4], "timestamp": "2024-03-12T04:00:00Z"}
    )
    assert event == Deletion(1902000001, (3, 4), datetime(2024, 3, 12, 4, 0, tzinfo=UTC))
    single = record_to_event({"type": "delete", "channel_id": 5, "message_id": 3})
    assert isinstance(single, Deletion)
    assert single.message_ids == (3,)


@pytest.mark.parametrize("ids", [[], None, [0], ["x"], [True], "3"])
def test_bad_delete_records(ids: Any) -> None:
    with pytest.raises(BadRecord, match="message_ids"):
        record_to_event({"type": "delete", "channel_id": 5, "message_ids": ids})


@pytest.mark.parametrize(
    ("record", "field"),
    [
        (rec(1, views="many"), "views"),
        (rec(1, views=True), "views"),
        (rec(1, text=42), "text"),
        (rec(1, media={"kind": "hologram"}), "media.kind"),
        (rec(1, media={"kind": "video", "duration": "long"}), "media.duration"),
        (rec(1, media=[{"kind": "photo"}, 7]), "media[1]"),
        (rec(1, forward_from=12), "forward_from"),
        (rec(1, username=12), "username"),
        (rec(1, entities="bold"), "entities"),
        (rec(1, entities=[{"type": "bold", "offset": 0}]), "length"),
        (rec(0), "message_id"),
        (rec(-3), "message_id"),
        (rec(1.5), "message_id"),
        (rec(1, type="reaction"), "type"),
        (rec(1, timestamp="yesterday"), "timestamp"),
        ({"channel_id": 5, "message_id": 1, "text": "no time"}, "timestamp"),
        ({"timestamp": "2024-03-12T03:04:00Z", "message_id": 1}, "channel_id"),
    ],
)
def test_bad_records_name_the_field(record: dict[str, Any], field: str) -> None:
    with pytest.raises(BadRecord, match=field.replace("[", r"\[").replace("]", r"\]")):
        record_to_event(record)


def test_not_an_object() -> None:
    with pytest.raises(BadRecord, match="JSON object"):
        record_to_event([1, 2])


def test_missing_message_id_gives_stable_synthetic_id() -> None:
    first = record_to_event(rec(None, "без номера"))
    second = record_to_event(rec(None, "без номера"))
    other = record_to_event(rec(None, "другой текст"))
    assert isinstance(first, Post)
    assert isinstance(second, Post)
    assert isinstance(other, Post)
    assert first.message_id < 0
    assert first.message_id == second.message_id
    assert first.message_id != other.message_id
    assert not first.has_real_id


def test_out_of_range_timestamp_is_a_bad_record() -> None:
    with pytest.raises(BadRecord, match="timestamp"):
        record_to_event(rec(1, timestamp=1e20))


def test_out_of_range_integer_is_a_bad_record() -> None:
    with pytest.raises(BadRecord, match="message_id"):
        record_to_event(rec(2**64))


# --- text parts -----------------------------------------------------------------------------------


def test_text_parts_offsets_are_utf16() -> None:
    text, entities = text_and_entities(
        [
            "🚨 Тревога ",
            {"type": "bold", "text": "сейчас"},
            " ",
            {"type": "text_link", "text": "тут", "href": "https://x"},
        ]
    )
    assert text == "🚨 Тревога сейчас тут"
    # The emoji is one Python character but two UTF-16 code units, as Telegram counts them.
    assert entities == (Entity("bold", 11, 6), Entity("text_link", 18, 3, "https://x"))


def test_text_parts_bad_item() -> None:
    with pytest.raises(BadRecord, match=r"text\[1\]"):
        text_and_entities(["ok", 5])


# --- ReplaySource on JSONL ------------------------------------------------------------------------


async def test_replay_jsonl_yields_events_with_cursors(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "feed.jsonl",
        [
            rec(1, "first", username="chan_one"),
            rec(2, "second", channel_id=-1001902000002),
            {
                "type": "edit",
                "timestamp": "2024-03-12T03:05:00Z",
                "channel_id": 1902000001,
                "message_id": 1,
                "text": "x",
            },
            {"type": "delete", "channel_id": 1902000001, "message_ids": [2]},
        ],
    )
    source = ReplaySource([path])
    items = await collect(source)
    assert [type(e).__name__ for e in events(items)] == ["Post", "Post", "Edit", "Deletion"]
    assert all(item.cursor is not None for item in items)
    assert {item.cursor.source for item in items if item.cursor} == {f"replay:{path.resolve()}"}
    last = json.loads(items[-1].cursor.value)  # type: ignore[union-attr]
    assert last["offset"] == path.stat().st_size
    assert last["line"] == 4
    assert source.counters.lines == 4
    assert source.counters.events == 4
    assert source.counters.bad == 0


async def test_synthetic_ids_same_across_two_runs(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "feed.jsonl", [rec(None, "без номера"), rec(None, "ещё один")])
    first = [e.message_id for e in events(await collect(ReplaySource([path])))]
    second = [e.message_id for e in events(await collect(ReplaySource([path])))]
    assert first == second
    assert all(mid < 0 for mid in first)
    assert len(set(first)) == 2


async def test_malformed_lines_are_counted_and_skipped(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "feed.jsonl",
        [
            rec(1, "good one"),
            "{not json\n",
            b'{"channel_id": 5, "message_id": 2, "timestamp": "2024-03-12T03:04:00Z", "text": "\xff\xfe bad"}\n',
            json.dumps(rec(3, views="lots")) + "\n",
            json.dumps({"channel_id": 5, "message_id": 4, "text": "no timestamp"}) + "\n",
            "[1, 2, 3]\n",
            "\n",
            rec(5, "good two"),
            "[" * 5000 + "]" * 5000 + "\n",
            rec(6, "good three"),
        ],
    )
    source = ReplaySource([path])
    items = await collect(source)
    assert [e.message_id for e in events(items)] == [1, 5, 6]
    assert source.counters.bad == 6
    assert source.counters.skipped == 1
    assert source.counters.lines == 10
    # Skipped lines still advance the cursor, so a resume does not read them again.
    assert len(items) == 9
    assert json.loads(items[-1].cursor.value)["line"] == 10  # type: ignore[union-attr]


async def test_lone_surrogate_escapes_in_jsonl_are_replaced(tmp_path: Path) -> None:
    line = (
        '{"channel_id": 5, "message_id": 1, "timestamp": 1, "text": "a\\ud800b", "channel_title": "x\\udfffy",'
        ' "media": {"kind": "document", "file_name": "\\ud83d.pdf"}}\n'
    )
    path = write_jsonl(tmp_path / "feed.jsonl", [line])
    source = ReplaySource([path])
    (event,) = events(await collect(source))
    assert source.counters.bad == 0
    for value in (event.text, event.channel.title, event.media[0].file_name):
        value.encode("utf-8")  # nothing downstream can store a lone surrogate
        assert "\ufffd" in value
    assert event.text.startswith("a")
    assert event.text.endswith("b")


async def test_out_of_range_timestamp_line_is_skipped(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "feed.jsonl", [rec(1, timestamp=1e20), rec(2)])
    source = ReplaySource([path])
    assert [e.message_id for e in events(await collect(source))] == [2]
    assert source.counters.bad == 1


async def test_incomplete_last_line_is_not_consumed(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    # Longer than the 1 KB head the source fingerprints files by, so finishing the line is not a "changed file".
    complete = "".join(json.dumps(rec(i, "x" * 100)) + "\n" for i in range(1, 11))
    partial = json.dumps(rec(11, "eleventh"))[:-10]
    path.write_text(complete + partial, encoding="utf-8")
    source = ReplaySource([path])
    items = await collect(source)
    assert [e.message_id for e in events(items)] == list(range(1, 11))
    assert source.counters.bad == 0
    assert source.counters.lines == 10
    cursor = items[-1].cursor
    assert cursor is not None
    assert json.loads(cursor.value)["offset"] == len(complete.encode())

    # The writer finishes the line: a resume reads exactly it.
    path.write_text(complete + json.dumps(rec(11, "eleventh")) + "\n", encoding="utf-8")

    async def saved(_: str) -> str:
        return cursor.value

    resumed = ReplaySource([path])
    assert [e.text for e in events(await collect(resumed, saved))] == ["eleventh"]
    assert resumed.counters.bad == 0


async def test_complete_last_line_without_newline_is_read(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    path.write_text(json.dumps(rec(1)) + "\n" + json.dumps(rec(2)), encoding="utf-8")
    assert [e.message_id for e in events(await collect(ReplaySource([path])))] == [1, 2]


def _long_feed(tmp_path: Path, count: int = 40) -> Path:
    # Longer than the 1 KB head the source fingerprints files by.
    return write_jsonl(tmp_path / "feed.jsonl", [rec(i, f"post number {i} " + "x" * 40) for i in range(1, count + 1)])


async def test_resume_from_cursor_reads_only_later_lines(tmp_path: Path) -> None:
    path = _long_feed(tmp_path)
    first = await collect(ReplaySource([path]))
    cursor = first[14].cursor
    assert cursor is not None

    async def saved(key: str) -> str | None:
        return cursor.value if key == cursor.source else None

    source = ReplaySource([path])
    resumed = await collect(source, saved)
    assert [e.message_id for e in events(resumed)] == list(range(16, 41))
    assert source.counters.resumed_from == {str(path.resolve()): 15}


async def test_resume_after_append(tmp_path: Path) -> None:
    path = _long_feed(tmp_path)
    first = await collect(ReplaySource([path]))
    cursor = first[-1].cursor
    assert cursor is not None
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(rec(41)) + "\n")

    async def saved(_: str) -> str:
        return cursor.value

    assert [e.message_id for e in events(await collect(ReplaySource([path]), saved))] == [41]


async def test_changed_file_restarts_from_zero(tmp_path: Path) -> None:
    path = _long_feed(tmp_path)
    first = await collect(ReplaySource([path]))
    cursor = first[20].cursor
    assert cursor is not None
    write_jsonl(path, [rec(100 + i, f"another file {i} " + "y" * 40) for i in range(30)])

    async def saved(_: str) -> str:
        return cursor.value

    source = ReplaySource([path])
    assert [e.message_id for e in events(await collect(source, saved))] == [100 + i for i in range(30)]
    assert source.counters.resumed_from == {}


async def test_shorter_file_restarts_from_zero(tmp_path: Path) -> None:
    path = _long_feed(tmp_path)
    first = await collect(ReplaySource([path]))
    cursor = first[-1].cursor
    assert cursor is not None
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2 - 5] + b"\n")  # same first KB, but shorter than the offset

    async def saved(_: str) -> str:
        return cursor.value

    produced = events(await collect(ReplaySource([path]), saved))
    assert produced
    assert produced[0].message_id == 1


async def test_garbage_cursor_value_reads_from_start(tmp_path: Path) -> None:
    path = _long_feed(tmp_path, 3)

    async def saved(_: str) -> str:
        return "not json at all"

    assert [e.message_id for e in events(await collect(ReplaySource([path]), saved))] == [1, 2, 3]


async def test_several_files_in_order(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [rec(1), rec(2)])
    b = write_jsonl(tmp_path / "b.jsonl", [rec(3)])
    items = await collect(ReplaySource([a, b]))
    assert [e.message_id for e in events(items)] == [1, 2, 3]
    assert {i.cursor.source for i in items if i.cursor} == {f"replay:{a.resolve()}", f"replay:{b.resolve()}"}


async def test_progress_callback_reaches_the_end(tmp_path: Path) -> None:
    path = _long_feed(tmp_path, 600)
    seen: list[tuple[int, int]] = []
    await collect(ReplaySource([path], on_progress=lambda _p, done, total: seen.append((done, total))))
    size = path.stat().st_size
    assert seen[-1] == (size, size)
    assert len(seen) >= 3


def test_missing_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such file"):
        ReplaySource([tmp_path / "missing.jsonl"])


def test_folder_without_result_json(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"result\.json"):
        resolve_inputs([tmp_path])


# --- Telegram Desktop export ----------------------------------------------------------------------

EXPORT: dict[str, Any] = {
    "name": "Сумська ОВА",
    "type": "public_channel",
    "id": 1902000007,
    "messages": [
        {
            "id": 1,
            "type": "service",
            "date": "2024-03-12T05:00:00",
            "date_unixtime": "1710212400",
            "actor": "Сумська ОВА",
            "actor_id": "channel1902000007",
            "action": "create_channel",
            "title": "Сумська ОВА",
            "text": "",
            "text_entities": [],
        },
        {
            "id": 2,
            "type": "message",
            "date": "2024-03-12T06:04:00",
            "date_unixtime": "1710212640",
            "from": "Сумська ОВА",
            "from_id": "channel1902000007",
            "text": "Повітряна тривога в Сумській області",
            "text_entities": [{"type": "plain", "text": "Повітряна тривога в Сумській області"}],
        },
        {
            "id": 3,
            "type": "message",
            "date": "2024-03-12T06:10:00",
            "date_unixtime": "1710213000",
            "edited": "2024-03-12T06:15:00",
            "edited_unixtime": "1710213300",
            "from": "Сумська ОВА",
            "from_id": "channel1902000007",
            "reply_to_message_id": 2,
            "photo": "photos/photo_1@12-03-2024_06-10-00.jpg",
            "photo_file_size": 123456,
            "width": 1280,
            "height": 960,
            "text": [
                "🚨 Увага! ",
                {"type": "bold", "text": "Евакуація"},
                " з прикордонних громад, ",
                {"type": "text_link", "text": "деталі", "href": "https://example.org/evac"},
            ],
            "text_entities": [
                {"type": "plain", "text": "🚨 Увага! "},
                {"type": "bold", "text": "Евакуація"},
                {"type": "plain", "text": " з прикордонних громад, "},
                {"type": "text_link", "text": "деталі", "href": "https://example.org/evac"},
            ],
        },
        {
            "id": 4,
            "type": "message",
            "date": "2024-03-12T06:20:00",
            "date_unixtime": "1710213600",
            "from": "Сумська ОВА",
            "forwarded_from": "Повітряні Сили ЗС України",
            "file": "video_files/IMG_0001.MP4",
            "file_name": "IMG_0001.MP4",
            "file_size": 5242880,
            "thumbnail": "video_files/IMG_0001.MP4_thumb.jpg",
            "media_type": "video_file",
            "mime_type": "video/mp4",
            "duration_seconds": 35,
            "width": 1920,
            "height": 1080,
            "text": "Робота ППО",
            "text_entities": [{"type": "plain", "text": "Робота ППО"}],
        },
        {
            "id": 5,
            "type": "message",
            "date": "2024-03-12T06:25:00",
            "date_unixtime": "1710213900",
            "from": "Сумська ОВА",
            "file": "(File not included. Change data exporting settings to download.)",
            "file_size": 40000,
            "media_type": "voice_message",
            "mime_type": "audio/ogg",
            "duration_seconds": 12,
            "text": "",
            "text_entities": [],
        },
        {
            "id": 6,
            "type": "message",
            "date": "2024-03-12T06:26:00",
            "date_unixtime": "1710213960",
            "from": "Сумська ОВА",
            "file": "stickers/sticker.webp",
            "file_size": 20000,
            "thumbnail": "stickers/sticker.webp_thumb.jpg",
            "media_type": "sticker",
            "sticker_emoji": "🙏",
            "width": 512,
            "height": 512,
            "text": "",
            "text_entities": [],
        },
        {
            "id": 7,
            "type": "message",
            "date": "2024-03-12T06:30:00",
            "date_unixtime": "1710214200",
            "from": "Сумська ОВА",
            "poll": {
                "question": "Чи чули ви сирену?",
                "closed": False,
                "total_voters": 10,
                "answers": [
                    {"text": "Так", "voters": 7, "chosen": False},
                    {"text": "Ні", "voters": 3, "chosen": False},
                ],
            },
            "text": "",
            "text_entities": [],
        },
        {
            "id": 8,
            "type": "message",
            "date": "2024-03-12T06:31:00",
            "date_unixtime": "1710214260",
            "from": "Сумська ОВА",
            "location_information": {"latitude": 50.9077, "longitude": 34.7981},
            "text": "Пункт незламності",
            "text_entities": [{"type": "plain", "text": "Пункт незламності"}],
        },
        {
            "id": 9,
            "type": "service",
            "date": "2024-03-12T06:40:00",
            "date_unixtime": "1710214800",
            "actor": "Сумська ОВА",
            "action": "pin_message",
            "message_id": 3,
            "text": "",
            "text_entities": [],
        },
    ],
}


def write_export(folder: Path, data: dict[str, Any] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "result.json"
    path.write_text(json.dumps(data or EXPORT, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


async def test_export_posts(tmp_path: Path) -> None:
    path = write_export(tmp_path / "export")
    assert detect_format(path) == "export"
    source = ReplaySource([path])
    items = await collect(source)
    posts = events(items)
    assert [p.message_id for p in posts] == [2, 3, 4, 5, 6, 7, 8]
    assert all(isinstance(p, Post) for p in posts)
    assert source.counters.skipped == 2  # the two service messages
    assert source.counters.bad == 0
    assert len(items) == 9  # service messages still move the cursor

    channel = Channel(1902000007, "Сумська ОВА", None)
    by_id = {p.message_id: p for p in posts}
    assert all(p.channel == channel for p in posts)

    plain = by_id[2]
    assert plain.text == "Повітряна тривога в Сумській області"
    assert plain.entities == ()
    assert plain.date == datetime(2024, 3, 12, 3, 4, tzinfo=UTC)  # date_unixtime, not the local `date`

    rich = by_id[3]
    assert rich.text == "🚨 Увага! Евакуація з прикордонних громад, деталі"
    # "🚨" counts two UTF-16 units: "🚨 Увага! " is 10 units long.
    assert rich.entities == (Entity("bold", 10, 9), Entity("text_link", 43, 6, "https://example.org/evac"))
    assert rich.edit_date == datetime(2024, 3, 12, 3, 15, tzinfo=UTC)
    assert rich.reply_to == 2
    (photo,) = rich.media
    assert (photo.kind, photo.size, photo.width, photo.height) == (MediaKind.PHOTO, 123456, 1280, 960)

    video = by_id[4]
    assert video.forward == ForwardOrigin(name="Повітряні Сили ЗС України")
    (clip,) = video.media
    assert clip.kind is MediaKind.VIDEO
    assert (clip.duration, clip.mime_type, clip.file_name, clip.size) == (35.0, "video/mp4", "IMG_0001.MP4", 5242880)
    assert (clip.width, clip.height) == (1920, 1080)

    (voice,) = by_id[5].media
    assert (voice.kind, voice.duration, voice.mime_type, voice.file_name) == (MediaKind.VOICE, 12.0, "audio/ogg", None)
    assert by_id[6].media[0].kind is MediaKind.STICKER
    assert by_id[7].media[0].kind is MediaKind.POLL
    assert by_id[8].media[0].kind is MediaKind.GEO
    assert by_id[8].text == "Пункт незламності"


def test_export_entity_offsets_match_utf16_text() -> None:
    post = export_message_to_post(EXPORT["messages"][2], Channel(1))
    assert post is not None
    utf16 = post.text.encode("utf-16-le")
    for entity in post.entities:
        piece = utf16[entity.offset * 2 : (entity.offset + entity.length) * 2].decode("utf-16-le")
        assert piece in ("Евакуація", "деталі")


def test_export_service_message_is_none() -> None:
    assert export_message_to_post(EXPORT["messages"][0], Channel(1)) is None


def test_export_text_without_text_entities() -> None:
    message = {
        "id": 5,
        "type": "message",
        "date_unixtime": "1710212640",
        "text": ["a ", {"type": "italic", "text": "b"}],
    }
    post = export_message_to_post(message, Channel(1))
    assert post is not None
    assert post.text == "a b"
    assert post.entities == (Entity("italic", 2, 1),)


def test_export_message_without_id_is_bad() -> None:
    with pytest.raises(BadRecord, match="id"):
        export_message_to_post({"type": "message", "date_unixtime": "1710212640", "text": "x"}, Channel(1))


async def test_export_folder_is_accepted(tmp_path: Path) -> None:
    folder = tmp_path / "ChatExport_2024-03-12"
    write_export(folder)
    source = ReplaySource([folder])
    assert source.paths == [(folder / "result.json").resolve()]
    assert len(events(await collect(source))) == 7


async def test_export_resume(tmp_path: Path) -> None:
    path = write_export(tmp_path / "export")
    items = await collect(ReplaySource([path]))
    cursor = items[3].cursor  # after message id 4
    assert cursor is not None

    async def saved(_: str) -> str:
        return cursor.value

    assert [p.message_id for p in events(await collect(ReplaySource([path]), saved))] == [5, 6, 7, 8]


async def test_export_bad_message_counted(tmp_path: Path) -> None:
    data = dict(EXPORT)
    data["messages"] = [*EXPORT["messages"][:2], {"id": "x", "type": "message", "text": "?"}, EXPORT["messages"][3]]
    path = write_export(tmp_path / "export", data)
    source = ReplaySource([path])
    assert [p.message_id for p in events(await collect(source))] == [2, 4]
    assert source.counters.bad == 1


async def test_export_without_id_is_a_user_error(tmp_path: Path) -> None:
    data = {k: v for k, v in EXPORT.items() if k != "id"}
    path = write_export(tmp_path / "export", data)
    with pytest.raises(UserError, match="id"):
        await collect(ReplaySource([path]))


async def test_export_without_messages_is_a_user_error(tmp_path: Path) -> None:
    path = write_export(tmp_path / "export", {"name": "x", "type": "public_channel", "id": 5})
    with pytest.raises(UserError, match="messages"):
        await collect(ReplaySource([path]))


async def test_truncated_export_is_a_user_error(tmp_path: Path) -> None:
    path = write_export(tmp_path / "export")
    path.write_text(path.read_text(encoding="utf-8")[:-200], encoding="utf-8")
    with pytest.raises(UserError, match="JSON error"):
        await collect(ReplaySource([path]))


def test_detect_format(tmp_path: Path) -> None:
    jsonl = write_jsonl(tmp_path / "a.jsonl", [rec(1)])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    assert detect_format(jsonl) == "jsonl"
    assert detect_format(empty) == "jsonl"
    assert detect_format(write_export(tmp_path / "e")) == "export"


# --- the real posts in ../shared/data (CI lays them beside the repository) ---------------------------


async def test_shared_data_files_are_valid_replay_input(shared_data: Path) -> None:
    """docs/replay.md: the files in ../shared/data/ are valid input as they are."""
    files = sorted(shared_data.glob("*.jsonl"))
    if not files:
        pytest.skip(f"no JSONL files in {shared_data}")
    for path in files:
        source = ReplaySource([path])
        keys = [event.key for event in events(await collect(source))]
        lines = sum(1 for line in path.open("rb") if line.strip())
        assert source.counters.bad == 0, path.name
        assert len(keys) == lines, path.name
