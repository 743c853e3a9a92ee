"""The alert bot: how TelegramNotifier sorts Telegram's answers for the dispatcher, and how commands reach it.

Telegram is faked at the narrowest boundary only: a client with the four methods tgmon calls (their
arguments bound to Telethon's own signatures), or a real offline `TelegramClient` whose MTProto call is
replaced. Errors are Telethon's, built the way Telethon builds them from Telegram's error strings.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from telethon import TelegramClient, errors, events
from telethon.extensions import html as telethon_html
from telethon.helpers import add_surrogate, del_surrogate
from telethon.sessions import StringSession
from telethon.tl import functions, types

from bot.alerts.commands import CommandHandler
from bot.alerts.html import render_html, render_html_digest
from bot.alerts.notifiers import DigestNotifier, EditingNotifier, PermanentError, ReplyingNotifier, RetryAfter
from bot.alerts.outbox import build_alert
from bot.alerts.telegram import CommandListener, TelegramNotifier
from bot.models import Channel, Post
from bot.rules.engine import Match, verdict
from tests.alerts.test_commands import ANALYST, STRANGER, FakeView
from tests.conftest import Logs
from tests.helpers import T0

KYIV = ZoneInfo("Europe/Kyiv")
CHAT_BARE = 1234567890
CHAT = -1000000000000 - CHAT_BARE  # ANALYST_CHAT_ID as Telegram tools print it
CHAT_HASH = 771177
BOT_ID = 5550001
GLADKOV = Channel(1902000001, "Вячеслав <Гладков>", "gladkov_demo")
TEXT = "⚠️ Ракетная опасность в Белгороде. Пройдите в укрытия."
SENT_AT = datetime(2024, 3, 12, 5, 0, 30, tzinfo=UTC)


def missile_alert(message_id: int = 4101, text: str = TEXT, **extra: Any) -> dict[str, Any]:
    """A real alert object, as the dispatcher hands it to a notifier."""
    start = text.index("Ракетная")
    found = verdict([Match("missile-danger", "missile", "high", start, start + 18, "ракетная опасность")])
    return {**build_alert(Post(GLADKOV, message_id, T0, text), found).payload, "delayed_s": 0, **extra}


def request() -> functions.messages.SendMessageRequest:
    return functions.messages.SendMessageRequest(peer=types.InputPeerChannel(CHAT_BARE, CHAT_HASH), message="…")


def rpc(code: int, message: str) -> errors.RPCError:
    """The exception Telethon raises when Telegram answers a sendMessage with this error."""
    error: errors.RPCError = errors.rpc_message_to_error(types.RpcError(code, message), request())
    return error


def unknown_chat() -> ValueError:
    """What Telethon raises for a chat id it cannot resolve (the bot never saw the chat)."""
    return ValueError(
        f"Could not find the input entity for PeerChannel(channel_id={CHAT_BARE}) (PeerChannel). Please read"
        " https://docs.telethon.dev/en/stable/concepts/entities.html to find out more details."
    )


# --- a client with the four methods tgmon uses --------------------------------------------------------


class FakeBotClient:
    """send_message, edit_message, add/remove_event_handler; arguments bound to TelegramClient's signatures.

    Sent and edited messages come back as real `types.Message`s carrying the text and entities Telethon's
    HTML parser makes of what was sent. `fail` queues exceptions for the next calls of a method.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.faults: dict[str, list[BaseException]] = {"send_message": [], "edit_message": []}
        self.handlers: list[tuple[Any, Any]] = []
        self.next_id = 101

    def fail(self, method: str, *faults: BaseException) -> None:
        self.faults[method].extend(faults)

    def _bind(self, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        bound = inspect.signature(getattr(TelegramClient, method)).bind(self, *args, **kwargs)
        arguments = {k: v for k, v in bound.arguments.items() if k != "self"}
        self.calls.append((method, arguments))
        return arguments

    def _raise_queued(self, method: str) -> None:
        if self.faults.get(method):
            raise self.faults[method].pop(0)

    @staticmethod
    def _parsed(arguments: Mapping[str, Any], key: str) -> tuple[str, list[Any]]:
        if arguments.get("parse_mode") == "html":
            text, entities = telethon_html.parse(arguments[key])
            return text, list(entities)
        return str(arguments[key]), []

    async def send_message(self, *args: Any, **kwargs: Any) -> types.Message:
        arguments = self._bind("send_message", *args, **kwargs)
        self._raise_queued("send_message")
        text, entities = self._parsed(arguments, "message")
        reply_to = arguments.get("reply_to")
        message = types.Message(
            id=self.next_id,
            peer_id=types.PeerChannel(CHAT_BARE),
            date=SENT_AT,
            message=text,
            out=True,
            entities=entities,
            reply_to=types.MessageReplyHeader(reply_to_msg_id=reply_to) if reply_to else None,
        )
        self.next_id += 1
        return message

    async def edit_message(self, *args: Any, **kwargs: Any) -> types.Message:
        arguments = self._bind("edit_message", *args, **kwargs)
        self._raise_queued("edit_message")
        text, entities = self._parsed(arguments, "text")
        return types.Message(
            id=arguments["message"],
            peer_id=types.PeerChannel(CHAT_BARE),
            date=SENT_AT,
            message=text,
            out=True,
            entities=entities,
            edit_date=SENT_AT,
        )

    def add_event_handler(self, *args: Any, **kwargs: Any) -> None:
        arguments = self._bind("add_event_handler", *args, **kwargs)
        self.handlers.append((arguments["callback"], arguments.get("event")))

    def remove_event_handler(self, *args: Any, **kwargs: Any) -> None:
        arguments = self._bind("remove_event_handler", *args, **kwargs)
        self.handlers = [(c, e) for c, e in self.handlers if c != arguments["callback"]]


@pytest.fixture
def client() -> FakeBotClient:
    return FakeBotClient()


@pytest.fixture
def notifier(client: FakeBotClient) -> TelegramNotifier:
    return TelegramNotifier(client, CHAT, KYIV)


def sent(html: str, reply_to: int | None = None) -> tuple[str, dict[str, Any]]:
    return (
        "send_message",
        {"entity": CHAT, "message": html, "reply_to": reply_to, "parse_mode": "html", "link_preview": False},
    )


# --- send -----------------------------------------------------------------------------------------------


def test_the_notifier_offers_digests_replies_and_edits(notifier: TelegramNotifier) -> None:
    assert notifier.name == f"telegram:{CHAT}"
    assert isinstance(notifier, DigestNotifier)
    assert isinstance(notifier, ReplyingNotifier)
    assert isinstance(notifier, EditingNotifier)


async def test_send_returns_the_message_id(notifier: TelegramNotifier, client: FakeBotClient) -> None:
    alert = missile_alert()
    assert await notifier.send(alert) == "101"
    assert await notifier.send(missile_alert(4102)) == "102"
    html = render_html(alert, KYIV)
    assert client.calls[0] == sent(html)
    text, entities = telethon_html.parse(html)
    assert "Вячеслав <Гладков>" in text  # the channel title reached the chat as text, not markup
    bold = [del_surrogate(add_surrogate(text)[e.offset : e.offset + e.length]) for e in entities if e.length]
    assert "Ракетная опасность" in bold


@pytest.mark.parametrize(
    ("error", "seconds"),
    [
        (errors.FloodWaitError(request=None, capture=37), 37),
        (rpc(420, "FLOOD_WAIT_1800"), 1800),
        (rpc(420, "SLOWMODE_WAIT_12"), 12),
        (errors.FloodPremiumWaitError(request=None, capture=5), 5),
    ],
    ids=["flood-wait", "flood-wait-from-telegram", "slow-mode", "flood-premium"],
)
async def test_a_flood_wait_is_retry_after_its_seconds(
    notifier: TelegramNotifier, client: FakeBotClient, error: errors.RPCError, seconds: int
) -> None:
    client.fail("send_message", error)
    with pytest.raises(RetryAfter) as caught:
        await notifier.send(missile_alert())
    assert caught.value.seconds == seconds
    assert str(caught.value) == f"{type(error).__name__}: wait {seconds} s"
    assert caught.value.__cause__ is error
    assert len(client.calls) == 1


@pytest.mark.parametrize(
    "error",
    [
        rpc(403, "CHAT_WRITE_FORBIDDEN"),
        rpc(400, "PEER_ID_INVALID"),
        rpc(400, "CHANNEL_PRIVATE"),
        rpc(403, "CHAT_ADMIN_REQUIRED"),
        rpc(400, "CHAT_ID_INVALID"),
        rpc(403, "USER_IS_BLOCKED"),
        rpc(400, "MESSAGE_TOO_LONG"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_a_chat_the_bot_cannot_write_to_is_permanent(
    notifier: TelegramNotifier, client: FakeBotClient, error: errors.RPCError
) -> None:
    client.fail("send_message", error)
    with pytest.raises(PermanentError) as caught:
        await notifier.send(missile_alert())
    hint = (
        "; check ANALYST_CHAT_ID, and that the sender (the bot of TG_BOT_TOKEN, or the account) is a"
        " member allowed to post there"
    )
    expected = f"chat {CHAT}: {type(error).__name__}: {error}"
    assert str(caught.value) == (expected if isinstance(error, errors.MessageTooLongError) else expected + hint)
    assert caught.value.__cause__ is error


async def test_an_unknown_chat_is_permanent_and_says_how_to_fix_it(
    notifier: TelegramNotifier, client: FakeBotClient
) -> None:
    error = unknown_chat()
    client.fail("send_message", error)
    with pytest.raises(PermanentError) as caught:
        await notifier.send(missile_alert())
    assert str(caught.value) == (
        f"chat {CHAT}: {error}; add the bot to the chat (or write to it once) and check ANALYST_CHAT_ID"
    )


@pytest.mark.parametrize(
    "error", [rpc(403, "CHAT_WRITE_FORBIDDEN"), rpc(400, "PEER_ID_INVALID")], ids=lambda e: type(e).__name__
)
async def test_a_forbidden_or_invalid_chat_says_how_to_fix_it(
    notifier: TelegramNotifier, client: FakeBotClient, error: errors.RPCError
) -> None:
    client.fail("send_message", error)
    with pytest.raises(PermanentError) as caught:
        await notifier.send(missile_alert())
    assert "ANALYST_CHAT_ID" in str(caught.value)  # as the unknown-chat case says
    assert "bot" in str(caught.value)  # …and the bot's membership or rights to check


@pytest.mark.parametrize(
    "error",
    [rpc(500, "INTERNAL"), rpc(400, "SOMETHING_TELEGRAM_ADDED_LATER"), rpc(-503, "Timeout"), ConnectionError("reset")],
    ids=["server-error", "unknown-bad-request", "timeout", "connection"],
)
async def test_other_failures_propagate_to_be_retried(
    notifier: TelegramNotifier, client: FakeBotClient, error: Exception
) -> None:
    client.fail("send_message", error)
    with pytest.raises(type(error)) as caught:
        await notifier.send(missile_alert())
    assert caught.value is error
    assert not isinstance(caught.value, PermanentError | RetryAfter)


# --- send_reply -------------------------------------------------------------------------------------------


async def test_an_all_clear_replies_to_the_alarm(notifier: TelegramNotifier, client: FakeBotClient) -> None:
    alert = missile_alert(4102)
    assert await notifier.send_reply(alert, "77") == "101"
    assert client.calls == [sent(render_html(alert, KYIV), reply_to=77)]


@pytest.mark.parametrize(
    "error", [rpc(400, "REPLY_MESSAGE_ID_INVALID"), rpc(400, "REPLY_TO_INVALID")], ids=lambda e: e.message
)
async def test_a_reply_to_a_deleted_message_is_sent_on_its_own(
    notifier: TelegramNotifier, client: FakeBotClient, error: errors.RPCError
) -> None:
    client.fail("send_message", error)
    alert = missile_alert(4102)
    assert await notifier.send_reply(alert, "77") == "101"  # the first call raised before taking an id
    html = render_html(alert, KYIV)
    assert client.calls == [sent(html, reply_to=77), sent(html)]


@pytest.mark.parametrize(
    "error", [rpc(400, "MESSAGE_ID_INVALID"), rpc(400, "MSG_ID_INVALID")], ids=lambda e: type(e).__name__
)
async def test_a_typed_bad_message_id_on_a_reply_falls_back(
    notifier: TelegramNotifier, client: FakeBotClient, error: errors.RPCError
) -> None:
    """Telethon turns these into typed errors whose text says "message ID", never "MESSAGE_ID"."""
    client.fail("send_message", error)
    alert = missile_alert(4102)
    assert await notifier.send_reply(alert, "77") == "101"
    assert [call[1]["reply_to"] for call in client.calls] == [77, None]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (errors.FloodWaitError(request=None, capture=9), RetryAfter),
        (rpc(403, "CHAT_WRITE_FORBIDDEN"), PermanentError),
        (unknown_chat(), PermanentError),
        (rpc(500, "INTERNAL"), errors.ServerError),
    ],
    ids=["flood-wait", "forbidden", "unknown-chat", "server-error"],
)
async def test_a_reply_that_fails_otherwise_is_not_resent_plain(
    notifier: TelegramNotifier, client: FakeBotClient, error: Exception, expected: type[Exception]
) -> None:
    client.fail("send_message", error)
    with pytest.raises(expected):
        await notifier.send_reply(missile_alert(4102), "77")
    assert len(client.calls) == 1


async def test_a_fallback_that_fails_is_sorted_too(notifier: TelegramNotifier, client: FakeBotClient) -> None:
    client.fail("send_message", rpc(400, "REPLY_MESSAGE_ID_INVALID"), errors.FloodWaitError(request=None, capture=3))
    with pytest.raises(RetryAfter) as caught:
        await notifier.send_reply(missile_alert(4102), "77")
    assert caught.value.seconds == 3
    assert [call[1]["reply_to"] for call in client.calls] == [77, None]


# --- edit ----------------------------------------------------------------------------------------------------


async def test_edit(notifier: TelegramNotifier, client: FakeBotClient) -> None:
    alert = missile_alert()
    await notifier.edit("101", alert)
    assert client.calls == [
        (
            "edit_message",
            {
                "entity": CHAT,
                "message": 101,
                "text": render_html(alert, KYIV),
                "parse_mode": "html",
                "link_preview": False,
            },
        )
    ]


async def test_an_edit_that_changes_nothing_is_fine(notifier: TelegramNotifier, client: FakeBotClient) -> None:
    client.fail("edit_message", rpc(400, "MESSAGE_NOT_MODIFIED"))
    await notifier.edit("101", missile_alert())  # no exception: the message already says this
    assert len(client.calls) == 1


@pytest.mark.parametrize(
    "error", [rpc(400, "MESSAGE_ID_INVALID"), rpc(400, "MESSAGE_EDIT_TIME_EXPIRED")], ids=lambda e: type(e).__name__
)
async def test_an_edit_of_a_message_that_is_gone_is_permanent(
    notifier: TelegramNotifier, client: FakeBotClient, error: errors.RPCError
) -> None:
    client.fail("edit_message", error)
    with pytest.raises(PermanentError) as caught:
        await notifier.edit("101", missile_alert())
    assert str(caught.value) == f"chat {CHAT}: message 101: {type(error).__name__}"
    assert caught.value.__cause__ is error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (errors.FloodWaitError(request=None, capture=20), RetryAfter),
        (rpc(403, "CHAT_WRITE_FORBIDDEN"), PermanentError),
        (rpc(500, "INTERNAL"), errors.ServerError),
    ],
    ids=["flood-wait", "forbidden", "server-error"],
)
async def test_an_edit_is_sorted_like_a_send(
    notifier: TelegramNotifier, client: FakeBotClient, error: Exception, expected: type[Exception]
) -> None:
    client.fail("edit_message", error)
    with pytest.raises(expected):
        await notifier.edit("101", missile_alert())


