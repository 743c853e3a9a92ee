"""The rule engine: inflections in Russian, Ukrainian and English, phrases, conditions, scope, offsets, verdicts."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.rules.engine import ALL_CLEAR, Document, Engine, Match, verdict
from tests.helpers import rules_engine


def hits(engine: Engine, text: str, **doc: Any) -> list[str]:
    """The matched pieces of the original text."""
    return [text[m.start : m.end] for m in engine.match(Document(text, **doc))]


def fired(engine: Engine, text: str, **doc: Any) -> set[str]:
    return {m.rule for m in engine.match(Document(text, **doc))}


# --- inflections, with the default rule pack ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "category", "piece"),
    [
        ("Объявлена эвакуация жителей Шебекино", "evacuation", "эвакуация"),
        ("Началась эвакуации детей из приграничья", "evacuation", "эвакуации"),
        ("Жители Тёткино, эвакуируйтесь немедленно!", "evacuation", "эвакуируйтесь"),
        ("Внимание! Сигнал воздушной тревоги в Курске", "air_raid", "воздушной тревоги"),
        ("Воздушная тревога в Белгороде", "air_raid", "Воздушная тревога"),
        ("Оголошено евакуації мешканців прикордоння", "evacuation", "евакуації"),
        ("Повітряна тривога в Сумській області", "air_raid", "Повітряна тривога"),
        ("Residents must evacuate the border villages now", "evacuation", "evacuate"),
        ("Ракетная опасность в Белгороде и Белгородском районе", "missile", "Ракетная опасность"),
        ("Шахеды летят на Сумы", "uav", "Шахеды"),
        ("Фиксируем группу шахедов над областью", "uav", "шахедов"),
    ],
)
def test_default_pack_matches_inflected_forms(engine: Engine, text: str, category: str, piece: str) -> None:
    result = engine.verdict(Document(text))
    assert result.alert
    assert result.category == category
    assert piece in [text[m.start : m.end] for m in result.matches if m.category == category]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Погода в Белгороде: солнечно, +5",
        "Курс рубля снова вырос",
        "В прошлом году прошла эвакуация музея: выставка открыта",  # `none` terms: a past event, an exhibition
        "Учения: воздушная тревога в тестовом режиме",
    ],
)
def test_default_pack_stays_quiet(engine: Engine, text: str) -> None:
    assert not engine.verdict(Document(text)).alert


def test_default_pack_all_clear(engine: Engine) -> None:
    result = engine.verdict(Document("Отбой воздушной тревоги в Белгороде"))
    assert result.all_clear
    assert not result.alert
    assert result.category == ALL_CLEAR


@pytest.mark.parametrize(
    ("term", "text", "expected"),
    [
        ("эвакуация", "объявлена эвакуации", ["эвакуации"]),
        ("эвакуация", "об эвакуацию", ["эвакуацию"]),
        ("эвакуироваться", "эвакуируйтесь!", ["эвакуируйтесь"]),
        ("воздушная тревога", "отмена воздушной тревоги", ["воздушной тревоги"]),
        ("евакуація", "триває евакуації", ["евакуації"]),
        ("evacuate", "they evacuated", ["evacuated"]),
        ("evacuate", "EVACUATING now", ["EVACUATING"]),
        ("Тревога", "ТРЕВОГИ", ["ТРЕВОГИ"]),
    ],
)
def test_term_inflections(term: str, text: str, expected: list[str]) -> None:
    engine = rules_engine({"id": "r", "category": "c", "any": [term]})
    assert hits(engine, text) == expected


def test_phrase_words_in_order() -> None:
    engine = rules_engine({"id": "r", "category": "c", "any": ["воздушная тревога"]})
    assert hits(engine, "тревога воздушная") == []
    assert hits(engine, "воздушная, тревога") == ["воздушная, тревога"]


def test_phrase_with_stop_words_needs_them_in_place() -> None:
    # Pass 1 does not see "на" or "under": these phrases are confirmed in order before rules run.
    engine = rules_engine(
        {"id": "r", "category": "c", "any": ["ракеты на", "under fire"]},
        {"id": "s", "category": "c", "near": 1, "any": ["сбито ещё"]},
    )
    assert hits(engine, "Ракеты, на Киев!") == ["Ракеты, на"]
    assert hits(engine, "ракеты https://t.me/x на Киев") == ["ракеты https://t.me/x на"]
    assert hits(engine, "ракеты летят на Киев") == []
    assert hits(engine, "на ракеты") == []
    assert hits(engine, "The town is under heavy fire") == []
    assert hits(engine, "The town is under fire") == ["under fire"]
    assert hits(engine, "сбито за час ещё") == []
    assert hits(engine, "сбито уже ещё два") == ["сбито уже ещё"]


def test_near() -> None:
    engine = rules_engine({"id": "r", "category": "c", "near": 2, "any": ["слышны взрывы"]})
    assert hits(engine, "слышны взрывы") == ["слышны взрывы"]
    assert hits(engine, "слышны вдали взрывы") == ["слышны вдали взрывы"]
    assert hits(engine, "слышны очень далеко взрывы") == ["слышны очень далеко взрывы"]
    assert hits(engine, "слышны очень и очень далеко взрывы") == []
    assert hits(engine, "взрывы слышны") == []
    strict = rules_engine({"id": "r", "category": "c", "any": ["слышны взрывы"]})
    assert hits(strict, "слышны вдали взрывы") == []


def test_all_groups() -> None:
    engine = rules_engine(
        {"id": "r", "category": "uav", "any": ["беспилотник"], "all": [["Курск", "Белгород"], "сейчас"]}
    )
    assert fired(engine, "Беспилотник над Курском сейчас") == {"r"}
    assert fired(engine, "Сейчас беспилотник над Белгородом") == {"r"}
    assert fired(engine, "Беспилотник над Курском") == set()
    assert fired(engine, "Беспилотник сейчас над Орлом") == set()
    # `all` words alone raise nothing: `any` is what a rule looks for.
    assert fired(engine, "Курск сейчас") == set()


def test_none_vetoes() -> None:
    engine = rules_engine({"id": "r", "category": "missile", "any": ["ракета"], "none": ["учения", "отбой"]})
    assert fired(engine, "Ракета упала в поле") == {"r"}
    assert fired(engine, "Ракета на учениях") == set()
    assert fired(engine, "Отбой: ракета сбита") == set()


def test_regex_terms() -> None:
    engine = rules_engine({"id": "r", "category": "incursion", "regex": [r"\bДРГ\b", r"прорыв\w*"]})
    assert hits(engine, "Замечена дрг у границы") == ["дрг"]
    assert hits(engine, "ДРГШ") == []
    assert hits(engine, "Попытка ПРОРЫВА") == ["ПРОРЫВА"]


def test_regex_with_none() -> None:
    engine = rules_engine({"id": "r", "category": "all_clear", "regex": [r"^\W*отбой\b"], "none": ["учения"]})
    assert fired(engine, "✅ Отбой") == {"r"}
    assert fired(engine, "Отбой учения") == set()
    assert fired(engine, "Скоро будет отбой") == set()


def test_prefix_terms() -> None:
    engine = rules_engine({"id": "r", "category": "uav", "any": ["шахед*"]})
    assert hits(engine, "Шахеды летят") == ["Шахеды"]
    assert hits(engine, "группа шахедов") == ["шахедов"]
    assert hits(engine, "ШАХЕД-136") == ["ШАХЕД"]
    assert hits(engine, "нешахед") == []


def test_channel_scope() -> None:
    engine = rules_engine({"id": "r", "category": "c", "any": ["эвакуация"], "channels": ["@Gov_Chan", 12345]})
    assert fired(engine, "эвакуация", channel_username="gov_chan") == {"r"}
    assert fired(engine, "эвакуация", channel_id=12345) == {"r"}
    assert fired(engine, "эвакуация", channel_id=777, channel_username="other_chan") == set()
    assert fired(engine, "эвакуация") == set()


def test_tag_scope() -> None:
    engine = rules_engine({"id": "r", "category": "c", "any": ["выезд"], "tags": ["governors", "official"]})
    assert fired(engine, "временный выезд", channel_tags=frozenset({"official"})) == {"r"}
    assert fired(engine, "временный выезд", channel_tags=frozenset({"news"})) == set()
    assert fired(engine, "временный выезд") == set()


def test_languages() -> None:
    engine = rules_engine({"id": "r", "category": "c", "any": ["атака"], "languages": ["uk"]})
    assert fired(engine, "Атака дронів на місто") == {"r"}
    assert fired(engine, "Атака дронов на город") == set()


def test_offsets_point_at_the_original_text() -> None:
    engine = rules_engine({"id": "r", "category": "c", "any": ["воздушная тревога"]})
    text = "🚨😀 Ёжик ёлка ё\u00adлка. ВОЗДУШНАЯ\u00a0тре\u200bвога!"
    (match,) = engine.match(Document(text))
    assert text[match.start : match.end] == "ВОЗДУШНАЯ\u00a0тре\u200bвога"
    assert match.term == "воздушная тревога"


def test_offsets_in_hashtag() -> None:
    engine = rules_engine({"id": "r", "category": "c", "any": ["тревога"]})
    text = "ё #ВоздушнаяТревога"
    (match,) = engine.match(Document(text))
    assert text[match.start : match.end] == "Тревога"


def test_match_fields() -> None:
    engine = rules_engine({"id": "my-rule", "category": "missile", "severity": "critical", "any": ["ракета"]})
    (match,) = engine.match(Document("ракета"))
    assert match == Match("my-rule", "missile", "critical", 0, 6, "ракета")


def test_disabled_rules_are_skipped() -> None:
    engine = rules_engine(
        {"id": "off", "category": "c", "any": ["ракета"], "enabled": False},
        {"id": "on", "category": "c", "any": ["дрон"]},
    )
    assert [r.id for r in engine.rules] == ["on"]
    assert fired(engine, "ракета и дрон") == {"on"}


def test_many_matches_in_one_post() -> None:
    engine = rules_engine({"id": "r", "category": "c", "any": ["тревога"]})
    text = "тревога, снова тревога, опять тревоги"
    assert hits(engine, text) == ["тревога", "тревога", "тревоги"]


# --- verdict --------------------------------------------------------------------------------------


def m(category: str, severity: str, start: int, rule: str | None = None) -> Match:
    return Match(rule or category, category, severity, start, start + 3, "term")


def test_verdict_nothing() -> None:
    result = verdict([])
    assert (result.alert, result.all_clear, result.category, result.severity) == (False, False, None, None)


def test_verdict_all_clear_only_when_nothing_alarms() -> None:
    clear = verdict([m(ALL_CLEAR, "info", 0)])
    assert (clear.alert, clear.all_clear, clear.category) == (False, True, ALL_CLEAR)
    mixed = verdict([m(ALL_CLEAR, "info", 0), m("air_raid", "high", 20)])
    assert (mixed.alert, mixed.all_clear, mixed.category, mixed.severity) == (True, False, "air_raid", "high")


def test_verdict_top_category_by_severity() -> None:
    result = verdict([m("air_raid", "medium", 0), m("missile", "high", 10), m("evacuation", "low", 20)])
    assert (result.category, result.severity) == ("missile", "high")
    assert result.rules == ("air_raid", "missile", "evacuation")
    tie = verdict([m("shelling", "high", 0), m("uav", "high", 10)])
    assert tie.category == "shelling"  # rule order breaks ties
    critical = verdict([m("uav", "high", 0), m("incursion", "critical", 10)])
    assert critical.category == "incursion"


def test_engine_verdict_mixed_post(engine: Engine) -> None:
    result = engine.verdict(Document("Ракетная опасность в Белгороде. Жителей просят пройти в укрытие."))
    assert result.alert
    assert result.category == "missile"  # high beats the shelter call's medium
    assert {"missile-danger", "shelter-call"} <= set(result.rules)


# --- anything goes in, nothing raises -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "x" * 100_000,
        "воздушная тревога " * 10_000,
        "🚨" * 5000,
        "😀🇺🇦⚠️✅",
        "\ud800",
        "тревога \ud800 эвакуация \udfff",
        "\x00\x01\x02\x1b[31mтревога\x7f",
        "\u200b" * 100,
        "#" * 1000 + "@" * 1000,
        "#" + "А" * 5000,
        "https://" + "a" * 10_000,
    ],
    ids=lambda t: f"{len(t)}-chars",
)
def test_odd_posts_never_raise(engine: Engine, text: str) -> None:
    result = engine.verdict(Document(text))
    for match in result.matches:
        assert 0 <= match.start < match.end <= len(text)


_WORDS = [
    "тревога", "воздушной", "ракетная", "опасность", "отбой", "эвакуация", "евакуація", "шахеды", "ДРГ",
    "evacuate", "air", "raid", "укрытие", "пройти", "в", "#ВоздушнаяТревога", "@chan_name", "https://t.me/x",
    "ё", "🚨", "\u00ad", "\u200b", "\ud800", "\x00", "\n", "учения", "не", "Ё", "тpевога",
]  # fmt: skip
# Letters, marks, emoji, punctuation, digits, spaces, format characters, controls and lone surrogates.
_CHARS = st.characters(categories=["Lu", "Ll", "Lo", "Mn", "Nd", "Po", "Pd", "Sm", "So", "Zs", "Cf", "Cc", "Cs"])
_PIECES = st.one_of(st.sampled_from(_WORDS), st.text(_CHARS, max_size=8))


@settings(max_examples=200, deadline=None)
@given(pieces=st.lists(_PIECES, max_size=30), separators=st.lists(st.sampled_from([" ", "", "\n", ", ", "-"])))
def test_any_text_never_raises(engine: Engine, pieces: list[str], separators: list[str]) -> None:
    text = "".join(piece + (separators[i % len(separators)] if separators else " ") for i, piece in enumerate(pieces))
    result = engine.verdict(Document(text, channel_id=1, channel_username="chan_name", channel_tags=frozenset({"x"})))
    for match in result.matches:
        assert 0 <= match.start < match.end <= len(text)
    assert result.alert == any(mm.category != ALL_CLEAR for mm in result.matches)
    if result.alert:
        assert not result.all_clear


# --- pass 1: a filter that never hides a match --------------------------------------------------

_NEIGHBOURS = ["'", "«", "»", '"', "(", "🚀", "é", "Ω", "ł", "\u0301", "_", "#", "-", "’", "ѐ", "5", "№", "\ufffd"]


@settings(max_examples=300, deadline=None)
@given(
    words=st.lists(st.sampled_from([w for w in _WORDS if w[0] not in "@h"]), min_size=1, max_size=8),
    around=st.lists(st.sampled_from(_NEIGHBOURS), max_size=8),
    separators=st.lists(st.sampled_from([" ", "\n", ", ", " - "])),
)
def test_pass_one_never_hides_a_rule_that_fires(
    engine: Engine, words: list[str], around: list[str], separators: list[str]
) -> None:
    """`match` skips posts pass 1 rules out; `explain` judges every rule on every post: they agree,
    whatever surrounds a word (characters the byte scan turns into spaces included). Words are kept
    apart: two words of different scripts glued together are folded differently by the two paths."""
    pieces = [(around[i % len(around)] if around else "") + word for i, word in enumerate(words)]
    text = "".join(piece + (separators[i % len(separators)] if separators else " ") for i, piece in enumerate(pieces))
    doc = Document(text, channel_id=1, channel_tags=frozenset({"monitors"}))
    assert {m.rule for m in engine.match(doc)} == {r.rule for r in engine.explain(doc).reports if r.fired}


@pytest.mark.parametrize(
    "text",
    [
        "'Повітряна тривога' у Києві",
        "Увага!Повітряна тривога",
        "🚀Ракетная опасность",
        "«Эвакуация» объявлена",
        "Повітряна\u00a0тривога",
        "ΩΩ повітряна тривога",
    ],
)
def test_words_next_to_punctuation_emoji_and_other_scripts_are_found(engine: Engine, text: str) -> None:
    assert engine.verdict(Document(text)).alert


def test_terms_with_letters_beyond_cyrillic_and_ascii_match() -> None:
    """Pass 1 scans one byte a character (Windows-1251): a Polish or Greek term still matches."""
    engine = rules_engine(
        {"id": "pl", "category": "custom_watch", "severity": "low", "any": ["Łódź", "Ωmega"]},
    )
    assert hits(engine, "Wybuchy w Łodzi i Łódź") == ["Łódź"]
    assert hits(engine, "the ωmega unit") == ["ωmega"]
    assert hits(engine, "Łódźka") == []


def test_a_regex_rule_firing_leaves_no_mixed_script_word_unfolded(engine: Engine) -> None:
    """🚀 fires a monitors regex rule; "тpевога" (a Latin p) must still be folded for the word rules."""
    doc = Document("Воздушной тpевога 🚀", channel_id=1, channel_tags=frozenset({"monitors"}))
    assert {"air-raid", "monitor-missile"} <= {m.rule for m in engine.match(doc)}
