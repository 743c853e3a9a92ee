"""Noise control through the real path: alerts raised inside the storing transaction, then delivered.

Duplicates across channels, edits, cooldown, mutes, routes, alerts.toml and all-clears sent as replies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.alerts.notifiers import EditingNotifier, ReplyingNotifier
from bot.alerts.outbox import Dispatcher, alert_id, raise_alerts
from bot.alerts.policy import (
    DEFAULT_COOLDOWN,
    DEFAULT_DEDUP_WINDOW,
    AlertPolicy,
    Route,
    load_alerts_config,
    mute_target,
    mute_targets,
    parse_duration,
)
from bot.errors import ConfigError, UserError
from bot.models import Channel, Edit, Post
from bot.rules.engine import Document, Engine, Match, Verdict, verdict
from bot.store import AlertRecord, Mute, WriteTx
from bot.store.sqlite import SQLiteStore
from tests.alerts.test_outbox import GLADKOV, run_dispatcher
from tests.helpers import REPO, T0

KURSK = Channel(1902000002, "Курская область", "kursk_gov")
BELNEWS = Channel(1902000003, "Белгород новости", "bel_news")

# One statement, as three channels carry it: case, ё/е, punctuation, emoji, links and mentions differ.
STATEMENT = "⚠️ Ракетная опасность в Белгороде! Всё население — в укрытия. https://t.me/gladkov_demo/1"
REPOST = "ракетная ОПАСНОСТЬ в белгороде: все население в укрытия 🚨 @kursk_news"
FORWARD = "РАКЕТНАЯ опасность в Белгороде... Всё население в укрытия!!! t.me/bel_news/5"
OTHER_WORDS = "Ракетная опасность в Белгороде. Всё население в подвалы."
ALL_CLEAR_MISSILE = "🟢 Отбой ракетной опасности."
BARE_ALL_CLEAR = "Отбой."


# --- fakes and helpers -------------------------------------------------------------------------------


class Notes:
    """A notifier that keeps every payload it was given; remote ids are `m1`, `m2`, … in send order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[dict[str, Any]] = []
        self.remotes: dict[str, str] = {}

    async def send(self, alert: Mapping[str, Any]) -> str | None:
        self.sent.append(dict(alert))
        remote = f"m{len(self.sent)}"
        self.remotes[str(alert["id"])] = remote
        return remote

    async def close(self) -> None:
        return None


class Editing(Notes):
    """Like Telegram: edits a sent alert (by its remote id) when more channels carried it."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.edits: list[tuple[str, dict[str, Any]]] = []

    async def edit(self, remote_id: str, alert: Mapping[str, Any]) -> None:
        self.edits.append((remote_id, dict(alert)))


class Replying(Notes):
    """Like Telegram: sends an all-clear as a reply to the alarm it ends."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.replies: list[tuple[str, str]] = []  # (all-clear id, the remote id replied to)

    async def send_reply(self, alert: Mapping[str, Any], reply_to: str) -> str | None:
        self.replies.append((str(alert["id"]), reply_to))
        return await self.send(alert)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def source_ids(alert: Mapping[str, Any]) -> list[int]:
    return [int(source["channel_id"]) for source in alert["sources"]]


async def raise_with(
    store: SQLiteStore,
    events: Sequence[Post | Edit],
    verdicts: Sequence[Verdict],
    policy: AlertPolicy,
) -> list[AlertRecord]:
    """Store the events and raise their alerts in one transaction, as the pipeline does."""

    def job(tx: WriteTx) -> list[AlertRecord]:
        outcomes = tx.apply(list(events))
        return raise_alerts(tx, list(events), outcomes, list(verdicts), policy)

    return await store.write(job)


async def raise_texts(
    store: SQLiteStore,
    engine: Engine,
    events: Sequence[Post | Edit],
    policy: AlertPolicy | None = None,
) -> list[AlertRecord]:
    """`raise_with`, the verdicts from the real rule pack."""
    verdicts = [engine.verdict(Document(event.text)) for event in events]
    return await raise_with(store, events, verdicts, policy or AlertPolicy(["chat"]))


async def stored(store: SQLiteStore) -> list[dict[str, Any]]:
    """Every stored alert's payload, oldest first, suppressed ones included."""
    return list(reversed(await store.recent_alerts(1000)))


async def pending_ids(store: SQLiteStore, destination: str = "chat") -> list[str]:
    return [d.alert_id for d in await store.due_deliveries(destination, 1000)]


def uav(text: str) -> Verdict:
    return verdict([Match("uav-danger", "uav", "high", 0, len(text.split()[0]), "ракетная")])


# --- one statement, many channels --------------------------------------------------------------------


