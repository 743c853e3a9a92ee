"""Analyst commands: only allowlisted ids are answered, each command's reply is exact and escaped.

A fake `ServiceView` pins each reply line; a real `LiveView` over a replayed archive checks /last,
/search, /mute → /rules → /unmute, /channels and /status against what the real code path stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from telethon.extensions import html as telethon_html
from telethon.tl import types

from bot.alerts.commands import HELP, MAX_LAST, CommandHandler
from bot.alerts.html import visible_length
from bot.alerts.notifiers import JsonlNotifier
from bot.alerts.outbox import Dispatcher
from bot.pipeline import Pipeline, RunStats
from bot.rules.engine import Engine
from bot.settings import ChannelConfig, Channels
from bot.sources.replay import ReplaySource
from bot.status import LiveView
from bot.store.sqlite import SQLiteStore
from tests.conftest import Logs
from tests.helpers import T0, write_jsonl

MSK = ZoneInfo("Europe/Moscow")
ANALYST = 7001
STRANGER = 4242


def iso_ago(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat(timespec="seconds")


def visible(reply: str) -> tuple[str, list[Any]]:
    """What Telegram shows for the reply, and its formatting entities, as Telethon parses the HTML."""
    text, entities = telethon_html.parse(reply)
    return text, list(entities)


def links(reply: str) -> list[str]:
    return [e.url for e in visible(reply)[1] if isinstance(e, types.MessageEntityTextUrl)]


# --- a fake service ---------------------------------------------------------------------------------


def alert(
    n: int, category: str = "missile", *, suppressed: str | None = None, title: str | None = "Вячеслав Гладков"
) -> dict[str, Any]:
    return {
        "id": f"a{n}",
        "category": category,
        "channel_id": 1902000001,
        "channel_title": title,
        "date": (T0 + timedelta(minutes=n)).isoformat(),
        "link": f"https://t.me/gladkov_demo/{4100 + n}",
        "text": f"Ракетная опасность №{n}",
        "suppressed": suppressed,
    }


QUIET: dict[str, Any] = {
    **dict.fromkeys(("followed", "unavailable", "queued_events", "pending_deliveries", "dead_letters"), 0),
    **dict.fromkeys(("posts", "alerts", "search_lag", "flood_waits", "flood_seconds"), 0),
}


class FakeView:
    """The ServiceView protocol over plain lists; records every call so a test can tell what was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.status_doc: dict[str, Any] = dict(QUIET)
        self.alerts: list[Mapping[str, Any]] = []
        self.hits: list[Mapping[str, Any]] = []
        self.muted: dict[str, datetime] = {}
        self.rule_list: list[Mapping[str, Any]] = []
        self.channel_list: list[Mapping[str, Any]] = []

    async def status(self) -> Mapping[str, Any]:
        self.calls.append(("status",))
        return self.status_doc

    async def last(self, count: int, category: str | None) -> list[Mapping[str, Any]]:
        self.calls.append(("last", count, category))
        return [a for a in self.alerts if category in (None, a["category"])][:count]

    async def search(self, query: str, limit: int) -> list[Mapping[str, Any]]:
        self.calls.append(("search", query, limit))
        return self.hits[:limit]

    async def mute(self, target: str, until: datetime, by: int) -> None:
        self.calls.append(("mute", target, until, by))
        self.muted[target] = until

    async def unmute(self, target: str) -> bool:
        self.calls.append(("unmute", target))
        return self.muted.pop(target, None) is not None

    async def mutes(self) -> list[Mapping[str, Any]]:
        self.calls.append(("mutes",))
        mutes: list[Mapping[str, Any]] = [
            {"target": t, "until": u.isoformat(), "created_by": ANALYST} for t, u in self.muted.items()
        ]
        return mutes

    def rules(self) -> list[Mapping[str, Any]]:
        self.calls.append(("rules",))
        return self.rule_list

    async def channels(self) -> list[Mapping[str, Any]]:
        self.calls.append(("channels",))
        return self.channel_list


@pytest.fixture
def view() -> FakeView:
    return FakeView()


@pytest.fixture
def handler(view: FakeView) -> CommandHandler:
    return CommandHandler(view, frozenset({ANALYST}), MSK)


EVERY_COMMAND = [
    "/help",
    "/start",
    "/status",
    "/last",
    "/last 3 missile",
    "/search ракета",
    "/mute @kursk_gov 2h",
    "/unmute @kursk_gov",
    "/rules",
    "/channels",
    "/frobnicate",
]


