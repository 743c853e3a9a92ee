"""Analyst words as full-text queries, and found again in texts for the search snippet."""

from __future__ import annotations

import pytest

from bot.errors import UserError
from bot.rules.query import is_fts_syntax, query_words, search_expression, snippet


def test_expression_expands_inflected_forms() -> None:
    expression = search_expression("эвакуация")
    for form in ("эвакуация", "эвакуации", "эвакуацию", "эвакуацией"):
        assert f'"{form}"' in expression
    assert expression.startswith("(")
    assert " OR " in expression


def test_expression_every_word_must_occur() -> None:
    expression = search_expression("воздушная тревога")
    assert expression.count(" AND ") == 1
    assert '"воздушной"' in expression
    assert '"тревоги"' in expression


def test_expression_folds_yo() -> None:
    expression = search_expression("Прилёты")
    assert '"прилеты"' in expression
    assert "ё" not in expression


def test_expression_english_by_stem_prefix() -> None:
    assert search_expression("evacuated") == '"evacu"*'
    assert search_expression("Cities") == '"citi"*'


@pytest.mark.parametrize("query", ["", "   ", "!!! ???", "—"])
def test_expression_without_words(query: str) -> None:
    with pytest.raises(UserError, match="no words"):
        search_expression(query)


def test_query_words() -> None:
    assert query_words("Ёлка, ТРЕВОГА!") == ["елка", "тревога"]


@pytest.mark.parametrize(
    ("query", "raw"),
    [('"воздушная тревога"', True), ("тревога OR отбой", True), ("шахед*", True), ("тревога", False)],
)
def test_is_fts_syntax(query: str, raw: bool) -> None:
    assert is_fts_syntax(query) is raw


def bold(text: str, words: list[str]) -> list[str]:
    rendered = snippet(text, words)
    return [rendered.plain[span.start : span.end] for span in rendered.spans if span.style == "bold"]


def test_snippet_highlights_inflected_forms() -> None:
    text = "Сегодня объявлена эвакуации жителей, Эвакуацию продолжат завтра"
    assert bold(text, ["эвакуация"]) == ["эвакуации", "Эвакуацию"]
    assert snippet(text, ["эвакуация"]).plain == text


def test_snippet_highlights_english_by_stem() -> None:
    assert bold("Residents evacuated from the cities", ["evacuate", "city"]) == ["evacuated", "cities"]


def test_snippet_of_long_text_is_a_window_around_the_first_hit() -> None:
    text = "начало " + "слово " * 100 + "тревога " + "хвост " * 100
    rendered = snippet(text, ["тревога"])
    assert rendered.plain.startswith("…")
    assert rendered.plain.endswith("…")
    assert len(rendered.plain) <= 162
    assert bold(text, ["тревога"]) == ["тревога"]


def test_snippet_flattens_newlines() -> None:
    assert "\n" not in snippet("строка\nтревога\nещё", ["тревога"]).plain


def test_snippet_without_hits() -> None:
    assert bold("ничего интересного", ["тревога"]) == []