async def test_same_statement_from_three_channels_is_one_alert_listing_all(store: SQLiteStore, engine: Engine) -> None:
    posts = [
        Post(GLADKOV, 1, at(0), STATEMENT),
        Post(KURSK, 7, at(60), REPOST),
        Post(BELNEWS, 5, at(9 * 60), FORWARD),
    ]
    raised = await raise_texts(store, engine, posts)
    first = alert_id(GLADKOV.id, 1, "missile")
    assert [(a.id, a.suppressed, a.merged_into) for a in raised] == [
        (first, None, None),
        (alert_id(KURSK.id, 7, "missile"), "duplicate", first),
        (alert_id(BELNEWS.id, 5, "missile"), "duplicate", first),
    ]
    assert len({a.fingerprint for a in raised}) == 1
    assert await pending_ids(store) == [first]

    notes = Notes("chat")
    assert await run_dispatcher(Dispatcher(store, [notes]))
    (delivered,) = notes.sent
    assert delivered["id"] == first
    assert source_ids(delivered) == [GLADKOV.id, KURSK.id, BELNEWS.id]
    assert [s["link"] for s in delivered["sources"]] == [
        "https://t.me/gladkov_demo/1",
        "https://t.me/kursk_gov/7",
        "https://t.me/bel_news/5",
    ]
    assert [s["date"] for s in delivered["sources"]] == [
        "2024-03-12T03:00:00+00:00",
        "2024-03-12T03:01:00+00:00",
        "2024-03-12T03:09:00+00:00",
    ]
    payloads = await stored(store)
    assert [(p["id"], p["suppressed"]) for p in payloads] == [(a.id, a.suppressed) for a in raised]
    assert source_ids(payloads[0]) == [GLADKOV.id, KURSK.id, BELNEWS.id]
    assert source_ids(payloads[1]) == [KURSK.id]  # a duplicate keeps only its own post
    stats = await store.stats()
    assert (stats["alerts"], stats["deliveries"], stats["pending_deliveries"]) == (3, {"chat": {"sent": 1}}, 0)


async def test_duplicate_across_transactions_is_folded_too(store: SQLiteStore, engine: Engine) -> None:
    (first,) = await raise_texts(store, engine, [Post(GLADKOV, 1, at(0), STATEMENT)])
    (second,) = await raise_texts(store, engine, [Post(KURSK, 7, at(120), REPOST)])
    assert (second.suppressed, second.merged_into) == ("duplicate", first.id)
    assert await pending_ids(store) == [first.id]
    (payload, _) = await stored(store)
    assert source_ids(payload) == [GLADKOV.id, KURSK.id]


async def test_sent_alert_is_edited_to_add_each_new_source(store: SQLiteStore, engine: Engine) -> None:
    policy = AlertPolicy(["telegram:1", "jsonl"])
    (first,) = await raise_texts(store, engine, [Post(GLADKOV, 1, at(0), STATEMENT)], policy)
    telegram, jsonl = Editing("telegram:1"), Notes("jsonl")
    assert isinstance(telegram, EditingNotifier)
    assert not isinstance(jsonl, EditingNotifier)
    assert await run_dispatcher(Dispatcher(store, [telegram, jsonl]))
    assert [a["id"] for a in telegram.sent] == [first.id]
    assert telegram.edits == []

    await raise_texts(store, engine, [Post(KURSK, 7, at(120), REPOST)], policy)
    assert await run_dispatcher(Dispatcher(store, [telegram, jsonl]))
    assert len(telegram.sent) == len(jsonl.sent) == 1  # edited, not sent again
    ((remote, edited),) = telegram.edits
    assert remote == "m1"
    assert edited["id"] == first.id
    assert source_ids(edited) == [GLADKOV.id, KURSK.id]

    await raise_texts(store, engine, [Post(BELNEWS, 5, at(300), FORWARD)], policy)
    assert await run_dispatcher(Dispatcher(store, [telegram, jsonl]))
    assert [(r, source_ids(a)) for r, a in telegram.edits] == [
        ("m1", [GLADKOV.id, KURSK.id]),
        ("m1", [GLADKOV.id, KURSK.id, BELNEWS.id]),
    ]
    assert await run_dispatcher(Dispatcher(store, [telegram, jsonl]))
    assert len(telegram.edits) == 2  # an edit is made once
    assert len(telegram.sent) == len(jsonl.sent) == 1
    assert (await store.stats())["pending_deliveries"] == 0


async def test_alert_sent_with_all_its_sources_is_not_edited(store: SQLiteStore, engine: Engine) -> None:
    policy = AlertPolicy(["telegram:1"])
    await raise_texts(store, engine, [Post(GLADKOV, 1, at(0), STATEMENT), Post(KURSK, 7, at(60), REPOST)], policy)
    telegram = Editing("telegram:1")
    assert await run_dispatcher(Dispatcher(store, [telegram]))
    (sent,) = telegram.sent
    assert source_ids(sent) == [GLADKOV.id, KURSK.id]  # the copy sent already lists both
    assert telegram.edits == []  # nothing to bring up to date


async def test_outside_the_window_is_a_new_alert(store: SQLiteStore, engine: Engine) -> None:
    window = DEFAULT_DEDUP_WINDOW.total_seconds()
    raised = await raise_texts(
        store,
        engine,
        [
            Post(GLADKOV, 1, at(0), STATEMENT),
            Post(KURSK, 7, at(window - 1), REPOST),
            Post(BELNEWS, 5, at(window + 1), FORWARD),  # 10 min 1 s after the first
        ],
    )
    assert [(a.channel_id, a.suppressed) for a in raised] == [
        (GLADKOV.id, None),
        (KURSK.id, "duplicate"),
        (BELNEWS.id, None),
    ]
    assert await pending_ids(store) == [raised[0].id, raised[2].id]