# --- access control ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", EVERY_COMMAND)
async def test_nobody_is_answered_by_default(view: FakeView, text: str, logs: Logs) -> None:
    nobody = CommandHandler(view, frozenset(), MSK)
    assert await nobody.handle(text, ANALYST) is None
    assert view.calls == []  # not even /mute reached the service
    command = text[1:].split(" ")[0]
    assert [(e["event"], e["log_level"], e["command"], e["user_id"]) for e in logs] == [
        ("command.denied", "warning", command, ANALYST)
    ]
    assert "ANALYST_USER_IDS" in logs[0]["hint"]


@pytest.mark.parametrize("text", EVERY_COMMAND)
async def test_an_id_not_in_the_allowlist_is_ignored(
    handler: CommandHandler, view: FakeView, text: str, logs: Logs
) -> None:
    assert await handler.handle(text, STRANGER) is None
    assert view.calls == []
    assert [(e["event"], e["user_id"]) for e in logs] == [("command.denied", STRANGER)]


async def test_a_message_without_a_sender_is_ignored(handler: CommandHandler, view: FakeView, logs: Logs) -> None:
    """An anonymous group admin or a channel posting into the chat has no user id."""
    assert await handler.handle("/mute @kursk_gov 2h", None) is None
    assert view.calls == []
    assert [(e["event"], e["command"], e["user_id"]) for e in logs] == [("command.denied", "mute", None)]


async def test_an_allowlisted_id_is_answered(handler: CommandHandler, logs: Logs) -> None:
    assert await handler.handle("/help", ANALYST) == HELP
    assert [(e["event"], e["command"], e["user_id"]) for e in logs] == [("command.received", "help", ANALYST)]


@pytest.mark.parametrize("text", ["/help@tgmon_alerts_bot", "/HELP", "/Help@TgmonBot", "/start"])
async def test_command_forms(handler: CommandHandler, text: str) -> None:
    assert await handler.handle(text, ANALYST) == HELP


async def test_bot_suffix_with_arguments(handler: CommandHandler, view: FakeView) -> None:
    reply = await handler.handle("/last@tgmon_alerts_bot 3 MISSILE", ANALYST)
    assert reply == "No alerts yet in missile."
    assert view.calls == [("last", 3, "missile")]


async def test_a_command_for_another_bot_is_left_to_it(handler: CommandHandler, view: FakeView, logs: Logs) -> None:
    """Two bots in one chat: `/mute@other_bot` must not be carried out by this one too."""
    assert await handler.handle("/mute@other_bot @gladkov_demo 1h", ANALYST, me="tgmon_alerts_bot") is None
    assert await handler.handle("/mute@other_bot @gladkov_demo 1h", 999, me="tgmon_alerts_bot") is None
    assert view.calls == []
    assert logs == []  # not denied either: it was never ours
    assert await handler.handle("/help@TGMON_alerts_bot", ANALYST, me="tgmon_alerts_bot") == HELP
    assert await handler.handle("/help", ANALYST, me="tgmon_alerts_bot") == HELP


async def test_arguments_may_follow_on_a_new_line(handler: CommandHandler, view: FakeView) -> None:
    await handler.handle("/last\n3", ANALYST)
    assert view.calls == [("last", 3, None)]


@pytest.mark.parametrize("text", ["hello", "", " /help", "help /status", "🚀 /last"])
async def test_text_that_is_not_a_command_is_not_answered(
    handler: CommandHandler, view: FakeView, text: str, logs: Logs
) -> None:
    assert await handler.handle(text, ANALYST) is None
    assert await handler.handle(text, STRANGER) is None
    assert view.calls == []
    assert logs == []  # chat traffic is neither a command nor a denial


# --- each command -------------------------------------------------------------------------------------


async def test_help_lists_commands_that_all_exist(handler: CommandHandler) -> None:
    listed = sorted(set(re.findall(r"^/(\w+)", HELP, re.MULTILINE)))
    assert listed == ["channels", "help", "last", "mute", "rules", "search", "status", "unmute"]
    for name in listed:
        reply = await handler.handle(f"/{name}", ANALYST)
        assert reply is not None
        assert not reply.startswith("Unknown command"), name
    text, _ = visible(HELP)
    assert "/mute @kursk_gov 2h" in text  # the <code> examples parse as Telegram HTML


