"""Analyst words as a full-text query, and found again in texts: `tgmon search` and `/search`.

A word becomes an OR of all its inflected forms, the same expansion rules use, so "эвакуация" finds
"эвакуации" and "эвакуацию"; English words match by stem prefix.
"""

from __future__ import annotations

import re

from rich.text import Text

from bot.alerts.format import excerpt_window, merge_spans
from bot.errors import UserError
from bot.rules.morphology import english_key, forms, is_latin
from bot.rules.normalize import WORD_RE, normalize_word, tokenize

_FTS_SYNTAX = re.compile(r'["*()^:]|\b(?:AND|OR|NOT|NEAR)\b')
SNIPPET_CHARS = 160


def is_fts_syntax(query: str) -> bool:
    """Does the query use FTS5 operators? Then it is passed through as written."""
    return _FTS_SYNTAX.search(query) is not None


def query_words(query: str) -> list[str]:
    return [normalize_word(m.group()) for m in WORD_RE.finditer(query)]


def _prefix(word: str) -> str:
    """English words match by the part their stem shares with them ("cities" → "citi" → "cit")."""
    stem = english_key(word).removeprefix("en:") if word.isalpha() else word
    common = 0
    while common < min(len(stem), len(word)) and stem[common] == word[common]:
        common += 1
    return word[: max(common, 1)]


def search_expression(query: str) -> str:
    """Words to an FTS5 query: every word must occur, in any of its forms."""
    groups = []
    for word in query_words(query):
        if is_latin(word):
            groups.append(f'"{_prefix(word)}"*')
        else:
            groups.append("(" + " OR ".join(f'"{form}"' for form in sorted(forms(word))) + ")")
    if not groups:
        raise UserError(f"search query {query!r} has no words to look for")
    return " AND ".join(groups)


def snippet(text: str, words: list[str]) -> Text:
    """An excerpt around the first hit, the query's words (any form) in bold."""
    cyrillic = set().union(*(forms(w) for w in words if not is_latin(w))) if words else set()
    prefixes = tuple(_prefix(w) for w in words if is_latin(w))
    spans = [
        (t.start, t.end) for t in tokenize(text) if t.text in cyrillic or (prefixes and t.text.startswith(prefixes))
    ]
    spans = merge_spans(spans)
    start, end = excerpt_window(text, spans, SNIPPET_CHARS)
    out = Text("…" if start else "")
    cursor = start
    for s, e in spans:
        if e <= start or s >= end:
            continue
        out.append(text[cursor : max(s, start)].replace("\n", " "))
        out.append(text[max(s, start) : min(e, end)], style="bold")
        cursor = min(e, end)
    out.append(text[cursor:end].replace("\n", " ") + ("…" if end < len(text) else ""))
    return out