async def test_twin_posted_long_after_is_not_a_duplicate(store: SQLiteStore, engine: Engine) -> None:
    # A catch-up reads channels one after another: a later post of one channel is stored first.
    (later,) = await raise_texts(store, engine, [Post(GLADKOV, 1, at(6 * 3600), STATEMENT)])
    (earlier,) = await raise_texts(store, engine, [Post(KURSK, 7, at(0), REPOST)])  # six hours before it
    assert later.fingerprint == earlier.fingerprint
    assert (earlier.suppressed, earlier.merged_into) == (None, None)
    assert await pending_ids(store) == [later.id, earlier.id]


async def test_dedup_window_is_configurable(store: SQLiteStore, engine: Engine) -> None:
    policy = AlertPolicy(["chat"], dedup_window=timedelta(minutes=1))
    raised = await raise_texts(
        store, engine, [Post(GLADKOV, 1, at(0), STATEMENT), Post(KURSK, 7, at(61), REPOST)], policy
    )
    assert [a.suppressed for a in raised] == [None, None]
    off = AlertPolicy(["chat"], dedup_window=timedelta(0))
    (again,) = await raise_texts(store, engine, [Post(BELNEWS, 5, at(62), FORWARD)], off)
    assert again.suppressed is None


async def test_same_words_in_another_category_is_a_new_alert(store: SQLiteStore, engine: Engine) -> None:
    posts = [Post(GLADKOV, 1, at(0), STATEMENT), Post(KURSK, 7, at(30), REPOST)]
    raised = await raise_with(store, posts, [engine.verdict(Document(STATEMENT)), uav(REPOST)], AlertPolicy(["chat"]))
    assert [(a.category, a.suppressed) for a in raised] == [("missile", None), ("uav", None)]
    assert raised[0].fingerprint == raised[1].fingerprint
    assert await pending_ids(store) == [a.id for a in raised]


async def test_other_words_or_same_channel_are_new_alerts(store: SQLiteStore, engine: Engine) -> None:
    raised = await raise_texts(
        store,
        engine,
        [
            Post(GLADKOV, 1, at(0), STATEMENT),
            Post(KURSK, 7, at(30), OTHER_WORDS),  # "подвалы", not "укрытия": another statement
            Post(GLADKOV, 2, at(120), REPOST),  # the same channel again: not a source of its own alert
        ],
    )
    assert [a.suppressed for a in raised] == [None, None, None]
    assert [a.merged_into for a in raised] == [None, None, None]
    assert raised[0].fingerprint == raised[2].fingerprint != raised[1].fingerprint


# --- edits ---------------------------------------------------------------------------------------------


async def test_typo_fix_of_an_alerted_post_stays_quiet(store: SQLiteStore, engine: Engine) -> None:
    typo = "Ракетная опасность в Белгороде. Пройдите в укрытя."
    (first,) = await raise_texts(store, engine, [Post(GLADKOV, 1, at(0), typo)])
    fixed = Edit(Channel(GLADKOV.id), 1, at(20), "Ракетная опасность в Белгороде. Пройдите в укрытия.")
    assert engine.verdict(Document(fixed.text)).category == "missile"
    assert await raise_texts(store, engine, [fixed]) == []
    notes = Notes("chat")
    assert await run_dispatcher(Dispatcher(store, [notes]))
    assert [a["id"] for a in notes.sent] == [first.id]
    assert notes.sent[0]["text"] == typo  # the alert as raised; the edit changed nothing
    stats = await store.stats()
    assert (stats["alerts"], stats["edits"]) == (1, 1)


async def test_edit_that_changes_the_category_alerts_once(store: SQLiteStore, engine: Engine) -> None:
    (missile,) = await raise_texts(store, engine, [Post(GLADKOV, 1, at(0), STATEMENT)])
    to_uav = Edit(Channel(GLADKOV.id), 1, at(30), "Атака БПЛА на Белгород. Шахеды над городом")
    (raised,) = await raise_texts(store, engine, [to_uav])
    assert (raised.category, raised.payload["edited"], raised.suppressed) == ("uav", True, None)
    assert raised.payload["date"] == "2024-03-12T03:00:30+00:00"  # the edit's time
    assert raised.payload["channel_username"] == "gladkov_demo"  # from the stored channel
    back = Edit(Channel(GLADKOV.id), 1, at(40), STATEMENT)  # back to a category already alerted
    assert await raise_texts(store, engine, [back]) == []
    assert await raise_texts(store, engine, [back]) == []  # and a repeat of the edit
    notes = Notes("chat")
    assert await run_dispatcher(Dispatcher(store, [notes]))
    assert [(a["id"], a["category"], a["edited"]) for a in notes.sent] == [
        (missile.id, "missile", False),
        (raised.id, "uav", True),
    ]


