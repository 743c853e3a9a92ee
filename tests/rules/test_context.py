"""Channel context: a monitoring channel's bare "ОБУХІВ!!!!" is an update of the threat it last announced.

Read in post order, per channel, until an all-clear or quiet time closes the threat; alike live and in `rules check`.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.places import load_gazetteer
from bot.places.finder import PlaceFinder
from bot.rules.analyzer import Analyzer
from bot.rules.context import CONTEXT_RULE, ThreatContext
from bot.rules.engine import Document, Engine, Verdict
from bot.rules.loader import load_rules
from tests.helpers import RULES_TOML, T0

MONITORS = frozenset({"monitors"})
ALARM = "Шахеди на Київщину"
KYIV_OBLAST = "Київська область"

runner = CliRunner()


@pytest.fixture(scope="module")
def engine() -> Engine:
    return load_rules(RULES_TOML)


@pytest.fixture(scope="module")
def finder() -> PlaceFinder:
    return PlaceFinder(load_gazetteer())


class Feed:
    """Posts fed to one analyzer in order, each at a minute after T0, as the pipeline feeds them."""

    def __init__(self, engine: Engine, finder: PlaceFinder, quiet: timedelta = timedelta(minutes=5)) -> None:
        self.analyzer = Analyzer(engine, finder, lambda _channel_id: (), ThreatContext(quiet=quiet))

    def post(
        self,
        text: str,
        minute: float,
        channel: int = 1,
        tags: frozenset[str] = MONITORS,
        *,
        new: bool = True,
    ) -> Verdict:
        doc = Document(text, channel, None, tags, T0 + timedelta(minutes=minute))
        return self.analyzer.verdict(doc, new=new)


@pytest.fixture
def feed(engine: Engine, finder: PlaceFinder) -> Feed:
    return Feed(engine, finder)


def summary(verdict: Verdict) -> tuple[bool, str | None, tuple[str, ...]]:
    return verdict.alert, verdict.category, verdict.rules


def places(verdict: Verdict) -> list[tuple[str, str | None]]:
    return [(m.place.name, m.oblast) for m in verdict.places]


UPDATE = (True, "uav", (CONTEXT_RULE,))
NOTHING = (False, None, ())


def test_the_announcement_is_an_alert_by_its_rule(feed: Feed) -> None:
    first = feed.post(ALARM, 0)
    assert summary(first) == (True, "uav", ("uav-danger",))
    assert places(first) == [(KYIV_OBLAST, KYIV_OBLAST)]


@pytest.mark.parametrize(
    ("text", "term", "named"),
    [
        ("Обухів!!!!", "Обухів", [("Обухів", KYIV_OBLAST)]),
        ("ОБУХІВ!!!!", "ОБУХІВ", [("Обухів", KYIV_OBLAST)]),
        ("2 на Київ", "Київ", [("Київ", "Київ")]),
        ("Трипілля зі заходу", "Трипілля", [("Трипілля", KYIV_OBLAST)]),
        ("Дві", "Дві", []),  # a bare count
    ],
)
def test_after_an_announcement_shorthand_is_an_update_of_its_threat(
    feed: Feed, text: str, term: str, named: list[tuple[str, str]]
) -> None:
    feed.post(ALARM, 0)
    update = feed.post(text, 1)
    assert summary(update) == UPDATE
    assert (update.severity, [(m.term, text[m.start : m.end]) for m in update.matches]) == ("high", [(term, term)])
    assert places(update) == named


def test_updates_follow_one_another(feed: Feed) -> None:
    feed.post(ALARM, 0)
    assert [summary(feed.post(text, minute)) for minute, text in enumerate(["Обухів!!!!", "2 на Київ", "Дві"], 1)] == [
        UPDATE
    ] * 3


def test_shorthand_with_no_threat_open_is_no_alert(feed: Feed) -> None:
    bare = feed.post("Обухів!!!!", 0)
    assert summary(bare) == NOTHING
    assert places(bare) == []  # nothing for it to update: its places are not even looked for


def test_a_counted_move_with_no_threat_ever_announced_is_no_alert(feed: Feed) -> None:
    assert summary(feed.post("2 на Київ", 0)) == NOTHING


@pytest.mark.parametrize("clear", ["Не фіксується", "Відбій тривоги"])
def test_a_counted_move_reopens_the_threat_the_channel_announced_last(feed: Feed, clear: str) -> None:
    """Digest channels post "не фіксується" after a wave, then the next wave's counts unannounced."""
    feed.post(ALARM, 0)
    assert feed.post(clear, 1).all_clear
    assert summary(feed.post("Обухів!!!!", 2)) == NOTHING  # a bare name reopens nothing
    assert summary(feed.post("Чернігівщина: 1 на Славутич з півдня, 2 на Бобровицю", 3)) == UPDATE
    assert summary(feed.post("Обухів!!!!", 4)) == UPDATE  # open again


