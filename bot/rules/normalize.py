"""Text normalization and tokenization shared by rule terms and posts, so both sides compare alike.

Tokens keep their offsets in the original text: matches are reported, and highlighted, where the
analyst sees them, whatever folding happened underneath.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import NamedTuple

# Zero-width characters and soft hyphens hide inside words to dodge filters; they are part of a token
# and removed from it. Combining marks (stress accents) likewise.
_INVISIBLE = "\u00ad\u200b\u200c\u200d\u2060\ufeff"
_MARKS = "\u0300-\u036f"
_APOSTROPHES = "'’ʼ`"
WORD_RE = re.compile(rf"(?:[^\W_]|[{_INVISIBLE}{_MARKS}])+(?:[{_APOSTROPHES}](?:[^\W_]|[{_INVISIBLE}{_MARKS}])+)*")
# Words of text already folded by `fold_text` (no invisible characters or marks left): a simpler, faster pattern.
FOLDED_WORD_RE = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_NEEDS_DROP = re.compile(f"[{_INVISIBLE}{_MARKS}]")
# Characters NFKC would change that are common in posts and never part of a word: replaced by
# plain equivalents first, so the full NFKC pass runs only on texts that need it for their words.
# Each is one character for one, so offsets into the folded text stay offsets into the original.
_HARMLESS = (("\xa0", " "), ("\u2009", " "), ("\u200a", " "), ("\u202f", " "), ("…", "."), ("№", " "))
# Links: a scheme or `www.` / `t.me/` up to the next space, or a bare domain. Each is looked for only
# where a scan led by a literal character (fast in `re`) finds its mark: a full search tries every word.
_SCHEME_RE = re.compile(r"(?:https?://|www\.|t\.me/)\S+", re.I)
_SCHEME_MARK = re.compile(r"://|\.(?:me/|(?<=www\.))", re.I)
_DOMAIN_RE = re.compile(r"\b[\w.-]+\.(?:com|org|net|ru|ua|me|io)(?:/\S*)?", re.I)
_DOMAIN_MARK = re.compile(r"\.(?:com|org|net|ru|ua|me|io)", re.I)
MENTION_RE = re.compile(r"(?<![\w@])@[A-Za-z0-9_]{3,32}")
HASHTAG_RE = re.compile(r"#([^\W_]\w*)")
_CAMEL_RE = re.compile(r"(?<=[a-zа-яёіїєґ])(?=[A-ZА-ЯЁІЇЄҐ])")

DROP_TABLE: dict[int, str | None] = dict.fromkeys(map(ord, _INVISIBLE))
DROP_TABLE.update(dict.fromkeys(range(0x0300, 0x0370)))  # combining marks left after NFKC
DROP_TABLE.update({ord(c): "'" for c in _APOSTROPHES})
DROP_TABLE[ord("ё")] = "е"

# Letters that look alike in Latin and Cyrillic, after casefolding ("тpевога" with a Latin p).
LATIN_LOOKALIKES = "aceopxykmthbi"
CYRILLIC_LOOKALIKES = "асеорхукмтнві"
_LATIN_TO_CYRILLIC = str.maketrans(LATIN_LOOKALIKES, CYRILLIC_LOOKALIKES)
_CYRILLIC_TO_LATIN = str.maketrans(CYRILLIC_LOOKALIKES, LATIN_LOOKALIKES)


def mixed_pairs() -> list[str]:
    """Every two-letter sequence where a look-alike letter meets the other script: seeing none of them
    in a text proves it has no word `fold_scripts` would change."""
    cyrillic = [chr(c) for c in range(0x430, 0x460)]
    latin = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    pairs = []
    for lookalike in LATIN_LOOKALIKES:
        pairs += [lookalike + c for c in cyrillic] + [c + lookalike for c in cyrillic]
    for lookalike in CYRILLIC_LOOKALIKES:
        pairs += [lookalike + c for c in latin] + [c + lookalike for c in latin]
    return pairs


_LATIN_LETTERS = re.compile("[a-z]")
_CYRILLIC_LETTERS = re.compile("[\u0400-\u04ff]")
_UK_LETTERS = re.compile("[іїєґ]")
_RU_LETTERS = re.compile("[ыэъё]")


class Token(NamedTuple):
    start: int
    end: int
    text: str  # normalized


@lru_cache(maxsize=65536)
def fold_scripts(word: str) -> str:
    """Fold look-alike letters of a mixed Latin/Cyrillic (casefolded) word into its majority script."""
    latin = len(_LATIN_LETTERS.findall(word))
    if not latin:
        return word
    cyrillic = len(_CYRILLIC_LETTERS.findall(word))
    if not cyrillic:
        return word
    return word.translate(_LATIN_TO_CYRILLIC if cyrillic >= latin else _CYRILLIC_TO_LATIN)


@lru_cache(maxsize=262144)
def normalize_word(raw: str) -> str:
    """NFKC, casefold, ё→е, invisible characters and accents removed, look-alike letters folded."""
    if raw.isascii():
        return raw.lower()
    # After NFKC, a combining mark left standing has no precomposed letter (й, ї, é stay whole):
    # in Cyrillic that is a stress accent, safe to drop.
    word = unicodedata.normalize("NFKC", raw).casefold().translate(DROP_TABLE)
    return fold_scripts(word)


def split_camel(word: str) -> list[tuple[int, str]]:
    """`ВоздушнаяТревога` → [(0, 'Воздушная'), (9, 'Тревога')]; offsets relative to the word."""
    parts = []
    start = 0
    for match in _CAMEL_RE.finditer(word):
        parts.append((start, word[start : match.start()]))
        start = match.start()
    parts.append((start, word[start:]))
    return parts


def _blank(match: re.Match[str]) -> str:
    return " " * len(match.group())


def fold_text(text: str) -> tuple[str, bool]:
    """A whole text normalized as `normalize_word` does each word, bar mixed-script folding; and
    whether each character stayed where it was (then the folded text's offsets are the original's).

    Each step is skipped when a quick check says it would change nothing: on typical posts the
    checks cost a few microseconds and the full NFKC or translate passes tens.
    """
    aligned = True
    if not text.isascii():
        for old, new in _HARMLESS:
            if old in text:
                text = text.replace(old, new)
        if not unicodedata.is_normalized("NFKC", text):
            text = unicodedata.normalize("NFKC", text)
            aligned = False
    folded = text.casefold()
    aligned = aligned and len(folded) == len(text)  # casefolding only ever lengthens ("ß" → "ss")
    folded = folded.replace("ё", "е").replace("’", "'").replace("ʼ", "'").replace("`", "'")
    if _NEEDS_DROP.search(folded):
        return folded.translate(DROP_TABLE), False
    return folded, aligned


def blank_links(text: str) -> str:
    """URLs and @mentions turned into spaces of the same length: no words there, offsets intact."""
    if _SCHEME_MARK.search(text):
        text = _SCHEME_RE.sub(_blank, text)
    if _DOMAIN_MARK.search(text):
        text = _DOMAIN_RE.sub(_blank, text)
    if "@" in text:
        text = MENTION_RE.sub(_blank, text)
    return text


# A Latin letter with a Cyrillic one on either side. Led by `[a-z]`, so the regex engine skips
# through Cyrillic text fast; an alternation led by a Cyrillic class would test every character.
_MIXED_LETTERS = re.compile("[a-z](?:(?<=[\u0400-\u04ff][a-z])|(?=[\u0400-\u04ff]))")


def _fold_word(match: re.Match[str]) -> str:
    return fold_scripts(match.group())


def fold_mixed_words(folded: str, *, check: bool = True) -> str:
    """`fold_text` output with mixed-script words folded, as `normalize_word` folds each word.

    Mixed words are rare: one fast scan finds there are none (skipped with `check=False`, for a
    caller that knows there are some).
    """
    if check and _MIXED_LETTERS.search(folded) is None:
        return folded
    return FOLDED_WORD_RE.sub(_fold_word, folded)


def _split_camel_hashtag(match: re.Match[str]) -> str:
    return " ".join(part for _, part in split_camel(match.group()))


def split_hashtags(text: str) -> str:
    """`#ВоздушнаяТревога` → `#Воздушная Тревога`: hashtag words as separate words (offsets change)."""
    return HASHTAG_RE.sub(_split_camel_hashtag, text) if "#" in text else text


def tokenize(text: str) -> list[Token]:
    """Word tokens with original offsets; URLs and @mentions skipped, hashtags split into words."""
    tokens = []
    for match in WORD_RE.finditer(blank_links(text)):
        start, end = match.span()
        raw = match.group()
        if start and text[start - 1] == "#" and not raw.islower():
            for offset, part in split_camel(raw):
                tokens.append(Token(start + offset, start + offset + len(part), normalize_word(part)))
            continue
        tokens.append(Token(start, end, normalize_word(raw)))
    return tokens


def detect_language(text: str) -> str | None:
    """`uk`, `ru` or `en` by letters; None when there are no letters to go by."""
    folded = text.casefold()
    cyrillic = len(_CYRILLIC_LETTERS.findall(folded))
    latin = len(_LATIN_LETTERS.findall(folded))
    if cyrillic and cyrillic >= latin:
        return "uk" if len(_UK_LETTERS.findall(folded)) > len(_RU_LETTERS.findall(folded)) else "ru"
    return "en" if latin else None