async def test_status(handler: CommandHandler, view: FakeView) -> None:
    view.status_doc = {
        "followed": 2,
        "unavailable": 1,
        "last_update_at": iso_ago(150),
        "last_sync_at": None,
        "queued_events": 3,
        "pending_deliveries": 4,
        "dead_letters": 1,
        "posts": 120,
        "alerts": 9,
        "search_lag": 0,
        "flood_waits": 2,
        "flood_seconds": 41.6,
        "channels": [
            {"name": "<i>Курск</i> & co", "last_post": iso_ago(3 * 3600 + 5 * 60 + 10)},
            {"name": "Белгород", "last_post": None},
        ],
        "problems": [{"timestamp": f"2024-03-12T03:00:0{i}.123456Z", "event": f"source.<ev{i}>"} for i in range(7)],
    }
    reply = await handler.handle("/status", ANALYST)
    assert reply is not None
    assert reply.split("\n") == [
        "<b>tgmon status</b>",
        "channels: 2 followed, 1 unavailable",
        "live updates: last 2 min ago; catch-up: last never",
        "queues: 3 events to store, 4 alert deliveries pending, 1 dead-lettered",
        "archive: 120 posts, 9 alerts; search lag 0",
        "FloodWaits: 2 (42 s)",
        "<b>last post per channel</b>",
        "&lt;i&gt;Курск&lt;/i&gt; &amp; co: 3 h 05 min ago",
        "Белгород: never",
        "<b>recent problems</b>",
        *[f"2024-03-12T03:00:0{i} source.&lt;ev{i}&gt;" for i in range(2, 7)],  # the last five
    ]
    assert view.calls == [("status",)]
    text, _ = visible(reply)
    assert "<i>Курск</i> & co: 3 h 05 min ago" in text


async def test_status_lists_at_most_25_channels(handler: CommandHandler, view: FakeView) -> None:
    view.status_doc = {
        **QUIET,
        "channels": [{"name": f"ch{i}", "last_post": None} for i in range(27)],
    }
    reply = await handler.handle("/status", ANALYST)
    assert reply is not None
    lines = reply.split("\n")
    assert lines[-2:] == ["ch24: never", "… and 2 more (/channels)"]
    assert sum(re.match(r"ch\d+: never$", line) is not None for line in lines) == 25


@pytest.mark.parametrize(
    ("text", "asked"),
    [
        ("/last", ("last", 5, None)),
        ("/last 3", ("last", 3, None)),
        ("/last 500", ("last", MAX_LAST, None)),
        ("/last 0", ("last", 1, None)),
        ("/last MISSILE", ("last", 5, "missile")),
        ("/last uav 2", ("last", 2, "uav")),
    ],
)
async def test_last_count_and_category(
    handler: CommandHandler, view: FakeView, text: str, asked: tuple[Any, ...]
) -> None:
    await handler.handle(text, ANALYST)
    assert view.calls == [asked]


async def test_last_marks_suppressed_alerts(handler: CommandHandler, view: FakeView) -> None:
    view.alerts = [
        alert(3, suppressed="muted (channel:@gladkov_demo)"),
        alert(2, "uav", suppressed="cooldown"),
        alert(1, title=None),
    ]
    reply = await handler.handle("/last", ANALYST)
    assert reply == "\n".join(
        [
            "<b>last 3 alerts</b>",
            "🚀 <b>MISSILE</b> 2024-03-12 06:03 MSK · Вячеслав Гладков <i>[muted (channel:@gladkov_demo)]</i>:"
            ' <a href="https://t.me/gladkov_demo/4103">Ракетная опасность №3</a>',
            "🛩 <b>UAV</b> 2024-03-12 06:02 MSK · Вячеслав Гладков <i>[cooldown]</i>:"
            ' <a href="https://t.me/gladkov_demo/4102">Ракетная опасность №2</a>',
            "🚀 <b>MISSILE</b> 2024-03-12 06:01 MSK · 1902000001:"  # no title: the channel id
            ' <a href="https://t.me/gladkov_demo/4101">Ракетная опасность №1</a>',
        ]
    )


async def test_last_in_a_category(handler: CommandHandler, view: FakeView) -> None:
    view.alerts = [alert(2, "uav"), alert(1)]
    reply = await handler.handle("/last 10 uav", ANALYST)
    assert reply is not None
    assert reply.split("\n")[0] == "<b>last 1 alert</b> (uav)"
    assert len(reply.split("\n")) == 2