def test_a_counted_move_long_after_the_last_threat_is_no_alert(engine: Engine, finder: PlaceFinder) -> None:
    feed = Feed(engine, finder)
    feed.analyzer.context.reopen = timedelta(minutes=30)
    feed.post(ALARM, 0)
    assert summary(feed.post("2 на Київ", 34)) == UPDATE  # quiet 5 + reopen 30 after the alarm
    assert (
        summary(feed.post("2 на Київ", 40)) == UPDATE
    )  # open again: 6 minutes after the update is within quiet + reopen
    assert summary(feed.post("2 на Київ", 76)) == NOTHING  # 36 minutes after the last update


def test_a_channel_not_tagged_monitors_has_no_context(feed: Feed) -> None:
    assert summary(feed.post(ALARM, 0, tags=frozenset())) == (True, "uav", ("uav-danger",))
    assert summary(feed.post("Обухів!!!!", 1, tags=frozenset())) == NOTHING
    assert summary(feed.post("Обухів!!!!", 2, tags=frozenset({"news"}))) == NOTHING


@pytest.mark.parametrize(
    "text",
    [
        "не до нас",
        "то свої",
        "мимо",
        "Обухів мимо",
        "Бровари, то свої",
        "Українка, не до нас",
        "дорозвідка",
        "Дорозвідка по Обухову",
        "Підтримайте канал донатом, банка в описі",
    ],
)
def test_not_a_threat_is_no_alert_and_leaves_the_threat_open(feed: Feed, text: str) -> None:
    feed.post(ALARM, 0)
    assert summary(feed.post(text, 1)) == NOTHING
    assert summary(feed.post("Обухів!!!!", 2)) == UPDATE


def test_clear_is_no_alert(feed: Feed) -> None:
    feed.post(ALARM, 0)
    clear = feed.post("чисто", 1)
    assert (clear.alert, clear.all_clear) == (False, True)


@pytest.mark.parametrize("text", ["Мирного неба всім", "Мирне небо над Києвом"])
def test_a_peaceful_sky_sign_off_is_no_alert(feed: Feed, text: str) -> None:
    feed.post(ALARM, 0)
    assert summary(feed.post(text, 1)) == NOTHING


# --- closing a threat ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["Відбій тривоги", "Чисто по цілям"])
def test_an_all_clear_ends_the_threat(feed: Feed, text: str) -> None:
    feed.post(ALARM, 0)
    clear = feed.post(text, 1)
    assert (clear.alert, clear.all_clear) == (False, True)
    assert summary(feed.post("Обухів!!!!", 2)) == NOTHING
    assert summary(feed.post(ALARM, 3)) == (True, "uav", ("uav-danger",))  # a new announcement reopens it
    assert summary(feed.post("Обухів!!!!", 4)) == UPDATE


@pytest.mark.parametrize("clear", ["Відбій ракетної небезпеки", "Чисто по цілям"])
def test_a_missile_all_clear_leaves_the_drones_open(feed: Feed, clear: str) -> None:
    feed.post(ALARM, 0)
    assert summary(feed.post("Балістика!", 1)) == (True, "missile", ("missile-danger",))
    assert summary(feed.post("Обухів!!!!", 2)) == (True, "missile", (CONTEXT_RULE,))  # the latest threat
    assert feed.post(clear, 3).all_clear
    assert summary(feed.post("Бровари!!!", 4)) == UPDATE


def test_quiet_time_closes_the_threat(feed: Feed) -> None:
    feed.post(ALARM, 0)
    assert summary(feed.post("Обухів!!!!", 6)) == NOTHING  # 6 minutes > quiet 5


