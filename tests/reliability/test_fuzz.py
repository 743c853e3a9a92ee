"""Property-based fuzzing of what reaches tgmon from outside: replay files, message entities, config files.

tests/sources/test_replay.py names the bad records it knows; these draw records, whole files,
Telegram recordings with damaged bytes, entities and TOML at random, and hold tgmon to one promise:
whatever comes in is stored, or refused with one line naming the file (BadRecord, UserError,
ConfigError), never a traceback. Each test counts what its examples came to, for the report.
"""

from __future__ import annotations

import asyncio
import base64
import json
import string
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import tomlkit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telethon.tl import types

from bot.alerts.notifiers import JsonlNotifier
from bot.alerts.outbox import Dispatcher
from bot.alerts.policy import load_alerts_config
from bot.errors import UserError
from bot.models import Deletion, Edit, Entity, Event, Post
from bot.pipeline import Pipeline
from bot.rules.engine import Document, Engine
from bot.rules.loader import load_rules
from bot.settings import load_channels
from bot.sources.replay import BadRecord, ReplaySource, _loads, record_to_event
from bot.sources.tl import message_to_post
from bot.store.sqlite import SQLiteStore, open_store
from tests.conftest import Logs
from tests.helpers import channel
from tests.reliability import report

EXAMPLES = report.scale(150, 5_000)
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # the runs are not kept: a failure prints its example and its seed
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
_INT64 = 2**63

# ---------------------------------------------------------------------------------------------------
# Values: what a hostile or broken file may hold


def _repeat(piece: str, times: int) -> str:
    return piece * times


ODD = [
    "", " ", "\x00", "\u202e", "\ufeff", "\u0301", "é", "👩‍👩‍👧", "\U0010ffff", "\ud800", "\udfff", "\ud83d",
    "Z", "NaN", "1e309", "-1001902000005", "2024-03-12T05:41:00+00:00", "2024-02-30T25:61:00", "@", "t.me/x",
]  # fmt: skip
any_char = st.characters(codec=None, exclude_categories=())  # lone surrogates included
odd_text = st.text(any_char, max_size=40) | st.sampled_from(ODD)
huge_text = st.builds(_repeat, st.text(any_char, min_size=1, max_size=8), st.integers(1_000, 20_000))  # to 160k chars
numbers = st.one_of(
    st.integers(-(2**70), 2**70),
    st.integers(-(2**31), 2**31),
    st.sampled_from([0, -1, 1, _INT64 - 1, _INT64, -_INT64, -_INT64 - 1, 1902000001, -1001902000005, -100]),
    st.floats(),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, odd_text)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


def mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Valid three times in four, anything else otherwise: most examples then get past the first check."""
    return st.one_of(valid, valid, valid, json_values)


iso_times = st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat) | st.datetimes().map(datetime.isoformat)
times = mostly(iso_times | st.integers(-(2**40), 2**40) | st.floats() | st.integers(0, 2**40).map(str))
positive = st.integers(1, 2**31) | st.integers(1, _INT64 - 1)
small = st.integers(-5, 80)  # offsets and lengths near a short text: in range, overlapping, just past its end
entity_dicts = st.fixed_dictionaries(
    {"offset": mostly(small | numbers), "length": mostly(small | numbers)},
    optional={"type": mostly(st.sampled_from(["bold", "text_link", "url", "pre"]) | odd_text), "url": mostly(odd_text)},
)
text_parts = st.lists(
    mostly(odd_text | st.fixed_dictionaries({"text": odd_text}, optional={"type": odd_text, "href": odd_text})),
    max_size=6,
)
one_media = st.one_of(
    st.sampled_from(["photo", "video", "document", "poll", "nonsense"]),
    st.fixed_dictionaries(
        {"kind": mostly(st.sampled_from(["photo", "video", "voice", "web_page"]))},
        optional={k: mostly(numbers) for k in ("size", "duration", "width", "height")}
        | {k: mostly(odd_text) for k in ("mime_type", "file_name", "file_id")},
    ),
)


@st.composite
def tables(
    draw: st.DrawFn,
    fields: dict[str, st.SearchStrategy[Any]],
    junk: st.SearchStrategy[Any],
    unknown: st.SearchStrategy[str],
    required: tuple[str, ...] = (),
    spoil: bool = True,
) -> dict[str, Any]:
    """Valid values for some of `fields` (always the `required`), then with `spoil` spoiled: not at all (one table
    in three), in one place, or in several: a value of another type, a key missing, a key nobody knows."""
    table = {key: draw(value) for key, value in fields.items() if key in required or draw(st.booleans())}
    spoils = [0, 1, draw(st.integers(2, 5))][draw(st.integers(0, 2))] if spoil else 0
    for _ in range(spoils):
        key = draw(st.sampled_from(list(fields)) | unknown)
        if draw(st.integers(0, 4)) == 0:
            table.pop(key, None)
        else:
            table[key] = draw(junk)
    return table


FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "type": st.sampled_from(["post", "post", "post", "edit", "delete"]),
    "channel_id": positive | st.sampled_from([-1001902000005]),
    "timestamp": iso_times | st.integers(0, 2**32),
    "date": iso_times,
    "edit_date": iso_times,
    "channel_title": odd_text,
    "username": odd_text,
    "message_id": positive,
    "message_ids": st.lists(positive, min_size=1, max_size=4),
    "text": odd_text | huge_text | text_parts,
    "entities": st.lists(entity_dicts, max_size=6),
    "views": st.integers(0, 2**31),
    "forwards": st.integers(0, 2**31),
    "reply_to": positive,
    "grouped_id": st.integers(0, _INT64 - 1),
    "author": odd_text,
    "media": one_media | st.lists(one_media, max_size=3),
    "forward_from": odd_text
    | st.fixed_dictionaries(
        {}, optional={"channel_id": numbers, "message_id": numbers, "name": odd_text, "date": times}
    ),
}
records = st.one_of(
    tables(FIELDS, json_values, st.text(max_size=8), required=("channel_id", "timestamp", "text")),
    tables(FIELDS, json_values, st.text(max_size=8), required=("channel_id", "timestamp", "text")),
    json_values,
)


def json_line(record: Any, ascii_only: bool) -> bytes:
    """As a JSONL writer would; a lone surrogate written raw makes the line invalid UTF-8, as on a damaged disk."""
    return json.dumps(record, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


# A recorded Telegram update (what `tgmon run --record` writes), damaged at random bytes.
_MESSAGE = types.UpdateNewChannelMessage(
    message=types.Message(
        id=4101,
        peer_id=types.PeerChannel(1902000001),
        date=datetime(2024, 3, 12, 3, 4, tzinfo=UTC),
        message="⚠️ Ракетная опасность в Белгороде. Пройдите в укрытия.",
        entities=[types.MessageEntityBold(0, 2), types.MessageEntityTextUrl(3, 8, "https://t.me/x")],
        views=1000,
        forwards=3,
    ),
    pts=1,
    pts_count=1,
)
_TL = bytes(_MESSAGE)


@st.composite
def damaged_tl(draw: st.DrawFn) -> bytes:
    data = bytearray(_TL)
    for _ in range(draw(st.integers(0, 6))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    data = data[: draw(st.integers(0, len(data)))] if draw(st.booleans()) else data
    line = {"received_at": draw(times), "tl": base64.b64encode(bytes(data)).decode("ascii")}
    return json.dumps(line).encode()


@st.composite
def feed_lines(draw: st.DrawFn) -> list[bytes]:
    """A replay file: JSONL or a recording (the first line decides, as in `tgmon replay`), each line damaged or not."""
    recording = draw(st.integers(0, 4)) == 0
    lines = []
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.integers(0, 5))
        if recording and kind < 3:
            line = draw(damaged_tl())
        elif kind <= 2:
            line = json_line(draw(records), draw(st.booleans()))
        elif kind == 3:  # a line cut short, as when the writer died
            whole = json_line(draw(records), True)
            line = whole[: draw(st.integers(0, len(whole)))]
        elif kind == 4:
            line = draw(st.binary(max_size=200))
        else:
            line = b""
        lines.append(line.replace(b"\n", b" ") + b"\n")
    if draw(st.booleans()):
        lines[-1] = lines[-1].rstrip(b"\n")  # the last line still being written
    return lines


# ---------------------------------------------------------------------------------------------------
# A store that lives across the examples of a test: opening one per example would dominate the run


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[asyncio.Runner, SQLiteStore, Path]]:
    folder = tmp_path_factory.mktemp("fuzz")
    with asyncio.Runner() as runner:
        store = runner.run(open_store(folder / "data"))
        try:
            yield runner, store, folder
        finally:
            runner.run(store.close())


def one_line(message: str) -> bool:
    return bool(message.strip()) and "\n" not in message and "Traceback" not in message


def check_refusal(error: Exception, where: Path | None = None) -> None:
    """What the operator reads: one line per problem, each naming the file when there is one."""
    lines = error.lines if isinstance(error, UserError) else (str(error),)
    assert lines, f"{type(error).__name__} without a message"
    for line in lines:
        assert one_line(line), repr(line)
        if where is not None:
            assert line.startswith(f"{where}:"), repr(line)


# ---------------------------------------------------------------------------------------------------
# (a) replay records and files


def test_any_replay_record_is_an_event_or_a_one_line_bad_record(
    live: tuple[asyncio.Runner, SQLiteStore, Path], logs: Logs, request: pytest.FixtureRequest
) -> None:
    """The parser in `tgmon replay`: JSON line → record → event, then stored as the replay stores it."""
    runner, store, _ = live
    seen: Counter[str] = Counter()

    @FUZZ
    @given(record=records, ascii_only=st.booleans())
    def check(record: Any, ascii_only: bool) -> None:
        logs.clear()
        raw = json_line(record, ascii_only)
        try:
            value = _loads(raw)
        except (ValueError, RecursionError):  # what the replay counts as "not valid JSON / UTF-8"
            seen["not JSON or UTF-8"] += 1
            return
        try:
            event = record_to_event(value)
        except BadRecord as exc:
            check_refusal(exc)
            seen["BadRecord"] += 1
            return
        assert isinstance(event, Post | Edit | Deletion)
        runner.run(store.write(lambda tx: tx.apply_prepared(store.prepare([event]))))
        seen[f"{type(event).__name__} stored"] += 1

    try:
        check()
    finally:  # a failure still shows its row, marked failed
        _record(
            request,
            30,
            "replay records: random dicts with the replay fields, values of random types, huge texts, lone surrogates",
            "the parser (`record_to_event`) gives an event, then stored, or a one-line BadRecord; never another"
            " exception",
            seen,
        )


def test_any_replay_file_is_replayed_or_refused_in_one_line(
    live: tuple[asyncio.Runner, SQLiteStore, Path], engine: Engine, logs: Logs, request: pytest.FixtureRequest
) -> None:
    """Whole files through `tgmon replay`'s pipeline: format detection, parsing, rules, store, outbox."""
    runner, store, folder = live
    seen: Counter[str] = Counter()
    files = iter(range(1 << 30))

    async def replay(path: Path) -> tuple[int, int, int, int]:
        source = ReplaySource([path])
        dispatcher = Dispatcher(store, [JsonlNotifier(folder / "alerts.jsonl")])
        stats = await Pipeline(store, engine, dispatcher).run(source, drain_timeout=30)
        counters = source.counters
        return stats.events, counters.events, counters.bad, counters.skipped

    @FUZZ
    @given(lines=feed_lines())
    def check(lines: list[bytes]) -> None:
        logs.clear()
        path = folder / f"feed{next(files)}.jsonl"
        path.write_bytes(b"".join(lines))
        try:
            stored, events, bad, skipped = runner.run(replay(path))
        except UserError as exc:  # not a file tgmon can read at all: one line, naming it
            check_refusal(exc, path)
            seen["file refused (UserError)"] += 1
            return
        assert stored == events
        assert bad == sum(1 for entry in logs if entry["event"] == "replay.bad_record")
        assert all(one_line(str(e.get("error", "-"))) for e in logs if e["event"] == "replay.bad_record")
        torn = not lines[-1].endswith(b"\n")
        assert len(lines) - torn <= events + bad + skipped <= len(lines)  # every whole line accounted for
        seen["lines"] += len(lines)
        seen["events stored"] += events
        seen["bad records"] += bad

    try:
        check()
    finally:  # a failure still shows its row, marked failed
        _record(
            request,
            31,
            "replay files: JSONL and `--record` recordings (damaged TL bytes), lines broken, cut short, binary",
            "`tgmon replay`'s pipeline (detection, parser, rules, store, outbox) stores every good line, counts every"
            " bad one, or refuses the file in one line naming it; never another exception",
            seen,
        )


