"""Replay files of posts: tgmon's JSONL (docs/replay.md) and Telegram Desktop channel exports.

A replay resumes from the cursor it committed with the last stored post: a byte offset into a JSONL
file, or the number of messages read from an export. A file that changed underneath (different first
kilobyte, or shorter than the offset) is read again from the start; the store's idempotent upserts
then make the second pass store nothing twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import ijson
import orjson

from bot.errors import UserError
from bot.logging import get_logger
from bot.models import (
    Channel,
    Deletion,
    Edit,
    Entity,
    Event,
    ForwardOrigin,
    Media,
    MediaKind,
    Post,
    bare_channel_id,
    channel_id_of,
    synthetic_message_id,
)
from bot.sources import Cursor, CursorLookup, SourceItem

log = get_logger("tgmon.replay")

ProgressCallback = Callable[[Path, int, int], None]
_HEAD_BYTES = 1024
_PROGRESS_EVERY = 256


class BadRecord(ValueError):
    """One record cannot be read; the message names the field and what was expected."""


@dataclass(slots=True)
class ReplayCounters:
    lines: int = 0
    events: int = 0
    bad: int = 0
    skipped: int = 0  # service messages of exports, blank lines
    resumed_from: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------
# Field readers shared by both formats


def _required_int(record: Mapping[str, Any], key: str) -> int:
    value = _int(record, key)
    if value is None:
        raise BadRecord(f"{key}: required (an integer)")
    return value


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _int(record: Mapping[str, Any], key: str) -> int | None:
    value = record.get(key)
    if value is None:
        return None
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif (isinstance(value, str) and value.strip().lstrip("-").isdigit()) or (
        isinstance(value, float) and value.is_integer()
    ):
        number = int(value)
    if number is None:
        raise BadRecord(f"{key}: expected an integer (got {value!r})")
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise BadRecord(f"{key}: {number} is out of range (a 64-bit integer)")
    return number


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean(value: Any) -> Any:
    """Lone surrogates (from `\\ud800`-style escapes) replaced by U+FFFD, in strings at any depth:
    nothing downstream (SQLite, JSON writers) can store them."""
    if isinstance(value, str):
        if value.isascii():
            return value
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return _SURROGATE.sub("\ufffd", value)
        return value
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def _loads(raw: bytes) -> Any:
    """orjson, three times faster and never returns lone surrogates; the standard parser only for
    what orjson refuses (such surrogates), cleaned."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return clean(json.loads(raw))