# --- cooldown ----------------------------------------------------------------------------------------


async def test_cooldown_by_post_time_per_channel_and_category(store: SQLiteStore, engine: Engine) -> None:
    texts = ["Ракетная опасность в Белгороде.", "Ракетная опасность, Белгородский район!", "Ракетная опасность снова"]
    raised = await raise_texts(
        store,
        engine,
        [
            Post(GLADKOV, 1, at(0), texts[0]),
            Post(GLADKOV, 2, at(59), texts[1]),  # within 60 s of the first: held back
            Post(KURSK, 3, at(30), texts[2]),  # another channel: its own cooldown
            Post(GLADKOV, 4, at(40), "Атака БПЛА на Белгород"),  # another category
            Post(GLADKOV, 5, at(61), "Ракетная опасность над Белгородом"),  # 61 s after the last one sent
        ],
    )
    assert [(a.message_id, a.category, a.suppressed) for a in raised] == [
        (1, "missile", None),
        (2, "missile", "cooldown"),
        (3, "missile", None),
        (4, "uav", None),
        (5, "missile", None),
    ]
    assert await pending_ids(store) == [raised[i].id for i in (0, 2, 3, 4)]
    held = (await stored(store))[1]
    assert (held["id"], held["suppressed"]) == (raised[1].id, "cooldown")


async def test_cooldown_counts_post_time_not_raise_time(store: SQLiteStore, engine: Engine) -> None:
    # Raised a moment apart (a catch-up), posted two minutes apart: both go out.
    raised = await raise_texts(
        store,
        engine,
        [Post(GLADKOV, 1, at(0), "Ракетная опасность в Белгороде."), Post(GLADKOV, 2, at(120), OTHER_WORDS)],
    )
    assert [a.suppressed for a in raised] == [None, None]


async def test_cooldown_is_configurable_and_can_be_off(store: SQLiteStore, engine: Engine) -> None:
    long = AlertPolicy(["chat"], cooldown=timedelta(minutes=5))
    first = await raise_texts(
        store,
        engine,
        [Post(GLADKOV, 1, at(0), "Ракетная опасность в Белгороде."), Post(GLADKOV, 2, at(200), OTHER_WORDS)],
        long,
    )
    assert [a.suppressed for a in first] == [None, "cooldown"]
    off = AlertPolicy(["chat"], cooldown=timedelta(0))
    (third,) = await raise_texts(store, engine, [Post(GLADKOV, 3, at(201), "Ракетная опасность снова")], off)
    assert third.suppressed is None


async def test_all_clears_are_never_held_back(store: SQLiteStore, engine: Engine) -> None:
    raised = await raise_texts(
        store,
        engine,
        [
            Post(GLADKOV, 1, at(0), "Ракетная опасность в Белгороде."),
            Post(GLADKOV, 2, at(10), ALL_CLEAR_MISSILE),
            Post(GLADKOV, 3, at(20), BARE_ALL_CLEAR),  # a second all-clear 10 s after the first
        ],
    )
    assert [(a.category, a.suppressed) for a in raised] == [("missile", None), ("all_clear", None), ("all_clear", None)]
    assert await pending_ids(store) == [a.id for a in raised]


async def test_suppressed_alerts_are_stored_and_never_delivered(store: SQLiteStore, engine: Engine) -> None:
    policy = AlertPolicy(["chat", "jsonl"])
    raised = await raise_texts(
        store,
        engine,
        [Post(GLADKOV, 1, at(0), STATEMENT), Post(GLADKOV, 2, at(5), OTHER_WORDS), Post(KURSK, 3, at(6), REPOST)],
        policy,
    )
    assert [a.suppressed for a in raised] == [None, "cooldown", "duplicate"]
    chat, jsonl = Notes("chat"), Notes("jsonl")
    assert await run_dispatcher(Dispatcher(store, [chat, jsonl]))
    assert [a["id"] for a in chat.sent] == [a["id"] for a in jsonl.sent] == [raised[0].id]
    assert [(p["id"], p["suppressed"]) for p in await stored(store)] == [
        (raised[0].id, None),
        (raised[1].id, "cooldown"),
        (raised[2].id, "duplicate"),
    ]
    stats = await store.stats()
    assert (stats["alerts"], stats["deliveries"]) == (3, {"chat": {"sent": 1}, "jsonl": {"sent": 1}})


# --- mutes ---------------------------------------------------------------------------------------------


async def add_mute(store: SQLiteStore, target: str, until: datetime) -> None:
    await store.write(lambda tx: tx.add_mute(Mute(target, until)))


