"""Inflection-aware word keys: pymorphy3 (Russian, Ukrainian) and the Snowball stemmer (English).

Rule terms are expanded once, at load, into every inflected form of their lexemes ("тревога" →
тревоги, тревогу, тревогой, …). Posts then match by a dictionary lookup per token, with no
morphological analysis on the hot path: analysing every new word of a feed with pymorphy costs
about 100 µs a word, which would cap throughput far below what a busy feed needs.
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

import pymorphy3
import Stemmer

from bot.rules.normalize import normalize_word

_UK_ONLY = frozenset("іїєґ")
_RU_ONLY = frozenset("ыэъ")
_OPEN_CLASSES = frozenset({"NOUN", "ADJF", "ADJS", "VERB", "INFN", "PRTF", "PRTS", "GRND", "ADVB"})


@cache
def _analyzer(lang: str) -> Any:
    return pymorphy3.MorphAnalyzer(lang=lang)


@cache
def _english() -> Any:
    return Stemmer.Stemmer("english")


def is_latin(word: str) -> bool:
    return word.isascii()


def languages_of(word: str) -> tuple[str, ...]:
    """Which Cyrillic dictionaries a word may belong to, by its letters."""
    letters = set(word)
    if letters & _UK_ONLY:
        return ("uk",)
    if letters & _RU_ONLY:
        return ("ru",)
    return ("ru", "uk")


def english_key(word: str) -> str:
    """The stem an English word is indexed under; prefixed so it never collides with a Cyrillic form."""
    stem: str = _english().stemWord(word)
    return "en:" + stem


def is_known(word: str) -> bool:
    """Is a Cyrillic word in the Russian or Ukrainian dictionary (as opposed to an abbreviation, a name)?"""
    return any(_analyzer(lang).word_is_known(word) for lang in languages_of(word))


@lru_cache(maxsize=65536)
def forms(word: str) -> frozenset[str]:
    """Every normalized surface form of a (normalized, Cyrillic) term word.

    A word given in dictionary form expands to the lexemes of that lemma only ("стать" does not drag
    in "сталь"); an unknown word expands only if pymorphy's guess keeps it as its own lemma ("шахед" →
    шахеды, but "бпла" stays literal rather than becoming a verb).
    """
    found = {word}
    for lang in languages_of(word):
        analyzer = _analyzer(lang)
        parses = analyzer.parse(word)
        if not parses:
            continue
        if analyzer.word_is_known(word):
            chosen = [p for p in parses if normalize_word(p.normal_form) == word] or parses[:1]
        else:
            top = parses[0]
            own = normalize_word(top.normal_form) == word and top.tag.POS in _OPEN_CLASSES
            chosen = [top] if own else []
        for parse in chosen:
            found.update(normalize_word(form.word) for form in parse.lexeme)
    return frozenset(found)


@lru_cache(maxsize=65536)
def lemmas(token: str) -> tuple[str, ...]:
    """Dictionary forms of a post token, for `rules explain`; each token is analysed once."""
    if is_latin(token):
        return (english_key(token),) if token.isalpha() else (token,)
    out: list[str] = []
    for lang in languages_of(token):
        analyzer = _analyzer(lang)
        if analyzer.word_is_known(token) or lang == languages_of(token)[0]:
            lemma = normalize_word(analyzer.parse(token)[0].normal_form)
            if lemma not in out:
                out.append(lemma)
    return tuple(out) or (token,)