def _str(record: Mapping[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is None or isinstance(value, str):
        return value
    raise BadRecord(f"{key}: expected a string (got {value!r})")


def _channel_id(record: Mapping[str, Any]) -> int:
    """Bare channel id; Bot API style -100… ids are accepted and stripped."""
    value = _required_int(record, "channel_id")
    bare = bare_channel_id(value)
    if bare is None:
        raise BadRecord(f"channel_id: expected a positive channel id (got {value})")
    return bare


def parse_time(value: Any, key: str) -> datetime:
    """ISO 8601 (naive means UTC) or unix seconds."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str) and value.strip().isdigit():
            return datetime.fromtimestamp(int(value.strip()), UTC)
    except (OverflowError, OSError, ValueError):
        raise BadRecord(f"{key}: {value!r} is not a time between the years 1 and 9999") from None
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    raise BadRecord(f"{key}: expected an ISO 8601 time such as 2024-03-12T05:41:00+00:00 (got {value!r})")


def _time(record: Mapping[str, Any], *keys: str) -> datetime | None:
    for key in keys:
        if record.get(key) is not None:
            return parse_time(record[key], key)
    return None


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def text_and_entities(value: Any, key: str = "text") -> tuple[str, tuple[Entity, ...]]:
    """Text given as a string, or as Telegram Desktop's list of strings and `{type, text, href}` parts."""
    if value is None:
        return "", ()
    if isinstance(value, str):
        return value, ()
    if not isinstance(value, list):
        raise BadRecord(f"{key}: expected a string or a list of text parts (got {type(value).__name__})")
    parts: list[str] = []
    entities: list[Entity] = []
    offset = 0
    for index, part in enumerate(value):
        if isinstance(part, str):
            piece, kind, url = part, "plain", None
        elif isinstance(part, dict) and isinstance(part.get("text"), str):
            piece, kind = part["text"], str(part.get("type", "plain"))
            href = part.get("href")
            url = href if isinstance(href, str) else None
        else:
            raise BadRecord(f"{key}[{index}]: expected a string or {{type, text}} (got {part!r})")
        length = _utf16_len(piece)
        if kind != "plain" and length:
            entities.append(Entity(kind, offset, length, url))
        parts.append(piece)
        offset += length
    return "".join(parts), tuple(entities)


def _entities(value: Any) -> tuple[Entity, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise BadRecord("entities: expected a list of {type, offset, length}")
    out = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise BadRecord(f"entities[{index}]: expected {{type, offset, length}}")
        offset, length = _required_int(item, "offset"), _required_int(item, "length")
        out.append(Entity(str(item.get("type", "unknown")), offset, length, _str(item, "url")))
    return tuple(out)


_MEDIA_KINDS = {kind.value: kind for kind in MediaKind}


def _one_media(value: Any, where: str) -> Media:
    if isinstance(value, str):
        value = {"kind": value}
    if not isinstance(value, dict):
        raise BadRecord(f"{where}: expected an object with `kind` (got {value!r})")
    kind = value.get("kind")
    if not isinstance(kind, str) or kind not in _MEDIA_KINDS:  # a list or an object is unhashable: no TypeError
        raise BadRecord(f"{where}.kind: expected one of {', '.join(_MEDIA_KINDS)} (got {kind!r})")
    duration = value.get("duration")
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, int | float)):
        raise BadRecord(f"{where}.duration: expected seconds as a number (got {duration!r})")
    return Media(
        _MEDIA_KINDS[kind],
        mime_type=_str(value, "mime_type"),
        size=_int(value, "size"),
        duration=float(duration) if duration is not None else None,
        width=_int(value, "width"),
        height=_int(value, "height"),
        file_name=_str(value, "file_name"),
        file_id=_str(value, "file_id"),
    )


def _media(value: Any) -> tuple[Media, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(_one_media(item, f"media[{i}]") for i, item in enumerate(value))
    return (_one_media(value, "media"),)


def _forward(value: Any) -> ForwardOrigin | None:
    if value is None:
        return None
    if isinstance(value, str):
        return ForwardOrigin(name=value)
    if not isinstance(value, dict):
        raise BadRecord(f"forward_from: expected a name or {{channel_id, message_id, name}} (got {value!r})")
    return ForwardOrigin(
        channel_id=_int(value, "channel_id"),
        message_id=_int(value, "message_id"),
        name=_str(value, "name"),
        date=_time(value, "date"),
    )


# ---------------------------------------------------------------------------------------------------
# tgmon JSONL


def record_to_event(record: Any) -> Event:
    """One JSONL record (docs/replay.md) as an event; raises BadRecord naming the field."""
    if not isinstance(record, dict):
        raise BadRecord(f"expected a JSON object per line (got {type(record).__name__})")
    kind = record.get("type", "post")
    channel_id = _channel_id(record)
    if kind == "delete":
        ids = record.get("message_ids")
        if ids is None and record.get("message_id") is not None:
            ids = [record["message_id"]]
        if not isinstance(ids, list) or not ids:
            raise BadRecord("message_ids: a delete needs a non-empty list of message ids")
        parsed = []
        for index, value in enumerate(ids):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise BadRecord(f"message_ids[{index}]: expected a positive integer (got {value!r})")
            parsed.append(value)
        deleted_at = _time(record, "timestamp", "date") or datetime.now(UTC)
        return Deletion(channel_id, tuple(parsed), deleted_at)
    channel = Channel(channel_id, _str(record, "channel_title"), _str(record, "username"))
    text, entities = text_and_entities(record.get("text"))
    if record.get("entities") is not None:
        entities = _entities(record["entities"])
    if kind == "edit":
        edited_at = _time(record, "edit_date", "timestamp", "date")
        if edited_at is None:
            raise BadRecord("timestamp: an edit needs the time of the edit")
        media = _media(record["media"]) if record.get("media") is not None else None
        return Edit(channel, _required_int(record, "message_id"), edited_at, text, entities, media)
    if kind != "post":
        raise BadRecord(f"type: expected post, edit or delete (got {kind!r})")
    date = _time(record, "timestamp", "date")
    if date is None:
        raise BadRecord("timestamp: required (ISO 8601 with UTC offset)")
    given_id = _int(record, "message_id")
    if given_id is not None and given_id <= 0:
        raise BadRecord(f"message_id: expected a positive integer (got {given_id})")
    message_id = given_id if given_id is not None else synthetic_message_id(channel_id, date, text)
    return Post(
        channel=channel,
        message_id=message_id,
        date=date,
        text=text,
        entities=entities,
        edit_date=_time(record, "edit_date"),
        views=_int(record, "views"),
        forwards=_int(record, "forwards"),
        replies=_int(record, "replies"),
        reply_to=_int(record, "reply_to"),
        forward=_forward(record.get("forward_from")),
        grouped_id=_int(record, "grouped_id"),
        author=_str(record, "author"),
        media=_media(record.get("media")),
    )


# ---------------------------------------------------------------------------------------------------
# Telegram Desktop export (result.json of "Export chat history", JSON format)

_TD_MEDIA = {
    "animation": MediaKind.ANIMATION,
    "video_file": MediaKind.VIDEO,
    "video_message": MediaKind.ROUND_VIDEO,
    "voice_message": MediaKind.VOICE,
    "audio_file": MediaKind.AUDIO,
    "sticker": MediaKind.STICKER,
}


def _td_media(message: Mapping[str, Any]) -> tuple[Media, ...]:
    if "photo" in message:
        return (
            Media(
                MediaKind.PHOTO,
                mime_type="image/jpeg",
                size=_int(message, "photo_file_size"),
                width=_int(message, "width"),
                height=_int(message, "height"),
            ),
        )
    if "file" in message or "media_type" in message:
        duration = _int(message, "duration_seconds")
        file_name = _str(message, "file_name")
        if file_name is None and isinstance(message.get("file"), str) and not message["file"].startswith("("):
            file_name = Path(message["file"]).name
        return (
            Media(
                _TD_MEDIA.get(str(message.get("media_type")), MediaKind.DOCUMENT),
                mime_type=_str(message, "mime_type"),
                size=_int(message, "file_size"),
                duration=float(duration) if duration is not None else None,
                width=_int(message, "width"),
                height=_int(message, "height"),
                file_name=file_name,
            ),
        )
    if "poll" in message:
        return (Media(MediaKind.POLL),)
    if "location_information" in message or "place_name" in message:
        return (Media(MediaKind.GEO),)
    if "contact_information" in message:
        return (Media(MediaKind.CONTACT),)
    if "game_title" in message or "invoice_information" in message:
        return (Media(MediaKind.OTHER),)
    return ()


def export_message_to_post(message: Any, channel: Channel) -> Post | None:
    """One export message as a Post; None for service messages (joins, pins, title changes)."""
    if not isinstance(message, dict):
        raise BadRecord(f"expected a message object (got {type(message).__name__})")
    if message.get("type", "message") != "message":
        return None
    message_id = _required_int(message, "id")
    date = _time(message, "date_unixtime", "date")
    if date is None:
        raise BadRecord("date: required")
    if "text_entities" in message and isinstance(message["text_entities"], list):
        text, entities = text_and_entities(message["text_entities"], "text_entities")
    else:
        text, entities = text_and_entities(message.get("text"))
    forwarded = _str(message, "forwarded_from")
    return Post(
        channel=channel,
        message_id=message_id,
        date=date,
        text=text,
        entities=entities,
        edit_date=_time(message, "edited_unixtime", "edited"),
        reply_to=_int(message, "reply_to_message_id"),
        forward=ForwardOrigin(name=forwarded) if forwarded else None,
        author=_str(message, "author"),
        media=_td_media(message),
    )


# ---------------------------------------------------------------------------------------------------
# The source


def _head(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.blake2b(handle.read(_HEAD_BYTES), digest_size=8).hexdigest()


def _encode(**fields: int | str) -> str:
    return json.dumps(fields, separators=(",", ":"))


def _decode(value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    try:
        decoded = json.loads(value)
    except json.JSONDecodeError:
        return {}
    return decoded if isinstance(decoded, dict) else {}


def detect_format(path: Path) -> str:
    """`jsonl`, `tl` (raw TL objects, as `tgmon run --record` writes) or `export` (Telegram Desktop)."""
    with path.open("rb") as handle:
        first = handle.readline(1 << 20).strip()
    if not first:
        return "jsonl"
    try:
        record = json.loads(first)
    except ValueError:
        return "export"
    return "tl" if isinstance(record, dict) and is_recording(record) else "jsonl"


def is_recording(first: Mapping[str, Any]) -> bool:
    """A line of `tgmon run --record` (`{"received_at", "tl"}`), as opposed to a tgmon JSONL post."""
    return isinstance(first.get("tl"), str) and "channel_id" not in first


def resolve_inputs(paths: Sequence[Path]) -> list[Path]:
    """Files to replay; a Telegram Desktop export folder stands for its result.json."""
    resolved = []
    for path in paths:
        if path.is_dir():
            candidate = path / "result.json"
            if not candidate.is_file():
                raise UserError(f"{path}: a folder without result.json; give a JSONL file or an export folder")
            path = candidate
        if not path.is_file():
            raise UserError(f"{path}: no such file")
        resolved.append(path.resolve())
    return resolved


class ReplaySource:
    """Reads files in order; `rate` caps events per second (None: as fast as the pipeline takes them)."""

    name = "replay"

    def __init__(
        self,
        paths: Sequence[Path],
        rate: float | None = None,
        on_progress: ProgressCallback | None = None,
        wanted: Callable[[int, str | None], bool] | None = None,
        tl: bool = False,
    ) -> None:
        self.paths = resolve_inputs(paths)
        self.wanted = wanted
        self.tl = tl
        self._kept: set[int] = set()
        self.rate = rate
        self.on_progress = on_progress
        self.counters = ReplayCounters()
        self._next_at = 0.0

    async def _pace(self) -> None:
        if not self.rate:
            return
        now = time.monotonic()
        self._next_at = max(self._next_at + 1.0 / self.rate, now)
        if self._next_at > now:
            await asyncio.sleep(self._next_at - now)

    async def items(self, cursors: CursorLookup) -> AsyncIterator[SourceItem]:
        for path in self.paths:
            key = f"replay:{path}"
            saved = _decode(await cursors(key))
            try:
                fmt = "tl" if self.tl else detect_format(path)
                head = _head(path)
            except OSError as exc:
                raise UserError(f"{path}: cannot read: {exc.strerror}") from None
            if fmt == "export":
                items = self._export(path, key, head, saved)
            else:
                if fmt == "tl":
                    from bot.sources.recording import Playback  # Telethon, 0.2 s to import: only for recordings

                    parse = Playback().events
                else:
                    parse = _one_event
                items = self._jsonl(path, key, head, saved, parse)
            async for item in items:
                if item.event is not None and not self._wanted(item.event):
                    self.counters.skipped += 1
                    item = SourceItem(None, item.cursor)
                yield item

    def _wanted(self, event: Event) -> bool:
        """`--only-configured`: by id or @username; a deletion carries only the id, so ids seen kept count."""
        if self.wanted is None:
            return True
        channel_id = channel_id_of(event)
        if channel_id in self._kept:
            return True
        username = None if isinstance(event, Deletion) else event.channel.username
        if self.wanted(channel_id, username):
            self._kept.add(channel_id)
            return True
        return False

    async def _jsonl(
        self, path: Path, key: str, head: str, saved: Mapping[str, Any], parse: Callable[[Any], list[Event]]
    ) -> AsyncIterator[SourceItem]:
        size = path.stat().st_size
        offset, line_no = 0, 0
        if saved.get("head") == head and isinstance(saved.get("offset"), int) and saved["offset"] <= size:
            offset, line_no = saved["offset"], int(saved.get("line", 0))
            self.counters.resumed_from[str(path)] = line_no
            log.info("replay.resume", file=str(path), line=line_no + 1)
        elif saved:
            log.warning("replay.file_changed", file=str(path), action="reading from the start")
        with path.open("rb") as handle:
            handle.seek(offset)
            for raw in handle:
                if not raw.endswith(b"\n") and not _complete(raw):
                    log.warning("replay.incomplete_last_line", file=str(path), line=line_no + 1)
                    break
                offset += len(raw)
                line_no += 1
                self.counters.lines += 1
                cursor = Cursor(key, f'{{"offset":{offset},"line":{line_no},"head":"{head}"}}')
                if line_no % _PROGRESS_EVERY == 0 and self.on_progress:
                    self.on_progress(path, offset, size)
                if not raw.strip():
                    self.counters.skipped += 1
                    continue
                try:
                    events = parse(_loads(raw))
                except (ValueError, RecursionError) as exc:
                    yield self._bad(path, line_no, exc, cursor)
                    continue
                if not events:
                    self.counters.skipped += 1
                    yield SourceItem(None, cursor)
                    continue
                for index, event in enumerate(events, 1):
                    self.counters.events += 1
                    if self.rate:  # as fast as possible: no coroutine per event
                        await self._pace()
                    yield SourceItem(event, cursor if index == len(events) else None)
        if self.on_progress:
            self.on_progress(path, size, size)

    def _bad(self, path: Path, line_no: int, exc: Exception, cursor: Cursor) -> SourceItem:
        self.counters.bad += 1
        reason = str(exc) if isinstance(exc, BadRecord) else f"not valid JSON ({exc})"
        if isinstance(exc, UnicodeDecodeError):
            reason = "not valid UTF-8"
        log.warning("replay.bad_record", file=str(path), line=line_no, error=reason)
        return SourceItem(None, cursor)

    async def _export(self, path: Path, key: str, head: str, saved: Mapping[str, Any]) -> AsyncIterator[SourceItem]:
        size = path.stat().st_size
        skip = int(saved["index"]) if saved.get("head") == head and isinstance(saved.get("index"), int) else 0
        if skip:
            self.counters.resumed_from[str(path)] = skip
            log.info("replay.resume", file=str(path), message=skip + 1)
        with path.open("rb") as handle:
            header: dict[str, Any] = {}
            channel: Channel | None = None
            index = 0
            try:
                for message in _export_messages(handle, header):
                    index += 1
                    if channel is None:
                        channel = _export_channel(path, header)
                    if index <= skip:
                        continue
                    self.counters.lines += 1
                    cursor = Cursor(key, _encode(index=index, head=head))
                    if index % _PROGRESS_EVERY == 0 and self.on_progress:
                        self.on_progress(path, handle.tell(), size)
                    try:
                        post = export_message_to_post(clean(message), channel)
                    except (BadRecord, ValueError) as exc:
                        yield self._bad(path, index, exc, cursor)
                        continue
                    if post is None:
                        self.counters.skipped += 1
                        yield SourceItem(None, cursor)
                        continue
                    self.counters.events += 1
                    if self.rate:  # as fast as possible: no coroutine per event
                        await self._pace()
                    yield SourceItem(post, cursor)
            except (ijson.JSONError, UnicodeDecodeError) as exc:  # ijson's message spans lines: made one here
                reason = "not valid UTF-8" if isinstance(exc, UnicodeDecodeError) else " ".join(str(exc).split())
                raise UserError(
                    f"{path}: not a Telegram Desktop export nor JSONL (JSON error after message {index}: {reason})"
                ) from None
        if channel is None:
            raise UserError(f"{path}: no `messages` list; export the channel with Telegram Desktop as JSON")
        if self.on_progress:
            self.on_progress(path, size, size)


def _one_event(record: Any) -> list[Event]:
    return [record_to_event(record)]


def _complete(raw: bytes) -> bool:
    """A last line without a newline counts only if it parses: it may still be being written."""
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True


def _export_messages(handle: BinaryIO, header: dict[str, Any]) -> Iterator[Any]:
    """Stream `messages` items one at a time, recording top-level scalars (name, type, id) in `header`."""
    builder: ijson.ObjectBuilder | None = None
    for prefix, event, value in ijson.parse(handle, use_float=True):
        if builder is not None:
            builder.event(event, value)
            if prefix == "messages.item" and event in ("end_map", "end_array"):
                yield builder.value
                builder = None
            continue
        if prefix == "messages.item" and event in ("start_map", "start_array"):
            builder = ijson.ObjectBuilder()
            builder.event(event, value)
        elif prefix == "messages.item":
            yield value
        elif "." not in prefix and prefix and event in ("string", "number", "boolean", "null"):
            header[prefix] = value


def _export_channel(path: Path, header: Mapping[str, Any]) -> Channel:
    chat_id = header.get("id")
    if not isinstance(chat_id, int) or chat_id == 0:
        raise UserError(f"{path}: the export has no numeric `id` before `messages`; re-export it as JSON")
    kind = header.get("type")
    if kind is not None and "channel" not in str(kind) and "supergroup" not in str(kind):
        log.warning("replay.not_a_channel", file=str(path), type=kind)
    return Channel(abs(chat_id), header.get("name") if isinstance(header.get("name"), str) else None, None)