@pytest.mark.parametrize(("text", "reply"), [("/last", "No alerts yet."), ("/last <b>", "No alerts yet in &lt;b&gt;.")])
async def test_last_when_there_are_none(handler: CommandHandler, text: str, reply: str) -> None:
    assert await handler.handle(text, ANALYST) == reply


async def test_last_escapes_titles_and_text_and_cuts_long_text(handler: CommandHandler, view: FakeView) -> None:
    long_text = "<script>alert(1)</script> & " + "слово " * 30
    view.alerts = [{**alert(1, title='Канал "<b>X</b>" & Y'), "text": long_text}]
    reply = await handler.handle("/last", ANALYST)
    assert reply is not None
    text, entities = visible(reply)
    body = text.split("\n")[1]
    assert 'Канал "<b>X</b>" & Y: <script>alert(1)</script> & слово' in body
    assert body.endswith("…")
    shown = body.split(": ", 1)[1]
    assert len(shown) == 91  # 90 characters and the ellipsis
    assert [type(e).__name__ for e in entities] == ["MessageEntityBold", "MessageEntityBold", "MessageEntityTextUrl"]


async def test_search_needs_words(handler: CommandHandler, view: FakeView) -> None:
    assert await handler.handle("/search", ANALYST) == "⚠️ usage: /search WORDS (each word in any of its forms)"
    assert await handler.handle("/search   ", ANALYST) == "⚠️ usage: /search WORDS (each word in any of its forms)"
    assert view.calls == []


async def test_search(handler: CommandHandler, view: FakeView) -> None:
    view.hits = [
        {
            "channel_id": 1902000005,
            "channel_title": None,
            "date": "2024-03-12T03:04:00+00:00",
            "link": "https://t.me/c/1902000005/311",
            "text": "Объявлена  эвакуация\nжителей <Шебекино>",
        }
    ]
    reply = await handler.handle("/search эвакуации <Шебекино>", ANALYST)
    assert view.calls == [("search", "эвакуации <Шебекино>", 10)]
    assert reply == (
        "<b>1 post</b> for эвакуации &lt;Шебекино&gt;\n"
        "2024-03-12 06:04 MSK · 1902000005:"
        ' <a href="https://t.me/c/1902000005/311">Объявлена эвакуация жителей &lt;Шебекино&gt;</a>'
    )


async def test_search_finds_nothing(handler: CommandHandler, view: FakeView) -> None:
    assert await handler.handle('/search "<b>бомба</b>" & co', ANALYST) == (
        "Nothing found for &lt;b&gt;бомба&lt;/b&gt; &amp; co."
    )
    assert view.calls == [("search", "<b>бомба</b> & co", 10)]


async def test_search_with_an_unbalanced_quote_keeps_the_words(handler: CommandHandler, view: FakeView) -> None:
    await handler.handle("/search don't panic", ANALYST)
    assert view.calls == [("search", "don't panic", 10)]


async def test_mute(handler: CommandHandler, view: FakeView, logs: Logs) -> None:
    before = datetime.now(UTC)
    reply = await handler.handle("/mute @Kursk_Gov 2h", ANALYST)
    after = datetime.now(UTC)
    ((name, target, until, by),) = view.calls
    assert (name, target, by) == ("mute", "channel:@kursk_gov", ANALYST)
    assert before + timedelta(hours=2) <= until <= after + timedelta(hours=2)
    local = until.astimezone(MSK)
    assert reply == f"🔇 channel:@kursk_gov muted until {local:%Y-%m-%d %H:%M} MSK."
    muted = [e for e in logs if e["event"] == "command.muted"]
    assert [(e["target"], e["user_id"]) for e in muted] == [("channel:@kursk_gov", ANALYST)]


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("/mute tag:News 1d", "tag:news"),
        ("/mute category:UAV 30m", "category:uav"),
        ("/mute rule:Drone-Attack 90s", "rule:Drone-Attack"),
        ("/mute channel:1902000001 1w", "channel:1902000001"),
        ("/mute channel:@Gladkov_Demo 10", "channel:@gladkov_demo"),
    ],
)
async def test_mute_targets(handler: CommandHandler, view: FakeView, text: str, target: str) -> None:
    reply = await handler.handle(text, ANALYST)
    assert reply is not None
    assert reply.startswith(f"🔇 {target} muted until ")
    assert [call[1] for call in view.calls] == [target]


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        (
            "/mute kursk_gov 2h",
            "⚠️ mute target &#x27;kursk_gov&#x27;: expected channel:@name, channel:&lt;id&gt;, tag:&lt;tag&gt;,"
            " category:&lt;category&gt; or rule:&lt;id&gt;",
        ),
        (
            "/mute tag: 2h",
            "⚠️ mute target &#x27;tag:&#x27;: expected channel:@name, channel:&lt;id&gt;, tag:&lt;tag&gt;,"
            " category:&lt;category&gt; or rule:&lt;id&gt;",
        ),
        ("/mute @kursk_gov soon", "⚠️ duration: expected a duration such as 90s, 10m, 2h or 1d (got &#x27;soon&#x27;)"),
        ("/mute @kursk_gov -5m", "⚠️ duration: expected a duration such as 90s, 10m, 2h or 1d (got &#x27;-5m&#x27;)"),
        ("/mute @kursk_gov", "⚠️ usage: /mute TARGET DURATION, e.g. /mute @kursk_gov 2h or /mute category:uav 30m"),
        ("/mute", "⚠️ usage: /mute TARGET DURATION, e.g. /mute @kursk_gov 2h or /mute category:uav 30m"),
        ("/mute @a 1h extra", "⚠️ usage: /mute TARGET DURATION, e.g. /mute @kursk_gov 2h or /mute category:uav 30m"),
    ],
)
async def test_mute_mistakes_are_one_line_warnings(
    handler: CommandHandler, view: FakeView, text: str, reply: str
) -> None:
    assert await handler.handle(text, ANALYST) == reply
    assert "\n" not in reply
    assert view.calls == []


