"""Telegram TL objects → events, with real Telethon types through the handler live updates use."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from telethon import utils
from telethon.tl import types

from bot.models import Channel, Deletion, MediaKind, Post
from bot.sources.tl import UpdateHandler, channel_of, media_of, message_to_post

CHANNEL_ID = 1234567890
WHEN = datetime(2024, 3, 12, 5, 41, tzinfo=UTC)


def tl_channel(channel_id: int = CHANNEL_ID, title: str = "Вячеслав Гладков", username: str | None = "gladkov") -> Any:
    return types.Channel(
        id=channel_id, title=title, photo=types.ChatPhotoEmpty(), date=WHEN, access_hash=42, username=username,
        broadcast=True,
    )  # fmt: skip


def tl_message(message_id: int, text: str = "", channel_id: int = CHANNEL_ID, **fields: Any) -> Any:
    return types.Message(id=message_id, peer_id=types.PeerChannel(channel_id), date=WHEN, message=text, **fields)


def entities_for(*channels: Any) -> dict[int, Any]:
    return {utils.get_peer_id(c): c for c in channels}


def document(mime: str, size: int, *attributes: Any) -> Any:
    return types.Document(
        id=1, access_hash=2, file_reference=b"ref", date=WHEN, mime_type=mime, size=size, dc_id=2,
        attributes=list(attributes),
    )  # fmt: skip


def photo(width: int = 1280, height: int = 960, size: int = 183211) -> Any:
    return types.Photo(
        id=7, access_hash=8, file_reference=b"ref", date=WHEN, dc_id=2,
        sizes=[types.PhotoSize("m", 320, 240, 20000), types.PhotoSize("y", width, height, size)],
    )  # fmt: skip


HANDLER = UpdateHandler(lambda channel_id: Channel(channel_id) if channel_id == CHANNEL_ID else None)


def test_new_channel_message_becomes_a_post_with_channel_names_from_the_update() -> None:
    message = tl_message(
        4101,
        "⚠️ Ракетная опасность в Белгороде",
        views=35200,
        forwards=120,
        replies=types.MessageReplies(replies=7, replies_pts=1),
        entities=[types.MessageEntityBold(offset=3, length=8), types.MessageEntityTextUrl(0, 2, "https://t.me/x")],
        post_author="Пресс-служба",
    )
    [post] = HANDLER.events(types.UpdateNewChannelMessage(message, pts=1, pts_count=1), entities_for(tl_channel()))
    assert isinstance(post, Post)
    assert post.channel == Channel(CHANNEL_ID, "Вячеслав Гладков", "gladkov")
    assert (post.message_id, post.text, post.date) == (4101, "⚠️ Ракетная опасность в Белгороде", WHEN)
    assert (post.views, post.forwards, post.replies, post.author) == (35200, 120, 7, "Пресс-служба")
    assert [(e.type, e.offset, e.length, e.url) for e in post.entities] == [
        ("bold", 3, 8, None),
        ("text_url", 0, 2, "https://t.me/x"),
    ]
    assert post.edit_date is None


def test_other_channels_and_service_messages_are_ignored() -> None:
    other = tl_message(1, "Ракетная опасность", channel_id=999)
    assert HANDLER.events(types.UpdateNewChannelMessage(other, 1, 1), {}) == []
    service = types.MessageService(
        id=2, peer_id=types.PeerChannel(CHANNEL_ID), date=WHEN, action=types.MessageActionChatEditTitle("x")
    )
    assert HANDLER.events(types.UpdateNewChannelMessage(service, 1, 1), {}) == []
    assert (
        HANDLER.events(
            types.UpdateNewChannelMessage(types.MessageEmpty(3, peer_id=types.PeerChannel(CHANNEL_ID)), 1, 1), {}
        )
        == []
    )


def test_edit_arrives_as_the_full_post_with_its_edit_date() -> None:
    edited = tl_message(4101, "Ракетная опасность (исправлено)", edit_date=datetime(2024, 3, 12, 5, 42, tzinfo=UTC))
    [post] = HANDLER.events(types.UpdateEditChannelMessage(edited, pts=2, pts_count=1), {})
    assert isinstance(post, Post)
    assert post.edit_date == datetime(2024, 3, 12, 5, 42, tzinfo=UTC)
    assert post.channel == Channel(CHANNEL_ID)  # no entity sent: the store keeps the known names


def test_deletion_of_monitored_channel_only() -> None:
    [deletion] = HANDLER.events(types.UpdateDeleteChannelMessages(CHANNEL_ID, [5, 6], pts=3, pts_count=2), {})
    assert isinstance(deletion, Deletion)
    assert (deletion.channel_id, deletion.message_ids) == (CHANNEL_ID, (5, 6))
    assert HANDLER.events(types.UpdateDeleteChannelMessages(999, [5], pts=3, pts_count=1), {}) == []


def test_forward_reply_and_album_fields() -> None:
    source = tl_channel(555, "Легион «Свобода России»", "legion")
    message = tl_message(
        311,
        "Обращение к жителям Белгорода и Курска",
        fwd_from=types.MessageFwdHeader(date=WHEN, from_id=types.PeerChannel(555), channel_post=807),
        reply_to=types.MessageReplyHeader(reply_to_msg_id=300),
        grouped_id=13765412098731520,
    )
    post = message_to_post(message, Channel(CHANNEL_ID), entities_for(source))
    assert post is not None
    assert post.forward is not None
    assert (post.forward.channel_id, post.forward.message_id, post.forward.name) == (
        555,
        807,
        "Легион «Свобода России»",
    )
    assert post.reply_to == 300
    assert post.grouped_id == 13765412098731520
    named = tl_message(1, fwd_from=types.MessageFwdHeader(date=WHEN, from_name="Hidden Sender"))
    forwarded = message_to_post(named, Channel(CHANNEL_ID))
    assert forwarded is not None
    assert forwarded.forward is not None
    assert forwarded.forward.name == "Hidden Sender"


@pytest.mark.parametrize(
    ("media", "expected"),
    [
        (types.MessageMediaPhoto(photo=photo()), (MediaKind.PHOTO, "image/jpeg", 183211, None, 1280, 960, None)),
        (
            types.MessageMediaDocument(
                document=document(
                    "video/mp4",
                    5_400_000,
                    types.DocumentAttributeVideo(35.0, 1280, 720),
                    types.DocumentAttributeFilename("shebekino.mp4"),
                )
            ),
            (MediaKind.VIDEO, "video/mp4", 5_400_000, 35.0, 1280, 720, "shebekino.mp4"),
        ),
        (
            types.MessageMediaDocument(
                document=document("video/mp4", 800_000, types.DocumentAttributeVideo(12, 384, 384, round_message=True))
            ),
            (MediaKind.ROUND_VIDEO, "video/mp4", 800_000, 12.0, 384, 384, None),
        ),
        (
            types.MessageMediaDocument(
                document=document("audio/ogg", 61_000, types.DocumentAttributeAudio(23, voice=True))
            ),
            (MediaKind.VOICE, "audio/ogg", 61_000, 23.0, None, None, None),
        ),
        (
            types.MessageMediaDocument(
                document=document(
                    "audio/mpeg",
                    4_000_000,
                    types.DocumentAttributeAudio(180, title="Гимн"),
                    types.DocumentAttributeFilename("anthem.mp3"),
                )
            ),
            (MediaKind.AUDIO, "audio/mpeg", 4_000_000, 180.0, None, None, "anthem.mp3"),
        ),
        (
            types.MessageMediaDocument(
                document=document("application/pdf", 250_000, types.DocumentAttributeFilename("памятка.pdf"))
            ),
            (MediaKind.DOCUMENT, "application/pdf", 250_000, None, None, None, "памятка.pdf"),
        ),
        (
            types.MessageMediaDocument(
                document=document(
                    "video/mp4", 90_000, types.DocumentAttributeVideo(3, 320, 240), types.DocumentAttributeAnimated()
                )
            ),
            (MediaKind.ANIMATION, "video/mp4", 90_000, 3.0, 320, 240, None),
        ),
        (
            types.MessageMediaDocument(
                document=document(
                    "image/webp",
                    30_000,
                    types.DocumentAttributeImageSize(512, 512),
                    types.DocumentAttributeSticker("🔥", types.InputStickerSetEmpty()),
                )
            ),
            (MediaKind.STICKER, "image/webp", 30_000, None, 512, 512, None),
        ),
    ],
)
def test_media_metadata(media: Any, expected: tuple[Any, ...]) -> None:
    [item] = media_of(media)
    assert (item.kind, item.mime_type, item.size, item.duration, item.width, item.height, item.file_name) == expected


def test_other_media_kinds() -> None:
    geo = types.GeoPoint(long=36.58, lat=50.59, access_hash=1)
    poll = types.Poll(id=1, question=types.TextWithEntities("?", []), answers=[], hash=0)
    cases: list[tuple[Any, MediaKind]] = [
        (types.MessageMediaWebPage(webpage=types.WebPageEmpty(id=1)), MediaKind.WEB_PAGE),
        (types.MessageMediaGeo(geo=geo), MediaKind.GEO),
        (types.MessageMediaVenue(geo, "Драмтеатр", "пл. Соборная", "", "", ""), MediaKind.GEO),
        (types.MessageMediaContact("+70000000000", "Штаб", "", "", 0), MediaKind.CONTACT),
        (types.MessageMediaPoll(poll=poll, results=types.PollResults()), MediaKind.POLL),
        (types.MessageMediaDice(value=3, emoticon="🎲"), MediaKind.OTHER),
    ]
    for media, kind in cases:
        assert [m.kind for m in media_of(media)] == [kind]
    assert media_of(None) == ()
    assert media_of(types.MessageMediaEmpty()) == ()


def test_channel_with_several_usernames_uses_an_active_one() -> None:
    entity = tl_channel(username=None)
    entity.usernames = [types.Username("old_name", active=False), types.Username("new_name", active=True)]
    assert channel_of(entity, CHANNEL_ID).username == "new_name"
    assert channel_of(None, CHANNEL_ID) == Channel(CHANNEL_ID)


def test_update_without_its_channel_entity_keeps_the_names_tgmon_knows() -> None:
    known = Channel(CHANNEL_ID, "Вячеслав Гладков", "gladkov")
    handler = UpdateHandler(lambda channel_id: known if channel_id == CHANNEL_ID else None)
    [post] = handler.events(types.UpdateNewChannelMessage(tl_message(5, "Отбой"), 1, 1), {})
    assert isinstance(post, Post)
    assert post.channel == known
    renamed = tl_channel(title="Гладков (новое имя)")
    [post] = handler.events(types.UpdateNewChannelMessage(tl_message(6, "x"), 2, 1), entities_for(renamed))
    assert isinstance(post, Post)
    assert post.channel.title == "Гладков (новое имя)"