@pytest.mark.parametrize(
    ("typed", "target"),
    [
        ("@Gladkov_Demo", "channel:@gladkov_demo"),
        ("channel:@gladkov_demo", "channel:@gladkov_demo"),
        (f"channel:{GLADKOV.id}", f"channel:{GLADKOV.id}"),
        ("tag:Governors", "tag:governors"),
        ("category:Missile", "category:missile"),
        ("rule:missile-danger", "rule:missile-danger"),
    ],
)
async def test_mute_silences_matching_alerts(store: SQLiteStore, engine: Engine, typed: str, target: str) -> None:
    assert mute_target(typed) == target
    await add_mute(store, mute_target(typed), datetime.now(UTC) + timedelta(hours=2))
    policy = AlertPolicy(["chat"], tags_of=lambda cid, _name: ["Governors"] if cid == GLADKOV.id else [])
    raised = await raise_texts(
        store,
        engine,
        [Post(GLADKOV, 1, at(0), "Ракетная опасность в Белгороде."), Post(KURSK, 2, at(0), "Атака БПЛА на Курск")],
        policy,
    )
    assert [(a.channel_id, a.suppressed) for a in raised] == [(GLADKOV.id, f"muted ({target})"), (KURSK.id, None)]
    assert raised[0].payload["suppressed"] == f"muted ({target})"
    assert await pending_ids(store) == [raised[1].id]
    assert [p["suppressed"] for p in await stored(store)] == [f"muted ({target})", None]


async def test_mute_applies_to_an_edit_by_the_stored_channel_name(store: SQLiteStore, engine: Engine) -> None:
    await raise_texts(store, engine, [Post(GLADKOV, 1, at(0), "Погода")])
    await add_mute(store, mute_target("@gladkov_demo"), datetime.now(UTC) + timedelta(hours=1))
    (raised,) = await raise_texts(store, engine, [Edit(Channel(GLADKOV.id), 1, at(30), STATEMENT)])
    assert raised.suppressed == "muted (channel:@gladkov_demo)"


async def test_expired_mute_does_not_apply(store: SQLiteStore, engine: Engine) -> None:
    await add_mute(store, "channel:@gladkov_demo", datetime.now(UTC) - timedelta(seconds=5))
    await add_mute(store, "category:uav", datetime.now(UTC) + timedelta(hours=1))
    raised = await raise_texts(
        store,
        engine,
        [Post(GLADKOV, 1, at(0), "Ракетная опасность в Белгороде."), Post(GLADKOV, 2, at(5), "Атака БПЛА на Курск")],
    )
    assert [(a.category, a.suppressed) for a in raised] == [("missile", None), ("uav", "muted (category:uav)")]
    assert [m["target"] for m in await store.mutes(datetime.now(UTC))] == ["category:uav"]


async def test_unmuted_target_applies_no_more(store: SQLiteStore, engine: Engine) -> None:
    await add_mute(store, "channel:@gladkov_demo", datetime.now(UTC) + timedelta(hours=1))
    assert await store.write(lambda tx: tx.remove_mute("channel:@gladkov_demo")) is True
    assert await store.write(lambda tx: tx.remove_mute("channel:@gladkov_demo")) is False
    (raised,) = await raise_texts(store, engine, [Post(GLADKOV, 1, at(0), STATEMENT)])
    assert raised.suppressed is None


@pytest.mark.parametrize(
    ("typed", "target"),
    [
        ("@Kursk_Gov", "channel:@kursk_gov"),
        ("  @kursk_gov ", "channel:@kursk_gov"),
        ("Channel:@KURSK_GOV", "channel:@kursk_gov"),
        ("channel:1902000002", "channel:1902000002"),
        ("channel:-1001902000002", "channel:1902000002"),  # the Bot API's chat id
        ("channel:Kursk_Gov", "channel:@kursk_gov"),
        ("tag: News", "tag:news"),
        ("category:UAV", "category:uav"),
        ("rule:Drone-Attack", "rule:Drone-Attack"),  # rule ids are kept as written
    ],
)
def test_mute_target_forms(typed: str, target: str) -> None:
    assert mute_target(typed) == target


@pytest.mark.parametrize(
    "typed", ["kursk_gov", "user:5", "tag:", "category: ", "", ":uav", "@", "channel:@", "channel:-5"]
)
def test_mute_target_errors(typed: str) -> None:
    with pytest.raises(UserError) as caught:
        mute_target(typed)
    assert caught.value.lines == (
        f"mute target {typed!r}: expected channel:@name, channel:<id>, tag:<tag>, category:<category> or rule:<id>",
    )


def test_mute_targets_of_an_alert() -> None:
    alert = {
        "channel_id": 5,
        "channel_username": "Kursk_Gov",
        "category": "uav",
        "channel_tags": ["Governors", "news"],
        "rules": ["uav-danger", "shelter-call"],
    }
    assert mute_targets(alert) == [
        "channel:5",
        "category:uav",
        "channel:@kursk_gov",
        "tag:governors",
        "tag:news",
        "rule:uav-danger",
        "rule:shelter-call",
    ]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("90s", 90),
        ("90", 90),
        (90, 90),
        (1.5, 1.5),
        ("0", 0),
        ("30sec", 30),
        ("10m", 600),
        ("10min", 600),
        ("2h", 7200),
        (" 2 H ", 7200),
        ("1.5h", 5400),
        ("1d", 86400),
        ("1w", 604800),
    ],
)
def test_parse_duration_forms(value: str | int | float, seconds: float) -> None:
    assert parse_duration(value) == timedelta(seconds=seconds)