async def test_unmute(handler: CommandHandler, view: FakeView) -> None:
    view.muted["channel:@kursk_gov"] = datetime(2024, 3, 12, 5, tzinfo=UTC)
    assert await handler.handle("/unmute @KURSK_GOV", ANALYST) == "🔔 channel:@kursk_gov unmuted."
    assert view.calls == [("unmute", "channel:@kursk_gov")]
    assert view.muted == {}


async def test_unmute_what_is_not_muted_lists_the_mutes(handler: CommandHandler, view: FakeView) -> None:
    view.muted = {"channel:@kursk_gov": T0, "category:<uav>": T0}
    reply = await handler.handle("/unmute tag:news", ANALYST)
    assert reply == "tag:news was not muted (muted now: channel:@kursk_gov, category:&lt;uav&gt;)."
    view.muted = {}
    assert await handler.handle("/unmute tag:news", ANALYST) == "tag:news was not muted (muted now: none)."


@pytest.mark.parametrize("text", ["/unmute", "/unmute a b"])
async def test_unmute_usage(handler: CommandHandler, view: FakeView, text: str) -> None:
    assert await handler.handle(text, ANALYST) == "⚠️ usage: /unmute TARGET"
    assert view.calls == []


async def test_unmute_bad_target(handler: CommandHandler, view: FakeView) -> None:
    reply = await handler.handle("/unmute nonsense", ANALYST)
    assert reply is not None
    assert reply.startswith("⚠️ mute target &#x27;nonsense&#x27;: expected channel:@name")
    assert view.calls == []


async def test_rules_and_mutes(handler: CommandHandler, view: FakeView) -> None:
    view.rule_list = [
        {"id": "missile-danger", "category": "missile", "severity": "high", "scope": []},
        {"id": "uav<x>", "category": "uav", "severity": "medium", "scope": ["governors", "ru"]},
        {"id": "odd", "category": "something_new", "severity": "low", "scope": []},
    ]
    assert await handler.handle("/rules", ANALYST) == "\n".join(
        [
            "<b>3 rules</b>",
            "🚀 <code>missile-danger</code> high",
            "🛩 <code>uav&lt;x&gt;</code> medium [governors, ru]",
            "⚠️ <code>odd</code> low",
        ]
    )
    view.muted = {"channel:@kursk_gov": datetime(2024, 3, 12, 5, tzinfo=UTC)}
    reply = await handler.handle("/rules", ANALYST)
    assert reply is not None
    assert reply.split("\n")[-2:] == ["<b>muted</b>", "channel:@kursk_gov until 2024-03-12 08:00 MSK"]