def test_quiet_time_counts_from_the_last_update(feed: Feed) -> None:
    feed.post(ALARM, 0)
    assert summary(feed.post("Обухів!!!!", 4)) == UPDATE
    assert summary(feed.post("Бровари!!!", 9)) == UPDATE  # exactly quiet after the last update: still open
    assert summary(feed.post("Трипілля!!!", 15)) == NOTHING
    assert summary(feed.post("Обухів!!!!", 16)) == NOTHING  # closed stays closed


def test_quiet_time_is_configurable(engine: Engine, finder: PlaceFinder) -> None:
    feed = Feed(engine, finder, quiet=timedelta(hours=1))
    feed.post(ALARM, 0)
    assert summary(feed.post("Обухів!!!!", 59)) == UPDATE
    assert summary(Feed(engine, finder).post("Обухів!!!!", 0)) == NOTHING  # another context: nothing open


def test_contexts_are_per_channel(feed: Feed) -> None:
    feed.post(ALARM, 0, channel=1)
    assert summary(feed.post("Обухів!!!!", 1, channel=2)) == NOTHING
    assert summary(feed.post("Обухів!!!!", 2, channel=1)) == UPDATE
    feed.post("Відбій тривоги", 3, channel=2)  # another channel's all-clear
    assert summary(feed.post("Бровари!!!", 4, channel=1)) == UPDATE


# --- edits -----------------------------------------------------------------------------------------


def test_an_edited_all_clear_does_not_close_the_threat(feed: Feed) -> None:
    feed.post(ALARM, 0)
    assert feed.post("Відбій тривоги", 1, new=False).all_clear
    assert summary(feed.post("Обухів!!!!", 2)) == UPDATE


def test_an_edited_announcement_does_not_open_a_threat(feed: Feed) -> None:
    assert summary(feed.post(ALARM, 0, new=False)) == (True, "uav", ("uav-danger",))
    assert summary(feed.post("Обухів!!!!", 1)) == NOTHING


def test_an_edited_update_does_not_hold_the_threat_open(feed: Feed) -> None:
    feed.post(ALARM, 0)
    feed.post("Обухів!!!!", 4, new=False)
    assert summary(feed.post("Бровари!!!", 6)) == NOTHING  # 6 minutes after the announcement, the last news


def test_an_edit_does_not_switch_the_threat(feed: Feed) -> None:
    feed.post(ALARM, 0)
    feed.post("Балістика!", 1, new=False)
    assert summary(feed.post("Обухів!!!!", 2)) == UPDATE


# --- tgmon rules check -----------------------------------------------------------------------------


def check(tmp_path: Path, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    posts = tmp_path / "posts.jsonl"
    posts.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["rules", "check", str(posts), "--rules", str(RULES_TOML)])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def line(text: str, timestamp: str, channel: int = 7) -> dict[str, Any]:
    return {"channel_id": channel, "channel_tags": ["monitors"], "timestamp": timestamp, "text": text}


def test_rules_check_reads_a_monitoring_channel_in_order(tmp_path: Path) -> None:
    out = check(
        tmp_path,
        [
            line(ALARM, "2024-03-12T03:00:00+00:00"),
            line("Обухів!!!!", "2024-03-12T03:01:00+00:00"),
            line("Обухів!!!!", "2024-03-12T03:02:00+00:00", channel=8),
        ],
    )
    assert [(o["alert"], o["category"]) for o in out] == [(True, "uav"), (True, "uav"), (False, None)]
    update = out[1]
    assert [m["rule"] for m in update["matches"]] == [CONTEXT_RULE]
    assert update["places"] == [
        {
            "name": "Обухів",
            "kind": "city",
            "parent": "Обухівський район",
            "oblast": KYIV_OBLAST,
            "country": "UA",
            "code": "UA32120110010071582",
            "start": 0,
            "end": 6,
        }
    ]
    assert [p["name"] for p in out[0]["places"]] == [KYIV_OBLAST]


def test_rules_check_closes_a_threat_by_post_time(tmp_path: Path) -> None:
    out = check(
        tmp_path,
        [line(ALARM, "2024-03-12T03:00:00+00:00"), line("Обухів!!!!", "2024-03-12T05:00:00+00:00")],
    )
    assert [(o["alert"], o["category"], o["matches"]) for o in out[1:]] == [(False, None, [])]