@pytest.mark.parametrize("value", ["", "abc", "2hours", "1h30m", "5y", "-5s", "h", "True"])
def test_parse_duration_errors(value: str) -> None:
    with pytest.raises(ValueError, match=r"^a duration such as 90s, 10m, 2h or 1d \(got ") as caught:
        parse_duration(value)
    assert str(caught.value) == f"a duration such as 90s, 10m, 2h or 1d (got {value!r})"


def test_parse_duration_rejects_negative_numbers_and_bools() -> None:
    with pytest.raises(ValueError, match=r"^a duration from 0 to 3660 days \(got -5\)$"):
        parse_duration(-5)
    with pytest.raises(ValueError, match=r"^a duration such as 90s, 10m, 2h or 1d \(got True\)$"):
        parse_duration(True)


def test_parse_duration_too_long_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration("1000000000d")  # `/mute @x 1000000000d` from the analyst chat


# --- routes and alerts.toml ----------------------------------------------------------------------------


async def test_routes_give_a_destination_only_its_categories_and_tags(store: SQLiteStore, engine: Engine) -> None:
    routes = {
        "evac": Route("evac", categories=frozenset({"evacuation", "missile"})),
        "governors": Route("governors", tags=frozenset({"governors"})),
        "both": Route("both", categories=frozenset({"missile"}), tags=frozenset({"governors"})),
    }
    policy = AlertPolicy(
        ["all", "evac", "governors", "both"],
        routes,
        tags_of=lambda cid, _name: ["Governors"] if cid == GLADKOV.id else ["news"],
    )
    raised = await raise_texts(
        store,
        engine,
        [
            Post(GLADKOV, 1, at(0), "Ракетная опасность в Белгороде."),
            Post(GLADKOV, 2, at(10), "Атака БПЛА на Белгород"),
            Post(KURSK, 3, at(20), "Эвакуация жителей Шебекино объявлена"),
            Post(KURSK, 4, at(30), "Ракетная опасность в Курске"),
        ],
        policy,
    )
    assert [a.category for a in raised] == ["missile", "uav", "evacuation", "missile"]
    assert [a.payload["channel_tags"] for a in raised] == [["Governors"], ["Governors"], ["news"], ["news"]]
    ids = [a.id for a in raised]
    assert await pending_ids(store, "all") == ids
    assert await pending_ids(store, "evac") == [ids[0], ids[2], ids[3]]
    assert await pending_ids(store, "governors") == [ids[0], ids[1]]
    assert await pending_ids(store, "both") == [ids[0]]
    notifiers = [Notes(name) for name in ("all", "evac", "governors", "both")]
    assert await run_dispatcher(Dispatcher(store, notifiers))
    assert [[a["id"] for a in n.sent] for n in notifiers] == [ids, [ids[0], ids[2], ids[3]], ids[:2], ids[:1]]


def test_example_alerts_toml_loads() -> None:
    config = load_alerts_config(REPO / "config" / "alerts.toml")
    assert (config.cooldown, config.dedup_window, config.routes) == (timedelta(seconds=60), timedelta(minutes=10), ())
    policy = config.policy(["console", "jsonl"], lambda _id, _name: ())
    assert (policy.cooldown, policy.dedup_window, dict(policy.routes)) == (DEFAULT_COOLDOWN, DEFAULT_DEDUP_WINDOW, {})
    assert policy.route({"category": "missile", "channel_tags": []}) == ["console", "jsonl"]


def test_missing_alerts_toml_is_the_defaults(tmp_path: Path) -> None:
    config = load_alerts_config(tmp_path / "alerts.toml")
    assert (config.cooldown, config.dedup_window, config.routes) == (DEFAULT_COOLDOWN, DEFAULT_DEDUP_WINDOW, ())
    assert config.policy(["chat"], lambda _id, _name: ()).route({"category": "uav", "channel_tags": []}) == ["chat"]