# --- send_digest, close --------------------------------------------------------------------------------------


async def test_a_digest_is_one_message(notifier: TelegramNotifier, client: FakeBotClient) -> None:
    alerts = [missile_alert(4100 + i, late_s=3600 + 60 * i) for i in range(1, 6)]
    assert await notifier.send_digest(alerts) == "101"
    assert client.calls == [sent(render_html_digest(alerts, KYIV))]
    text, _ = telethon_html.parse(client.calls[0][1]["message"])
    lines = text.split("\n")
    assert lines[0] == "🕓 5 late alerts, read while catching up, 1 h 01 min to 1 h 05 min after posting"
    assert len(lines) == 6


async def test_a_digest_does_not_give_a_range_of_one_value(notifier: TelegramNotifier, client: FakeBotClient) -> None:
    alerts = [missile_alert(4100 + i, late_s=3600 + i) for i in range(1, 6)]  # seconds apart
    await notifier.send_digest(alerts)
    text, _ = telethon_html.parse(client.calls[0][1]["message"])
    assert text.split("\n")[0] == "🕓 5 late alerts, read while catching up, 1 h 00 min after posting"


async def test_close_leaves_the_client_to_the_service(notifier: TelegramNotifier, client: FakeBotClient) -> None:
    await notifier.close()
    assert client.calls == []
    assert await notifier.send(missile_alert()) == "101"  # still usable: the service closes the client


