"""Inflection-aware word keys: pymorphy3 (Russian, Ukrainian) and the Snowball stemmer (English).

Rule terms are expanded once, at load, into every inflected form of their lexemes ("тревога" →
тревоги, тревогу, тревогой, …). Posts then match by a dictionary lookup per token, with no
morphological analysis on the hot path: analysing every new word of a feed with pymorphy costs
about 100 µs a word, which would cap throughput far below what a busy feed needs.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import sys
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


# Derivations an analyst means by one word: "эвакуация" also means "эвакуируйтесь". Suffix pairs
# rather than shared prefixes, which would drag "эвакуатор" (a tow truck) into evacuation.
_DERIVATIONS = {
    "ru": (
        ("ация", ("ировать", "ироваться", "овать", "оваться")),
        ("яция", ("ировать", "ироваться")),
        ("ировать", ("ация",)),
        ("ироваться", ("ация",)),
        ("овать", ("ация",)),
        ("оваться", ("ация",)),
    ),
    "uk": (
        ("ація", ("ювати", "юватися", "увати", "уватися")),
        ("ювати", ("ація",)),
        ("юватися", ("ація",)),
        ("увати", ("ація",)),
        ("уватися", ("ація",)),
    ),
}


def derived(lemma: str, lang: str) -> list[str]:
    """Dictionary lemmas derived from `lemma` by the suffix pairs above."""
    analyzer = _analyzer(lang)
    found = []
    for suffix, replacements in _DERIVATIONS[lang]:
        if lemma.endswith(suffix):
            base = lemma[: -len(suffix)]
            for replacement in replacements:
                candidate = base + replacement
                if analyzer.word_is_known(candidate) and any(
                    p.normal_form == candidate for p in analyzer.parse(candidate)
                ):
                    found.append(candidate)
    return found


# Lexemes hold thousands of forms that are folded once, at load: the per-word cache of
# `normalize_word` (sized for the tokens of a live feed) would only be flushed by them.
_fold = normalize_word.__wrapped__


def _lexemes(analyzer: Any, word: str) -> list[Any]:
    """Parses whose lexemes a term word stands for.

    A word given in dictionary form stands for that lemma only ("стать" does not drag in "сталь");
    an unknown word expands only if pymorphy's guess keeps it as its own lemma ("шахед" → шахеды),
    and stays literal otherwise ("бпла" rather than a guessed verb).
    """
    parses = analyzer.parse(word)
    if not parses:
        return []
    if analyzer.word_is_known(word):
        return [p for p in parses if normalize_word(p.normal_form) == word] or parses[:1]
    top = parses[0]
    own = normalize_word(top.normal_form) == word and top.tag.POS in _OPEN_CLASSES
    return [top] if own else []


@lru_cache(maxsize=65536)
def forms(word: str, *, derive: bool = True) -> frozenset[str]:
    """Every normalized surface form of a (normalized, Cyrillic) term word, derivations included."""
    found = {word}
    for lang in languages_of(word):
        analyzer = _analyzer(lang)
        for parse in _lexemes(analyzer, word):
            found.update(_fold(form.word) for form in parse.lexeme)
            if derive:
                for lemma in derived(parse.normal_form, lang):
                    for related in _lexemes(analyzer, lemma):
                        found.update(_fold(form.word) for form in related.lexeme)
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


def release_build_memory() -> None:
    """After compiling rules: drop the expansion cache and hand freed memory back to the system.

    Expanding words creates hundreds of thousands of short-lived objects; without this, a service
    keeps their peak as its resident size for as long as it runs.
    """
    forms.cache_clear()
    gc.collect()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)