def test_alerts_toml_with_routes(tmp_path: Path) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text(
        'cooldown = "2m"\ndedup_window = 300\n'
        '[[route]]\nchat = -1001234567890\ncategories = ["evacuation", "missile"]\n'
        '[[route]]\ndestination = "jsonl"\ntags = ["Governors"]\n'
        '[[route]]\ndestination = "webhook:gone"\ncategories = ["uav"]\n',
        encoding="utf-8",
    )
    config = load_alerts_config(path)
    assert (config.cooldown, config.dedup_window, config.routes) == (
        timedelta(minutes=2),
        timedelta(minutes=5),
        (
            Route("telegram:-1001234567890", categories=frozenset({"evacuation", "missile"})),
            Route("jsonl", tags=frozenset({"governors"})),
            Route("webhook:gone", categories=frozenset({"uav"})),
        ),
    )
    policy = config.policy(["telegram:-1001234567890", "jsonl", "console"], lambda _id, _name: ())
    assert sorted(policy.routes) == ["jsonl", "telegram:-1001234567890"]  # a route to no destination is dropped
    assert policy.route({"category": "missile", "channel_tags": ["GOVERNORS"]}) == [
        "telegram:-1001234567890",
        "jsonl",
        "console",
    ]
    assert policy.route({"category": "uav", "channel_tags": []}) == ["console"]


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        (
            'colldown = "60s"\n',
            ["colldown: unknown key (check the spelling against the commented example in config/)"],
        ),
        (
            'cooldown = "ten minutes"\n',
            ["cooldown: expected a duration such as 90s, 10m, 2h or 1d (got 'ten minutes')"],
        ),
        (
            'cooldown = "1h30m"\ndedup_window = -5\n',
            [
                "cooldown: expected a duration such as 90s, 10m, 2h or 1d (got '1h30m')",
                "dedup_window: expected a duration from 0 to 3660 days (got -5)",
            ],
        ),
        (
            '[[route]]\nchat = -100123\ndestination = "jsonl"\n',
            ["route[0]: give `chat` (a Telegram chat id) or `destination`, not both"],
        ),
        (
            '[[route]]\ndestination = "jsonl"\n[[route]]\ncategories = ["uav"]\n',
            ["route[1]: give `chat` (a Telegram chat id) or `destination`, not both"],
        ),
        (
            '[[route]]\nchat = -100123\ncategories = "evacuation"\n',
            ["route[0].categories: expected a list of strings, e.g. [\"evacuation\"] (got 'evacuation')"],
        ),
        (
            '[[route]]\ndestination = "jsonl"\ntags = "governors"\n',
            ["route[0].tags: expected a list of strings, e.g. [\"evacuation\"] (got 'governors')"],
        ),
        (
            '[[route]]\ndestination = "jsonl"\nchats = 5\n',
            ["route[0].chats: unknown key (check the spelling against the commented example in config/)"],
        ),
    ],
)
def test_bad_alerts_toml_names_the_file_and_key(tmp_path: Path, text: str, problems: list[str]) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_alerts_config(path)
    assert list(caught.value.lines) == [f"{path}: {problem}" for problem in problems]