# --- over a real TelegramClient, faked at the MTProto call ---------------------------------------------------


def supergroup() -> types.Channel:
    return types.Channel(
        id=CHAT_BARE, title="Analysts <&>", photo=types.ChatPhotoEmpty(), date=T0, access_hash=CHAT_HASH,
        megagroup=True,
    )  # fmt: skip


def offline_client() -> TelegramClient:
    """A real client, never connected; the bot it logged in as is known, as after connect_bot."""
    client = TelegramClient(StringSession(), 1, "x", flood_sleep_threshold=0)  # as bot/sources/session.py
    client._mb_entity_cache.set_self_user(BOT_ID, True, 0)
    return client


class Wire:
    """Stands in for Telegram behind TelegramClient's one MTProto call: records requests, answers or fails."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.faults: list[BaseException] = []

    async def call(self, sender: Any, request: Any, ordered: bool = False, flood_sleep_threshold: Any = None) -> Any:
        self.requests.append(request)
        if isinstance(request, functions.channels.GetChannelsRequest):
            raise errors.ChannelInvalidError(request=request)  # access hash 0 for a chat the bot never saw
        if self.faults:
            raise self.faults.pop(0)
        return types.UpdateShortSentMessage(out=True, id=321, pts=5, pts_count=1, date=SENT_AT)


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TelegramClient, Wire]]:
    client, fake = offline_client(), Wire()
    monkeypatch.setattr(client, "_call", fake.call)
    yield client, fake
    client.session.close()


async def test_real_client_sends_html_without_preview_as_a_reply(wire: tuple[TelegramClient, Wire]) -> None:
    client, fake = wire
    client._mb_entity_cache.extend([], [supergroup()])  # the bot has seen the chat
    notifier = TelegramNotifier(client, CHAT, KYIV)
    alert = missile_alert()
    assert await notifier.send_reply(alert, "77") == "321"
    (request,) = fake.requests
    assert isinstance(request, functions.messages.SendMessageRequest)
    assert request.peer == types.InputPeerChannel(CHAT_BARE, CHAT_HASH)
    assert request.no_webpage is True
    assert request.reply_to == types.InputReplyToMessage(reply_to_msg_id=77)
    text, entities = telethon_html.parse(render_html(alert, KYIV))
    assert (request.message, request.entities) == (text, entities)
    assert any(isinstance(e, types.MessageEntityBold) for e in request.entities)


async def test_real_client_unknown_chat_is_permanent(wire: tuple[TelegramClient, Wire]) -> None:
    client, fake = wire
    notifier = TelegramNotifier(client, CHAT, KYIV)
    with pytest.raises(PermanentError) as caught:
        await notifier.send(missile_alert())
    assert [type(r).__name__ for r in fake.requests] == ["GetChannelsRequest"]  # Telethon tried, then gave up
    assert str(caught.value).startswith(f"chat {CHAT}: Could not find the input entity for PeerChannel(")
    assert str(caught.value).endswith("add the bot to the chat (or write to it once) and check ANALYST_CHAT_ID")


async def test_real_client_flood_wait_reaches_the_dispatcher(wire: tuple[TelegramClient, Wire]) -> None:
    client, fake = wire
    client._mb_entity_cache.extend([], [supergroup()])
    fake.faults.append(rpc(420, "FLOOD_WAIT_75"))
    with pytest.raises(RetryAfter) as caught:
        await TelegramNotifier(client, CHAT, KYIV).send(missile_alert())
    assert caught.value.seconds == 75


# --- CommandListener -----------------------------------------------------------------------------------------


def test_listener_registers_and_unregisters_one_handler(client: FakeBotClient) -> None:
    listener = CommandListener(client, [CHAT], CommandHandler(FakeView(), frozenset({ANALYST}), KYIV))
    listener.start()
    ((callback, builder),) = client.handlers
    assert callback == listener._on_message
    assert isinstance(builder, events.NewMessage)
    assert builder.chats == [CHAT]
    assert builder.pattern("/status") is not None
    assert builder.pattern("status /help") is None
    listener.stop()
    assert client.handlers == []


BASIC_GROUP = 4567  # a legacy group: marked id -4567


def analyst(user_id: int = ANALYST) -> types.User:
    return types.User(id=user_id, access_hash=user_id * 3, first_name="Analyst")


def in_supergroup(text: str, sender: types.TypePeer, message_id: int = 55) -> types.UpdateNewChannelMessage:
    message = types.Message(id=message_id, peer_id=types.PeerChannel(CHAT_BARE), date=T0, message=text, from_id=sender)
    return types.UpdateNewChannelMessage(message, pts=message_id, pts_count=1)


def in_private(text: str, user_id: int = ANALYST) -> types.UpdateNewMessage:
    # Incoming private messages carry no from_id: the sender is the chat.
    message = types.Message(id=12, peer_id=types.PeerUser(user_id), date=T0, message=text)
    return types.UpdateNewMessage(message, pts=12, pts_count=1)


def in_basic_group(text: str, user_id: int = ANALYST) -> types.UpdateNewMessage:
    message = types.Message(
        id=13, peer_id=types.PeerChat(BASIC_GROUP), date=T0, message=text, from_id=types.PeerUser(user_id)
    )
    return types.UpdateNewMessage(message, pts=13, pts_count=1)


def basic_group() -> types.Chat:
    return types.Chat(
        id=BASIC_GROUP, title="Analysts", photo=types.ChatPhotoEmpty(), participants_count=3, date=T0, version=1
    )


class Bot:
    """A real TelegramClient with a CommandListener on it; the replies it would send land in `replies`."""

    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
        chats: list[int],
        allowed: frozenset[int],
    ) -> None:
        self.caplog = caplog
        self.client = offline_client()
        self.view = FakeView()
        self.listener = CommandListener(self.client, chats, CommandHandler(self.view, allowed, KYIV))
        self.replies: list[tuple[str, dict[str, Any]]] = []
        self.faults: list[BaseException] = []
        monkeypatch.setattr(self.client, "send_message", self.send_message)

    async def send_message(self, *args: Any, **kwargs: Any) -> types.Message:
        bound = inspect.signature(TelegramClient.send_message).bind(self.client, *args, **kwargs)
        self.replies.append(("send_message", {k: v for k, v in bound.arguments.items() if k != "self"}))
        if self.faults:
            raise self.faults.pop(0)
        return types.Message(id=900, peer_id=types.PeerChannel(CHAT_BARE), date=SENT_AT, message="…", out=True)

    async def push(self, update: Any, users: list[Any], chats: list[Any]) -> None:
        """As Telethon's update loop does: entities attached, then the update dispatched to the handlers."""
        (prepared,) = await self.client._preprocess_updates([update], users, chats)
        seen = len(self.caplog.records)
        await self.client._dispatch_update(prepared)
        # Telethon catches what a handler raises and logs it: that must never happen.
        unhandled = [r.getMessage() for r in self.caplog.records[seen:] if r.name.startswith("telethon")]
        assert unhandled == []