# ---------------------------------------------------------------------------------------------------
# (b) message entities through the model and the store

ENTITY_TYPES = [
    types.MessageEntityBold,
    types.MessageEntityItalic,
    types.MessageEntityUrl,
    types.MessageEntityCode,
    types.MessageEntityHashtag,
    types.MessageEntitySpoiler,
]
_INT32 = st.integers(-3, 70) | st.integers(-(2**31), 2**31 - 1)  # near the text (overlapping, past its end) or anywhere
telethon_entities = st.one_of(
    st.builds(lambda kind, offset, length: kind(offset, length), st.sampled_from(ENTITY_TYPES), _INT32, _INT32),
    st.builds(types.MessageEntityTextUrl, _INT32, _INT32, st.text(max_size=30)),
    st.builds(types.MessageEntityPre, _INT32, _INT32, st.text(max_size=10)),
    st.builds(types.MessageEntityMentionName, _INT32, _INT32, st.integers(1, 2**40)),
    st.builds(types.MessageEntityCustomEmoji, _INT32, _INT32, st.integers(-(2**63), 2**63 - 1)),
)
_INT64S = st.integers(-_INT64, _INT64 - 1)
model_entities = st.builds(Entity, st.text(max_size=12), _INT64S, _INT64S, st.none() | st.text(max_size=30))
post_text = st.text(max_size=60) | st.builds(_repeat, st.text(min_size=1, max_size=4), st.integers(1, 5_000))


