"""Normalization shared by rule terms and posts: folding, tokens with original offsets, hashtags, links."""

from __future__ import annotations

import pytest

from bot.rules.engine import Document
from bot.rules.normalize import detect_language, normalize_word, split_camel, tokenize
from tests.helpers import rules_engine


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Тревога", "тревога"),
        ("ТРЕВОГА", "тревога"),
        ("Ёлка", "елка"),
        ("прилёты", "прилеты"),
        ("тре\u00adвога", "тревога"),  # soft hyphen
        ("тре\u200bвога", "тревога"),  # zero-width space
        ("тре\u200dво\u2060га\ufeff", "тревога"),
        ("трево\u0301га", "тревога"),  # stress accent
        ("тpевога", "тревога"),  # Latin p inside a Cyrillic word
        ("aтака", "атака"),  # Latin a
        ("еvacuate", "evacuate"),  # Cyrillic е inside a Latin word
        ("ＥＶＡＣＵＡＴＥ", "evacuate"),  # fullwidth, by NFKC
        ("Straße", "strasse"),  # casefold, not lower
        ("й", "й"),
        ("її", "її"),
        ("Evacuate", "evacuate"),
    ],
)
def test_normalize_word(raw: str, expected: str) -> None:
    assert normalize_word(raw) == expected


def test_tokens_keep_original_offsets() -> None:
    text = "😀 Ёжик, тре\u00adвога!"
    tokens = tokenize(text)
    assert [t.text for t in tokens] == ["ежик", "тревога"]
    assert [text[t.start : t.end] for t in tokens] == ["Ёжик", "тре\u00adвога"]


def test_hashtag_split_into_words() -> None:
    text = "Внимание #ВоздушнаяТревога в области"
    tokens = tokenize(text)
    assert [t.text for t in tokens] == ["внимание", "воздушная", "тревога", "в", "области"]
    assert [text[t.start : t.end] for t in tokens][1:3] == ["Воздушная", "Тревога"]


def test_lowercase_hashtag_is_one_word() -> None:
    assert [t.text for t in tokenize("#тревога")] == ["тревога"]


def test_urls_and_mentions_are_not_words() -> None:
    text = "Тревога @trevoga_bot https://t.me/trevoga/12 www.trevoga.ru trevoga.com/x и всё"
    assert [t.text for t in tokenize(text)] == ["тревога", "и", "все"]


@pytest.mark.parametrize(
    "link", ["HTTPS://trevoga", "http://тревога", "Www.Trevoga.Ru/тревога", "T.ME/trevoga", "тревога.ru/тревога"]
)
def test_links_in_any_case_and_without_a_dot_are_not_words(link: str) -> None:
    assert [t.text for t in tokenize(f"Тревога {link} и всё")] == ["тревога", "и", "все"]


def test_email_like_and_short_at_are_words() -> None:
    # "@ab" is too short to be a username: the word stays.
    assert [t.text for t in tokenize("@ab тревога")] == ["ab", "тревога"]


def test_split_camel() -> None:
    assert split_camel("ВоздушнаяТревога") == [(0, "Воздушная"), (9, "Тревога")]
    assert split_camel("тревога") == [(0, "тревога")]


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Повітряна тривога в Києві", "uk"),
        ("Воздушная тревога в Курске", "ru"),
        ("Air raid alert in Kyiv", "en"),
        ("12:30 !!!", None),
        ("", None),
    ],
)
def test_detect_language(text: str, language: str | None) -> None:
    assert detect_language(text) == language


# --- through the engine: post text and rule terms compare alike -----------------------------------

ENGINE_RULES = ({"id": "alarm", "category": "air_raid", "any": ["тревога"]},)


@pytest.mark.parametrize(
    "text",
    [
        "тpевога",  # Latin p
        "ТРЕВОГА",
        "тре\u00adвога",
        "тре\u200bвога",
        "трево\u0301га",
        "#ВоздушнаяТревога",
        "#тревога",
        "ﬁ тревога",  # a ligature before it, changed by NFKC
    ],
)
def test_disguised_words_match(text: str) -> None:
    (match,) = rules_engine(*ENGINE_RULES).match(Document(text))
    assert normalize_word(text[match.start : match.end]) == "тревога"


@pytest.mark.parametrize(
    "text",
    ["https://t.me/trevoga_news/тревога", "https://сигнал-тревога.рф/", "тревожно", "тревогатревога", "@trevoga_news"],
)
def test_links_mentions_and_other_words_do_not_match(text: str) -> None:
    assert rules_engine(*ENGINE_RULES).match(Document(text)) == []