@pytest.fixture
def bot(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Iterator[Bot]:
    caplog.set_level(logging.ERROR, logger="telethon")
    made = Bot(monkeypatch, caplog, [CHAT, ANALYST, -BASIC_GROUP], frozenset({ANALYST}))
    made.listener.start()
    yield made
    made.listener.stop()
    made.client.session.close()


def reply(entity: Any, message: str, reply_to: int) -> tuple[str, dict[str, Any]]:
    return (
        "send_message",
        {"entity": entity, "message": message, "parse_mode": "html", "link_preview": False, "reply_to": reply_to},
    )


async def test_real_client_handlers(bot: Bot) -> None:
    assert bot.client.list_event_handlers() == [(bot.listener._on_message, bot.listener._builder)]
    bot.listener.stop()
    assert bot.client.list_event_handlers() == []
    bot.listener.start()


@pytest.mark.parametrize("text", ["/last 2", "/last@tgmon_alerts_bot 2"])
async def test_a_command_in_the_analyst_group_is_answered_in_place(bot: Bot, text: str, logs: Logs) -> None:
    await bot.push(in_supergroup(text, types.PeerUser(ANALYST)), [analyst()], [supergroup()])
    assert bot.view.calls == [("last", 2, None)]
    assert bot.replies == [reply(types.InputPeerChannel(CHAT_BARE, CHAT_HASH), "No alerts yet.", 55)]
    assert [(e["event"], e["user_id"]) for e in logs] == [("command.received", ANALYST)]


async def test_a_command_in_a_private_chat_with_the_bot(bot: Bot) -> None:
    await bot.push(in_private("/unmute tag:news"), [analyst()], [])
    assert bot.view.calls == [("unmute", "tag:news"), ("mutes",)]
    assert bot.replies == [
        reply(types.InputPeerUser(ANALYST, ANALYST * 3), "tag:news was not muted (muted now: none).", 12)
    ]


async def test_a_command_in_a_legacy_group(bot: Bot) -> None:
    await bot.push(in_basic_group("/channels"), [analyst()], [basic_group()])
    assert bot.replies == [reply(types.InputPeerChat(BASIC_GROUP), "<b>0 channels</b>", 13)]


@pytest.mark.parametrize(
    ("sender", "user_id"),
    [(types.PeerUser(STRANGER), STRANGER), (types.PeerChannel(CHAT_BARE), CHAT)],
    ids=["stranger", "anonymous-admin"],
)
async def test_a_command_from_anyone_else_is_ignored_and_logged(
    bot: Bot, sender: types.TypePeer, user_id: int, logs: Logs
) -> None:
    await bot.push(in_supergroup("/mute @gladkov_demo 1d", sender), [analyst(STRANGER)], [supergroup()])
    assert bot.replies == []
    assert bot.view.calls == []
    assert [(e["event"], e["command"], e["user_id"]) for e in logs] == [("command.denied", "mute", user_id)]


async def test_other_chats_and_plain_text_do_not_reach_the_handler(bot: Bot, logs: Logs) -> None:
    elsewhere = types.Message(
        id=56, peer_id=types.PeerChannel(CHAT_BARE + 1), date=T0, message="/status", from_id=types.PeerUser(ANALYST)
    )
    other = types.Channel(
        id=CHAT_BARE + 1, title="Other", photo=types.ChatPhotoEmpty(), date=T0, access_hash=1, megagroup=True
    )
    await bot.push(types.UpdateNewChannelMessage(elsewhere, pts=56, pts_count=1), [analyst()], [other])
    await bot.push(in_supergroup("status please /status", types.PeerUser(ANALYST)), [analyst()], [supergroup()])
    edited = in_supergroup("/status", types.PeerUser(ANALYST)).message
    await bot.push(types.UpdateEditChannelMessage(edited, pts=57, pts_count=1), [analyst()], [supergroup()])
    assert bot.replies == []
    assert bot.view.calls == []
    assert logs == []


async def test_a_stopped_listener_answers_nothing(bot: Bot) -> None:
    bot.listener.stop()
    await bot.push(in_supergroup("/help", types.PeerUser(ANALYST)), [analyst()], [supergroup()])
    assert bot.replies == []
    bot.listener.start()


async def test_a_reply_that_fails_is_logged_not_raised(bot: Bot, logs: Logs) -> None:
    failure = rpc(403, "CHAT_WRITE_FORBIDDEN")
    bot.faults.append(failure)
    await bot.push(in_supergroup("/help", types.PeerUser(ANALYST)), [analyst()], [supergroup()])
    assert len(bot.replies) == 1
    failed = [e for e in logs if e["event"] == "command.reply_failed"]
    assert [(e["log_level"], e["chat"], e["error"]) for e in failed] == [("warning", CHAT, str(failure))]