def _entity_rows(entities: tuple[Entity, ...]) -> list[tuple[str, int, int, str | None]]:
    return [(e.type, e.offset, e.length, e.url) for e in entities]


def test_any_entities_are_stored_and_exported_as_given(
    live: tuple[asyncio.Runner, SQLiteStore, Path], request: pytest.FixtureRequest
) -> None:
    """Offsets and lengths out of range, negative, overlapping: Telegram's word is kept, not trusted or dropped."""
    runner, store, _ = live
    seen: Counter[str] = Counter()
    ids = iter(range(1, 1 << 40))
    where = channel(1902000077, "entities_fuzz", "Entities")

    async def exported(message_id: int, since: datetime) -> list[Any]:
        async for record in store.export(since):  # this post only: the dates grow with the ids
            if record["channel_id"] == where.id and record["message_id"] == message_id:
                return list(record.get("entities") or [])
        raise AssertionError(f"post {message_id} not exported")

    @FUZZ
    @given(
        text=post_text,
        from_telegram=st.lists(telethon_entities, max_size=8),
        edited=st.lists(model_entities, max_size=8),
        edit_text=post_text,
    )
    def check(text: str, from_telegram: list[Any], edited: list[Entity], edit_text: str) -> None:
        message_id = next(ids)
        date = datetime(2024, 3, 12, tzinfo=UTC) + timedelta(seconds=message_id)
        message = types.Message(
            id=message_id, peer_id=types.PeerChannel(where.id), date=date, message=text, entities=from_telegram
        )
        post = message_to_post(message, where)
        assert post is not None
        edit = Edit(where, message_id, date + timedelta(minutes=1), edit_text, tuple(edited))
        events: list[Event] = [post, edit]
        outcomes = runner.run(store.write(lambda tx: tx.apply_prepared(store.prepare(events))))
        assert [o.value for o in outcomes] in (["new", "edited"], ["new", "unchanged"])
        got = runner.run(exported(message_id, date))
        final = edit.entities if outcomes[1].value == "edited" else post.entities
        assert [(e["type"], e["offset"], e["length"], e.get("url")) for e in got] == _entity_rows(final)
        seen["posts"] += 1
        seen["entities"] += len(post.entities) + len(edit.entities)
        seen["of them out of the text's range"] += sum(
            1
            for e in (*post.entities, *edit.entities)
            if e.offset < 0 or e.length < 0 or e.offset + e.length > len(text)
        )

    try:
        check()
    finally:  # a failure still shows its row, marked failed
        _record(
            request,
            32,
            "message entities, Telethon's and the model's: offsets and lengths negative, overlapping, out of range",
            "stored with the post and its edit, and exported back exactly as given; never an exception",
            seen,
        )


