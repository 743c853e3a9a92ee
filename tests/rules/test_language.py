"""The rule language beyond plain words: derivations, exact forms, shared lists, all-clears."""

from __future__ import annotations

import pytest

from bot.errors import ConfigError
from bot.rules.engine import Document
from bot.rules.loader import build_engine, parse_rules
from tests.helpers import rules_engine


def fires(rules: list[dict[str, object]] | dict[str, object], text: str) -> list[str]:
    engine = rules_engine(*(rules if isinstance(rules, list) else [rules]))
    return [m.term for m in engine.match(Document(text))]


EVACUATION = {"id": "evac", "category": "evacuation", "any": ["эвакуация"]}


@pytest.mark.parametrize(
    "text",
    ["Эвакуируйтесь немедленно", "Жителей эвакуируют в Курск", "Решено эвакуировать детей", "Идёт эвакуация"],
)
def test_a_noun_also_means_its_verbs(text: str) -> None:
    assert fires(EVACUATION, text) == ["эвакуация"]


def test_ukrainian_derivations() -> None:
    rule = {"id": "evac", "category": "evacuation", "any": ["евакуація"]}
    assert fires(rule, "Громаду евакуюють") == ["евакуація"]
    assert fires(rule, "Оголошено евакуацію") == ["евакуація"]


def test_a_tow_truck_is_not_an_evacuation() -> None:
    """Derivations come from suffix pairs, not shared prefixes: "эвакуатор" stays out."""
    assert fires(EVACUATION, "Эвакуатор увёз машину со стоянки") == []


def test_equals_sign_keeps_to_the_lemma() -> None:
    rule = {"id": "evac", "category": "evacuation", "any": ["=эвакуация"]}
    assert fires(rule, "Эвакуируйтесь немедленно") == []
    assert fires(rule, "эвакуации не будет") == ["=эвакуация"]


def test_double_quotes_match_exactly_these_forms() -> None:
    rule = {"id": "r", "category": "shelling", "any": ["обстрел"], "none": ['"продолжался"']}
    assert fires(rule, "Обстрел продолжался два часа") == []
    assert fires(rule, "Обстрел продолжается") == ["обстрел"]


def test_exclusion_phrases_need_their_words_adjacent() -> None:
    rule = {"id": "r", "category": "uav", "near": 3, "any": ["атака БПЛА"], "none": ["при атаке"]}
    assert fires(rule, "Ранены при атаке БПЛА") == []
    assert fires(rule, "При отражении атаки БПЛА сбито ещё пять") == ["атака БПЛА"]


def test_lists_are_shared_by_name() -> None:
    specs = parse_rules(
        {
            "lists": {"drill": ["учения", "тренировка"], "alarm": ["тревога", "сирена"]},
            "rule": [
                {"id": "a", "category": "air_raid", "any": ["@alarm"], "none": ["@drill"]},
                {"id": "b", "category": "air_raid", "any": ["отбой"], "all": ["@alarm"]},
            ],
        },
        "rules.toml",
    )
    assert specs[0].any == ["тревога", "сирена"]
    assert specs[0].none == ["учения", "тренировка"]
    assert specs[1].all == [["тревога", "сирена"]]  # in `all`, a list is one condition of alternatives
    engine = build_engine(specs)
    assert engine.verdict(Document("Воздушная тревога")).category == "air_raid"
    assert engine.verdict(Document("Учения: воздушная тревога")).category is None


def test_unknown_list_is_a_load_error_naming_the_rule() -> None:
    with pytest.raises(ConfigError) as error:
        parse_rules({"rule": [{"id": "a", "category": "uav", "any": ["дрон"], "none": ["@nope"]}]}, "rules.toml")
    assert error.value.lines == (
        "rules.toml: rule[0] (a).none[0]: unknown list '@nope' (define it under [lists]: nope = [...])",
    )


ALARM = {"id": "alarm", "category": "air_raid", "severity": "high", "any": ["воздушная тревога", "опасность БПЛА"]}
CLEAR = {
    "id": "clear",
    "category": "all_clear",
    "severity": "info",
    "near": 3,
    "any": ["отбой тревоги", "отбой воздушной тревоги", "отбой опасности", "опасность отменить"],
    "none": ["до отбоя"],
}


@pytest.mark.parametrize(
    "text", ["Отбой воздушной тревоги.", "Отбой опасности БПЛА в Раменском", "Опасность БПЛА в Раменском отменена"]
)
def test_alarm_words_inside_an_all_clear_belong_to_it(text: str) -> None:
    verdict = rules_engine(CLEAR, ALARM).verdict(Document(text))
    assert (verdict.alert, verdict.all_clear, verdict.category) == (False, True, "all_clear")


def test_an_alarm_that_says_until_the_all_clear_is_an_alarm() -> None:
    verdict = rules_engine(CLEAR, ALARM).verdict(Document("Воздушная тревога! Оставайтесь в укрытиях до отбоя тревоги"))
    assert (verdict.alert, verdict.category) == (True, "air_raid")


def test_clears_names_the_categories_an_all_clear_ends() -> None:
    rule = {**CLEAR, "id": "missile-clear", "any": ["отбой ракетной опасности"], "clears": ["missile"]}
    assert rules_engine(rule).verdict(Document("Отбой ракетной опасности")).clears == ("missile",)
    with pytest.raises(ConfigError, match=r"`clears` belongs to rules of category all_clear"):
        parse_rules({"rule": [{**ALARM, "clears": ["missile"]}]}, "rules.toml")


def test_explain_says_why_each_rule_did_or_did_not_fire() -> None:
    engine = rules_engine(
        {"id": "evac", "category": "evacuation", "any": ["эвакуация"], "none": ["учения"]},
        {"id": "uav", "category": "uav", "any": ["беспилотник"], "tags": ["governors"]},
    )
    explanation = engine.explain(Document("Учения: эвакуация школы, беспилотник над городом"))
    reasons = {report.rule: report.reason for report in explanation.reports}
    assert reasons == {
        "evac": "excluded by `none` term: учения",
        "uav": "out of scope: channel not tagged governors",
    }
    assert [t.text for t in explanation.tokens][:2] == ["учения", "эвакуация"]