async def test_channels(handler: CommandHandler, view: FakeView) -> None:
    view.channel_list = [
        {
            "name": "Вячеслав <b>Гладков</b>",
            "available": True,
            "tags": ["governors", "<x>"],
            "posts": 12,
            "last_post": iso_ago(150),
        },
        {
            "name": "@closed_chan",
            "available": False,
            "unavailable_reason": "ChannelPrivateError <x>",
            "tags": [],
            "posts": 0,
            "last_post": None,
        },
    ]
    assert await handler.handle("/channels", ANALYST) == "\n".join(
        [
            "<b>2 channels</b>",
            "✅ Вячеслав &lt;b&gt;Гладков&lt;/b&gt; #governors #&lt;x&gt; · 12 posts, last 2 min ago",
            "⛔ ChannelPrivateError &lt;x&gt; @closed_chan · 0 posts, last never",
        ]
    )


async def test_channels_fits_in_one_telegram_message(handler: CommandHandler, view: FakeView) -> None:
    view.channel_list = [
        {"name": f"Оперативный штаб региона №{i}", "tags": ["governors"], "posts": 1200, "last_post": iso_ago(600)}
        for i in range(100)
    ]
    reply = await handler.handle("/channels", ANALYST)
    assert reply is not None
    assert reply.startswith("<b>100 channels</b>")
    assert visible_length(reply) <= 4096


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("/frobnicate", "Unknown command /frobnicate. /help lists them."),
        ("/<b>hi</b>", "Unknown command /&lt;b&gt;hi&lt;/b&gt;. /help lists them."),
        ("/", "Unknown command /. /help lists them."),
    ],
)
async def test_unknown_command(handler: CommandHandler, view: FakeView, text: str, reply: str) -> None:
    assert await handler.handle(text, ANALYST) == reply
    assert view.calls == []


@pytest.mark.parametrize("text", ["/_class__", "/_init__", "/_repr__"])
async def test_a_command_naming_a_dunder_is_unknown(handler: CommandHandler, text: str) -> None:
    assert await handler.handle(text, ANALYST) == f"Unknown command {text}. /help lists them."


# --- over a real archive: LiveView, the store, the pipeline -------------------------------------------

GLADKOV = {"channel_id": 1902000001, "channel_title": "Вячеслав <b>Гладков</b> & Co", "username": "gladkov_demo"}
OSINT = {"channel_id": 1902000008, "channel_title": "Border OSINT Monitor", "username": "osint_monitor_demo"}
BATTALION = {"channel_id": 1902000005, "channel_title": "Сибирский батальон"}  # no username
MISSILE = "⚠️ Ракетная опасность в Белгороде. Пройдите в укрытия. <script>x</script>"
CHANNELS = Channels.of(
    [
        ChannelConfig(id=1902000001, username="gladkov_demo", tags=("governors",)),
        ChannelConfig(username="osint_monitor_demo"),
        ChannelConfig(id=1902000005, title="Батальон"),
    ]
)


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


FEED: list[dict[str, Any]] = [
    {**GLADKOV, "message_id": 4101, "timestamp": at(0), "text": MISSILE},
    {**GLADKOV, "message_id": 4102, "timestamp": at(0.5), "text": "Повторно: ракетная опасность в Белгороде!"},
    {**OSINT, "message_id": 1200, "timestamp": at(2), "text": "Air raid alert in Kyiv. Take shelter now!"},
    {**BATTALION, "message_id": 310, "timestamp": at(3), "text": "Погода в Курске хорошая"},
    {**BATTALION, "message_id": 311, "timestamp": at(5), "text": MISSILE},
]

_feeds = count()


async def replay(store: SQLiteStore, engine: Engine, tmp_path: Path, records: Sequence[Mapping[str, Any]]) -> RunStats:
    """Posts stored, their alerts raised and delivered by the service's own pipeline."""
    feed = write_jsonl(tmp_path / f"feed{next(_feeds)}.jsonl", records)
    dispatcher = Dispatcher(store, [JsonlNotifier(tmp_path / "alerts.jsonl")])
    pipeline = Pipeline(store, engine, dispatcher, CHANNELS)
    return await pipeline.run(ReplaySource([feed]), drain_timeout=60)


@dataclass
class Archive:
    store: SQLiteStore
    engine: Engine
    tmp_path: Path
    handler: CommandHandler

    async def ask(self, text: str) -> str:
        reply = await self.handler.handle(text, ANALYST)
        assert reply is not None
        return reply

    async def post(self, *records: Mapping[str, Any]) -> RunStats:
        return await replay(self.store, self.engine, self.tmp_path, records)