# ---------------------------------------------------------------------------------------------------
# (c) config files

toml_keys = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=10) | st.text(max_size=8)
toml_scalars = st.one_of(
    st.text(max_size=30),
    st.sampled_from([s for s in ODD if not any(0xD800 <= ord(c) <= 0xDFFF for c in s)]),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(),
    st.booleans(),
    st.datetimes(),
    st.dates(),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(toml_keys, inner, max_size=3),
    max_leaves=8,
)


def config_documents(spoil: bool) -> dict[str, st.SearchStrategy[dict[str, Any]]]:
    """channels.toml, rules.toml and alerts.toml as TOML documents: right, or (`spoil`) wrong here and there."""

    def pick(good: list[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        """A value of the right type: one that works, or now and then one that does not."""
        return st.one_of(*[st.sampled_from(good)] * 6, odd) if spoil else st.sampled_from(good)

    def entry(fields: dict[str, st.SearchStrategy[Any]], required: tuple[str, ...] = ()) -> st.SearchStrategy[Any]:
        return tables(fields, toml_values, toml_keys, required, spoil)

    places = pick(["Київська область", "Белгородская область", "Бровари", "UA-32"], st.just("Атлантида"))
    terms = pick(
        ["эвакуация", "укрытие", "ракет*", "air raid", "ёлка", "Київ", "e\u0301", "@drills"],
        st.sampled_from(["ра*", "*", "", "@nope", "!!"]) | st.text(min_size=1, max_size=12),
    )
    regexes = pick(
        ["укрыт\\w+", "\\bБПЛА\\b"],
        st.sampled_from(["(", "a{4294967296}", "(" * 1200 + ")" * 1200, "[z-a]", "(?P<x>a)(?P<x>b)", "\\", "a**"])
        | st.text(max_size=10),
    )
    channel = entry(
        {
            "id": pick([1902000001, 1766138888], st.integers(-(2**63), 2**63 - 1)),
            "username": pick(["gladkov_demo", "@osint_monitor", "https://t.me/chan_one"], st.just("bad name")),
            "title": st.text(max_size=20),
            "tags": st.lists(pick(["governors", "monitors"], st.text(max_size=8)), max_size=3),
            "join": st.booleans(),
            "download_media": st.booleans(),
            "region": places | st.lists(places, max_size=2),
        },
        required=("username",),
    )
    rule = entry(
        {
            "id": pick(["evac", "air-raid.1", "drone_2"], st.sampled_from(["-bad", "", "a\nb"])),
            "category": pick(["evacuation", "air_raid", "uav"], st.sampled_from(["Bad", "a-b", "all_clear"])),
            "severity": pick(["low", "medium", "high", "critical"], st.just("extreme")),
            "any": st.lists(terms, min_size=1, max_size=4),
            "all": st.lists(terms | st.lists(terms, min_size=1, max_size=3), max_size=3),
            "none": st.lists(terms, max_size=3),
            "regex": st.lists(regexes, max_size=2),
            "near": pick([0, 3, 20], st.integers(-5, 30)),
            "channels": st.lists(pick(["@gladkov_demo", "1902000001", 1902000001], st.just("no way")), max_size=2),
            "tags": st.lists(st.text(max_size=8), max_size=2),
            "languages": st.lists(pick(["ru", "uk", "en"], st.just("de")), max_size=2),
            "enabled": pick([True], st.just(False)),
        },
        required=("id", "category", "any"),
    )
    route = entry(
        {
            "destination": pick(["jsonl", "webhook", "telegram:-100123"], st.text(max_size=8)),
            "categories": st.lists(pick(["evacuation", "air_raid"], st.text(max_size=8)), max_size=2),
            "tags": st.lists(st.text(max_size=8), max_size=2),
            "places": st.lists(places, max_size=2),
        }
        | ({"chat": st.integers(-(2**63), 2**63 - 1)} if spoil else {}),
    )
    durations = pick(["60s", "10m", "2h", "1d", "5 w", 0, 90, 1.5], st.sampled_from(["-1s", "1e9s", "soon", "3661d"]))
    return {
        "channels.toml": st.lists(channel, max_size=3, unique_by=lambda c: str(c.get("username"))).map(
            lambda items: {"channel": items}
        ),
        "rules.toml": st.fixed_dictionaries(
            {
                "rule": st.lists(rule, min_size=1, max_size=4, unique_by=lambda r: str(r.get("id"))),
                "lists": st.fixed_dictionaries({"drills": st.lists(terms, min_size=1, max_size=3)}),
            }
        ),
        "alerts.toml": st.fixed_dictionaries(
            {},
            optional={
                "cooldown": durations | (st.floats() if spoil else st.nothing()),
                "dedup_window": durations,
                "route": st.lists(route, max_size=3),
            },
        ),
    }


CLEAN, SPOILED = config_documents(spoil=False), config_documents(spoil=True)
TOML_TOKENS = st.sampled_from(
    ["[[rule]]", "[[channel]]", "[[route]]", "[lists]", "\n", " = ", "=", '"', "'''", '"""', "[", "]", "{", "}", ",",
     "id", "any", "cooldown", '"evac"', "1", "inf", "nan", "1979-05-27T07:32:00Z", "#", "\\u00", "\\", "\t", "."]
)  # fmt: skip


def toml_bytes(name: str) -> st.SearchStrategy[bytes]:
    """A TOML file: a right or a spoiled document, TOML-ish tokens in any order, any text, or bytes not UTF-8."""
    return st.one_of(
        CLEAN[name].map(lambda doc: tomlkit.dumps(doc).encode()),
        SPOILED[name].map(lambda doc: tomlkit.dumps(doc).encode()),
        SPOILED[name].map(lambda doc: tomlkit.dumps(doc).encode()),
        st.lists(TOML_TOKENS | st.text(max_size=6), max_size=30).map(lambda parts: "".join(parts).encode()),
        st.binary(max_size=120),
    )


LOADERS: dict[str, Callable[[Path], Any]] = {
    "channels.toml": load_channels,
    "rules.toml": load_rules,
    "alerts.toml": load_alerts_config,
}


def _use(name: str, loaded: Any) -> None:
    """A config that loads must also work: the rules match, the routes make a policy, the channels answer."""
    if name == "rules.toml":
        loaded.verdict(Document("Объявлена эвакуация, пройдите в укрытие; air raid alert", 1902000001, "gladkov_demo"))
    elif name == "alerts.toml":
        loaded.policy(["jsonl"], lambda *_: ())
    else:
        for item in loaded.items:
            loaded.tags_of(item.id or 0, item.username)
            loaded.homes_of(item.id or 0, item.username)


@pytest.mark.parametrize("name", list(LOADERS))
def test_any_config_file_loads_or_is_refused_in_lines_naming_it(
    name: str, tmp_path: Path, logs: Logs, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A full garbage collection after each compile keeps a service's memory down; under hypothesis's heap it
    # would cost most of the run, and it is not what is checked here.
    monkeypatch.setattr("bot.rules.loader.release_build_memory", lambda: None)
    load = LOADERS[name]
    seen: Counter[str] = Counter()
    path = tmp_path / name

    @FUZZ
    @given(content=toml_bytes(name))
    def check(content: bytes) -> None:
        logs.clear()
        path.write_bytes(content)
        try:
            loaded = load(path)
        except UserError as exc:  # ConfigError is one
            check_refusal(exc, path)
            seen["refused"] += 1
            return
        _use(name, loaded)
        seen["loaded"] += 1

    try:
        check()
    finally:  # a failure still shows its row, marked failed
        _record(
            request,
            33,
            f"`{name}`: TOML documents right or spoiled, TOML-ish token soup, bytes that are not UTF-8",
            "loaded and usable, or a ConfigError whose every line names the file; never a traceback",
            seen,
        )


# ---------------------------------------------------------------------------------------------------


def _record(request: pytest.FixtureRequest, order: int, scenario: str, checked: str, seen: Counter[str]) -> None:
    figures = ", ".join(f"{count:,} {what}" for what, count in seen.most_common())
    report.record(
        report.Result(
            order=order,
            nodeid=request.node.nodeid,
            scenario=f"fuzz: {scenario}",
            runs=EXAMPLES,
            checked=checked,
            result=f"as checked, in all {EXAMPLES:,} hypothesis examples: {figures}",
        )
    )