def test_alerts_toml_that_is_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text("cooldown = \n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_alerts_config(path)
    (line,) = caught.value.lines
    assert line.startswith(f"{path}: invalid TOML: ")


# --- all-clears ----------------------------------------------------------------------------------------


async def test_all_clear_is_sent_as_a_reply_to_the_alarm_it_ends(store: SQLiteStore, engine: Engine) -> None:
    (alarm,) = await raise_texts(store, engine, [Post(GLADKOV, 1, at(0), "Ракетная опасность в Белгороде.")])
    await raise_texts(store, engine, [Post(KURSK, 9, at(60), "Ракетная опасность в Курске")])
    chat = Replying("chat")
    assert isinstance(chat, ReplyingNotifier)
    assert await run_dispatcher(Dispatcher(store, [chat]))
    assert chat.remotes[alarm.id] == "m1"

    (clear,) = await raise_texts(store, engine, [Post(GLADKOV, 2, at(11 * 3600), ALL_CLEAR_MISSILE)])
    assert clear.payload["clears"] == {
        "id": alarm.id,
        "category": "missile",
        "date": "2024-03-12T03:00:00+00:00",
        "message_id": 1,
        "channel_id": GLADKOV.id,
    }
    assert await run_dispatcher(Dispatcher(store, [chat]))
    assert chat.replies == [(clear.id, "m1")]
    assert [a["id"] for a in chat.sent] == [alarm.id, alert_id(KURSK.id, 9, "missile"), clear.id]
    assert chat.sent[-1]["clears"]["id"] == alarm.id


async def test_all_clear_ends_one_alarm_once(store: SQLiteStore, engine: Engine) -> None:
    (alarm,) = await raise_texts(store, engine, [Post(GLADKOV, 1, at(0), "Ракетная опасность в Белгороде.")])
    first, second = await raise_texts(
        store, engine, [Post(GLADKOV, 2, at(600), ALL_CLEAR_MISSILE), Post(GLADKOV, 3, at(900), BARE_ALL_CLEAR)]
    )
    assert first.payload["clears"]["id"] == alarm.id
    assert second.payload["clears"] is None  # the alarm is ended already


async def test_all_clear_after_twelve_hours_or_from_another_channel_is_not_a_reply(
    store: SQLiteStore, engine: Engine
) -> None:
    await raise_texts(store, engine, [Post(GLADKOV, 1, at(0), "Ракетная опасность в Белгороде.")])
    chat = Replying("chat")
    assert await run_dispatcher(Dispatcher(store, [chat]))
    late, elsewhere = await raise_texts(
        store,
        engine,
        [
            Post(GLADKOV, 2, at(12 * 3600 + 1), ALL_CLEAR_MISSILE),
            Post(KURSK, 3, at(60), "Отбой ракетной опасности в Курске"),
        ],
    )
    assert late.payload["clears"] is None
    assert elsewhere.payload["clears"] is None
    assert await run_dispatcher(Dispatcher(store, [chat]))
    assert chat.replies == []
    assert [a["id"] for a in chat.sent[1:]] == [late.id, elsewhere.id]


async def test_all_clear_without_a_replying_notifier_is_sent_plainly(store: SQLiteStore, engine: Engine) -> None:
    (alarm,) = await raise_texts(store, engine, [Post(GLADKOV, 1, at(0), "Ракетная опасность в Белгороде.")])
    chat = Notes("chat")
    assert await run_dispatcher(Dispatcher(store, [chat]))
    (clear,) = await raise_texts(store, engine, [Post(GLADKOV, 2, at(60), ALL_CLEAR_MISSILE)])
    assert (await store.due_deliveries("chat", 10))[0].reply_to == "m1"
    assert await run_dispatcher(Dispatcher(store, [chat]))
    assert [(a["id"], (a["clears"] or {}).get("id")) for a in chat.sent] == [(alarm.id, None), (clear.id, alarm.id)]


async def test_all_clear_pending_with_its_alarm_is_still_a_reply(store: SQLiteStore, engine: Engine) -> None:
    # Both raised while the dispatcher was down (an outage, a restart): they go out in one batch.
    alarm, clear = await raise_texts(
        store,
        engine,
        [Post(GLADKOV, 1, at(0), "Ракетная опасность в Белгороде."), Post(GLADKOV, 2, at(600), ALL_CLEAR_MISSILE)],
    )
    assert clear.payload["clears"]["id"] == alarm.id
    chat = Replying("chat")
    assert await run_dispatcher(Dispatcher(store, [chat]))
    assert [a["id"] for a in chat.sent] == [alarm.id, clear.id]
    assert chat.replies == [(clear.id, "m1")]


async def test_all_clear_replies_to_the_alarm_that_was_sent(store: SQLiteStore, engine: Engine) -> None:
    alarm, repeat = await raise_texts(
        store,
        engine,
        [Post(GLADKOV, 1, at(0), "Ракетная опасность в Белгороде."), Post(GLADKOV, 2, at(30), OTHER_WORDS)],
    )
    assert repeat.suppressed == "cooldown"
    chat = Replying("chat")
    assert await run_dispatcher(Dispatcher(store, [chat]))
    (clear,) = await raise_texts(store, engine, [Post(GLADKOV, 3, at(600), ALL_CLEAR_MISSILE)])
    assert await run_dispatcher(Dispatcher(store, [chat]))
    assert [a["id"] for a in chat.sent] == [alarm.id, clear.id]
    assert chat.replies == [(clear.id, "m1")]  # under the alarm the analyst saw


async def test_all_clear_of_a_folded_channel_replies_to_the_alert_the_analyst_saw(
    store: SQLiteStore, engine: Engine
) -> None:
    """Kursk's alarm was folded into Gladkov's alert; Kursk's all-clear ends it, under Gladkov's message."""
    alarm, folded = await raise_texts(
        store, engine, [Post(GLADKOV, 1, at(0), STATEMENT), Post(KURSK, 7, at(30), REPOST)]
    )
    assert folded.suppressed == "duplicate"
    chat = Replying("chat")
    assert await run_dispatcher(Dispatcher(store, [chat]))
    (clear,) = await raise_texts(store, engine, [Post(KURSK, 8, at(900), "Отбой ракетной опасности в Курске")])
    assert clear.suppressed is None
    assert clear.payload["clears"]["id"] == alarm.id
    assert clear.payload["clears"]["channel_id"] == GLADKOV.id
    assert await run_dispatcher(Dispatcher(store, [chat]))
    assert chat.replies == [(clear.id, chat.remotes[alarm.id])]
    # Gladkov's own alarm is still open: its own all-clear replies too.
    (own,) = await raise_texts(store, engine, [Post(GLADKOV, 2, at(960), ALL_CLEAR_MISSILE)])
    assert own.payload["clears"]["id"] == alarm.id


async def test_identical_all_clears_ending_different_alarms_both_reach_the_analyst(
    store: SQLiteStore, engine: Engine
) -> None:
    await raise_texts(
        store,
        engine,
        [
            Post(GLADKOV, 1, at(0), "Ракетная опасность в Белгороде."),
            Post(KURSK, 7, at(20), "Ракетная опасность в Курске"),
        ],
    )
    first, second = await raise_texts(
        store, engine, [Post(GLADKOV, 2, at(600), BARE_ALL_CLEAR), Post(KURSK, 8, at(620), BARE_ALL_CLEAR)]
    )
    assert first.payload["clears"]["channel_id"] == GLADKOV.id
    assert second.payload["clears"]["channel_id"] == KURSK.id
    assert (first.suppressed, second.suppressed) == (None, None)


async def test_identical_all_clears_ending_the_same_alert_are_one(store: SQLiteStore, engine: Engine) -> None:
    alarm, _ = await raise_texts(store, engine, [Post(GLADKOV, 1, at(0), STATEMENT), Post(KURSK, 7, at(30), REPOST)])
    first, second = await raise_texts(
        store, engine, [Post(GLADKOV, 2, at(600), ALL_CLEAR_MISSILE), Post(KURSK, 8, at(620), ALL_CLEAR_MISSILE)]
    )
    assert first.payload["clears"]["id"] == second.payload["clears"]["id"] == alarm.id
    assert (first.suppressed, second.suppressed) == (None, "duplicate")
    assert second.merged_into == first.id