@pytest.fixture
async def archive(store: SQLiteStore, engine: Engine, tmp_path: Path) -> Archive:
    stats = await replay(store, engine, tmp_path, FEED)
    assert stats.outcomes == {"new": 5}
    assert stats.alerts == {"missile": 1, "air_raid": 1}
    assert stats.suppressed == {"cooldown": 1, "duplicate": 1}
    pipeline = Pipeline(store, engine, Dispatcher(store, []), CHANNELS)
    return Archive(
        store, engine, tmp_path, CommandHandler(LiveView(store, pipeline, CHANNELS), frozenset({ANALYST}), MSK)
    )


GLADKOV_SHOWN = "Вячеслав &lt;b&gt;Гладков&lt;/b&gt; &amp; Co"
MISSILE_SHOWN = "⚠️ Ракетная опасность в Белгороде. Пройдите в укрытия. &lt;script&gt;x&lt;/script&gt;"


async def test_last_over_the_archive(archive: Archive) -> None:
    assert (await archive.ask("/last")).split("\n") == [
        "<b>last 4 alerts</b>",
        f"🚀 <b>MISSILE</b> 2024-03-12 06:05 MSK · Сибирский батальон <i>[duplicate]</i>:"
        f' <a href="https://t.me/c/1902000005/311">{MISSILE_SHOWN}</a>',
        "🚨 <b>AIR RAID</b> 2024-03-12 06:02 MSK · Border OSINT Monitor:"
        ' <a href="https://t.me/osint_monitor_demo/1200">Air raid alert in Kyiv. Take shelter now!</a>',
        f"🚀 <b>MISSILE</b> 2024-03-12 06:00 MSK · {GLADKOV_SHOWN} <i>[cooldown]</i>:"
        ' <a href="https://t.me/gladkov_demo/4102">Повторно: ракетная опасность в Белгороде!</a>',
        f"🚀 <b>MISSILE</b> 2024-03-12 06:00 MSK · {GLADKOV_SHOWN}:"
        f' <a href="https://t.me/gladkov_demo/4101">{MISSILE_SHOWN}</a>',
    ]
    assert (await archive.ask("/last 2 Missile")).split("\n")[0] == "<b>last 2 alerts</b> (missile)"
    assert await archive.ask("/last evacuation") == "No alerts yet in evacuation."


async def test_search_over_the_archive(archive: Archive) -> None:
    reply = await archive.ask("/search ракетной опасности")  # other forms of the words in the posts
    assert reply.split("\n") == [
        "<b>3 posts</b> for ракетной опасности",
        f'2024-03-12 06:05 MSK · Сибирский батальон: <a href="https://t.me/c/1902000005/311">{MISSILE_SHOWN}</a>',
        f"2024-03-12 06:00 MSK · {GLADKOV_SHOWN}:"
        ' <a href="https://t.me/gladkov_demo/4102">Повторно: ракетная опасность в Белгороде!</a>',
        f'2024-03-12 06:00 MSK · {GLADKOV_SHOWN}: <a href="https://t.me/gladkov_demo/4101">{MISSILE_SHOWN}</a>',
    ]
    assert (await archive.ask("/search <script>")).split("\n") == [
        "<b>2 posts</b> for &lt;script&gt;",
        f'2024-03-12 06:05 MSK · Сибирский батальон: <a href="https://t.me/c/1902000005/311">{MISSILE_SHOWN}</a>',
        f'2024-03-12 06:00 MSK · {GLADKOV_SHOWN}: <a href="https://t.me/gladkov_demo/4101">{MISSILE_SHOWN}</a>',
    ]
    assert await archive.ask("/search шахеды") == "Nothing found for шахеды."


async def test_mute_rules_unmute_over_the_archive(archive: Archive) -> None:
    rules = await archive.ask("/rules")
    assert "<b>muted</b>" not in rules
    assert rules.split("\n")[0] == f"<b>{len(archive.engine.rules)} rules</b>"
    assert "🚀 <code>missile-danger</code> high" in rules.split("\n")

    before = datetime.now(UTC)
    reply = await archive.ask("/mute @Gladkov_Demo 2h")
    assert reply.startswith("🔇 channel:@gladkov_demo muted until ")
    (mute,) = await archive.store.mutes(datetime.now(UTC))
    assert (mute["target"], mute["created_by"]) == ("channel:@gladkov_demo", ANALYST)
    until = datetime.fromisoformat(mute["until"])
    assert timedelta(hours=2) - timedelta(seconds=1) <= until - before <= timedelta(hours=2, seconds=60)
    assert reply == f"🔇 channel:@gladkov_demo muted until {until.astimezone(MSK):%Y-%m-%d %H:%M} MSK."
    assert (await archive.ask("/rules")).split("\n")[-2:] == [
        "<b>muted</b>",
        f"channel:@gladkov_demo until {until.astimezone(MSK):%Y-%m-%d %H:%M} MSK",
    ]

    stats = await archive.post({**GLADKOV, "message_id": 4110, "timestamp": at(30), "text": MISSILE})
    assert (stats.alerts, stats.suppressed) == ({}, {"muted": 1})
    newest = (await archive.ask("/last 1")).split("\n")[1]
    assert newest.startswith(f"🚀 <b>MISSILE</b> 2024-03-12 06:30 MSK · {GLADKOV_SHOWN}")
    assert "<i>[muted (channel:@gladkov_demo)]</i>" in newest

    assert await archive.ask("/unmute tag:governors") == (
        "tag:governors was not muted (muted now: channel:@gladkov_demo)."
    )
    assert await archive.ask("/unmute @GLADKOV_demo") == "🔔 channel:@gladkov_demo unmuted."
    assert "<b>muted</b>" not in await archive.ask("/rules")
    assert await archive.ask("/unmute @gladkov_demo") == "channel:@gladkov_demo was not muted (muted now: none)."

    stats = await archive.post({**GLADKOV, "message_id": 4111, "timestamp": at(60), "text": MISSILE})
    assert (stats.alerts, stats.suppressed) == ({"missile": 1}, {})


async def test_mute_by_tag_over_the_archive(archive: Archive) -> None:
    await archive.ask("/mute tag:GOVERNORS 1h")
    stats = await archive.post(
        {**GLADKOV, "message_id": 4120, "timestamp": at(30), "text": MISSILE},
        {**OSINT, "message_id": 1300, "timestamp": at(31), "text": "Air raid alert in Odesa. Take shelter now!"},
    )
    assert (stats.alerts, stats.suppressed) == ({"air_raid": 1}, {"muted": 1})


async def test_channels_and_status_over_the_archive(archive: Archive) -> None:
    channels = (await archive.ask("/channels")).split("\n")
    assert channels[0] == "<b>3 channels</b>"
    assert [re.sub(r"last .* ago$", "last …", line) for line in channels[1:]] == [
        f"✅ {GLADKOV_SHOWN} #governors · 2 posts, last …",
        "✅ Border OSINT Monitor · 1 post, last …",
        "✅ Сибирский батальон · 2 posts, last …",
    ]
    status = (await archive.ask("/status")).split("\n")
    assert status[:6] == [
        "<b>tgmon status</b>",
        "channels: 3 followed, 0 unavailable",
        "live updates: last never; catch-up: last never",
        "queues: 0 events to store, 0 alert deliveries pending, 0 dead-lettered",
        "archive: 5 posts, 4 alerts; search lag 0",
        "FloodWaits: 0 (0 s)",
    ]
    assert status[6] == "<b>last post per channel</b>"
    assert [line.split(":")[0] for line in status[7:10]] == [
        "Сибирский батальон",
        "Border OSINT Monitor",
        GLADKOV_SHOWN,
    ]


async def test_a_post_without_a_link_is_not_linked_to_none(archive: Archive) -> None:
    # A replayed post without a message id gets a synthetic (negative) id, and no t.me link.
    stats = await archive.post({**BATTALION, "timestamp": at(40), "text": "Объявлена эвакуация жителей Шебекино"})
    assert stats.alerts == {"evacuation": 1}
    for reply in (await archive.ask("/last 1"), await archive.ask("/search эвакуация")):
        assert "Объявлена эвакуация жителей Шебекино" in visible(reply)[0]
        assert "None" not in links(reply)
        assert 'href="None"' not in reply


@pytest.mark.parametrize(
    ("target", "channel"),
    [("channel:-1001902000005", BATTALION), ("channel:gladkov_demo", GLADKOV), ("@", GLADKOV)],
    ids=["bot-api-id", "username-without-at", "bare-at"],
)
async def test_a_mute_is_refused_or_effective(archive: Archive, target: str, channel: Mapping[str, Any]) -> None:
    """The analyst is never told 🔇 for a target that silences nothing."""
    reply = await archive.ask(f"/mute {target} 1h")
    if reply.startswith("⚠️"):
        return
    assert reply.startswith("🔇")
    stats = await archive.post({**channel, "message_id": 5000, "timestamp": at(30), "text": MISSILE})
    assert stats.suppressed == {"muted": 1}
