"""The rule engine: `match(document) -> list[Match]`, indexed by word so cost does not grow with rules.

A post goes through up to three passes, each only if the previous one found something:

1. folded text, tokens as plain strings, one set intersection with the forms of every *anchor* word
   (each term's most selective word). Most posts end here, at C speed.
2. each token's word ids, phrases and rule conditions checked without offsets.
3. exact tokenization with offsets (URLs and mentions skipped, hashtags split), for the report.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple

import ahocorasick_rs

if TYPE_CHECKING:
    from bot.places.finder import Mention

from bot.rules.morphology import english_key, forms, is_known, is_latin
from bot.rules.normalize import (
    FOLDED_WORD_RE,
    WORD_RE,
    Token,
    blank_links,
    detect_language,
    fold_mixed_words,
    fold_text,
    mixed_pairs,
    normalize_word,
    split_hashtags,
    tokenize,
)

SEVERITIES = ("info", "low", "medium", "high", "critical")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
ALL_CLEAR = "all_clear"
_CACHE_LIMIT = 200_000
_NO_IDS: frozenset[int] = frozenset()

# Too common to find a phrase by: "пройти в укрытие" is looked for only where "укрытие" occurs.
_STOP_WORDS_TEXT = """
в во на с со к ко по из от до за для о об обо у и а но не ни же ли бы что как это там тут где при про через
над под без между перед после уже еще все так его ее их он она они мы вы ты я быть
тот этот весь свой который такой один сам себя мой наш ваш чей кто где когда
і й та з зі із від під між після що як це де вже бути той цей свій який такий його її їх він вона вони
the a an of in on to at for by with from and or not is are was were be been being it its this that as into
out up down over under near
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())


@dataclass(slots=True)
class Document:
    """What rules see of a post: text and where it came from, nothing of Telegram."""

    text: str
    channel_id: int | None = None
    channel_username: str | None = None
    channel_tags: frozenset[str] = frozenset()
    date: datetime | None = None


@dataclass(frozen=True, slots=True)
class Match:
    rule: str
    category: str
    severity: str
    start: int  # offsets into the original text, in Python characters
    end: int
    term: str  # the rule term as written


@dataclass(frozen=True, slots=True)
class Verdict:
    """A post's matches summed up: its top category, and whether it is an alarm or an all-clear."""

    matches: tuple[Match, ...] = ()
    category: str | None = None
    severity: str | None = None
    alert: bool = False
    all_clear: bool = False
    clears: tuple[str, ...] = ()  # for an all-clear: the categories it ends (empty: whatever is open)
    places: tuple[Mention, ...] = ()  # the places the post names (see `bot.rules.analyzer`)

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m.rule for m in self.matches))


NO_MATCH = Verdict()


def verdict(matches: Sequence[Match]) -> Verdict:
    """Top category by severity (rule order breaks ties); an all-clear counts only when nothing alarms.

    Alarm words that overlap an all-clear phrase are that all-clear's ("отбой [воздушной тревоги]",
    "[опасность атаки БПЛА] отменена", "отбой [опасности БПЛА]"): they are dropped rather than
    counted as an alarm.
    """
    if not matches:
        return NO_MATCH
    cleared = [(m.start, m.end) for m in matches if m.category == ALL_CLEAR]
    if cleared:
        matches = [
            m for m in matches if m.category == ALL_CLEAR or not any(m.start < b and a < m.end for a, b in cleared)
        ]
    alarms = [m for m in matches if m.category != ALL_CLEAR]
    pool = alarms or list(matches)
    top = max(pool, key=lambda m: SEVERITY_RANK[m.severity])
    return Verdict(tuple(matches), top.category, top.severity, bool(alarms), not alarms)


@dataclass(frozen=True, slots=True, eq=False)  # identity: a term is looked up by hash many times a post
class Term:
    """A word or phrase: word ids in order, each next word at most `near` words after the last.

    `anchor` is the word a post must contain before the phrase is looked for at all.
    """

    text: str
    words: tuple[int, ...]
    near: int
    anchor: int


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    category: str
    severity: str
    any: tuple[Term, ...] = ()
    all: tuple[tuple[Term, ...], ...] = ()
    none: tuple[Term, ...] = ()
    regex: tuple[re.Pattern[str], ...] = ()
    channels: frozenset[str] = frozenset()  # lowercased usernames and decimal ids
    tags: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()
    clears: frozenset[str] = frozenset()

    def scope_problem(self, doc: Document, language: Callable[[], str | None]) -> str | None:
        """Why the rule does not apply to this post's channel or language; None when it does."""
        if self.channels and not (
            str(doc.channel_id) in self.channels
            or (doc.channel_username is not None and doc.channel_username.lower() in self.channels)
        ):
            return "another channel"
        if self.tags and not (self.tags & doc.channel_tags):
            return f"channel not tagged {' or '.join(sorted(self.tags))}"
        if self.languages and language() not in self.languages:
            return f"language {language()}, not {' or '.join(sorted(self.languages))}"
        return None


@dataclass(slots=True)
class Vocabulary:
    """Word ids, and the tables mapping a normalized token to the ids it can stand for."""

    ids: dict[tuple[str, str], int] = field(default_factory=dict)
    selectivity: dict[int, int] = field(default_factory=dict)
    by_form: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    by_english: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    prefixes: dict[str, int] = field(default_factory=dict)

    def word(self, normalized: str) -> int:
        """Id of a term word: `word`, `word*` (a prefix), `=word` (this lemma only, no derivations)
        or `"word` (this very form: from a term in double quotes)."""
        literal = normalized.startswith('"')
        exact = normalized.startswith("=")
        stem = normalized.lstrip('="').rstrip("*")
        if normalized.endswith("*"):
            kind = "prefix"
        elif literal:
            kind = "literal"
        elif is_latin(stem) and not stem.isdigit():
            kind = "en"
        else:
            kind = "exact" if exact else "form"
        key = (kind, stem)
        if key in self.ids:
            return self.ids[key]
        word_id = self.ids[key] = len(self.ids)
        self.selectivity[word_id] = selectivity(stem)
        if kind == "prefix":
            self.prefixes[stem] = word_id
        elif kind == "en":
            self.by_english[english_key(stem)].add(word_id)
        elif kind == "literal":
            self.by_form[stem].add(word_id)
        else:
            for form in forms(stem, derive=not exact) if not stem.isdigit() else (stem,):
                self.by_form[form].add(word_id)
        return word_id

    def term(self, text: str, near: int) -> Term:
        words = tuple(self.word(w) for w in term_words(text))
        return Term(text, words, near, max(words, key=self.selectivity.__getitem__))


def selectivity(word: str) -> int:
    """How rarely a word is likely to occur: what a phrase's anchor is chosen by.

    Words outside the dictionaries (БПЛА, ДРГ, КАБ, names) are the rarest; then longer words; words
    of one or two letters ("КР", "де" of "Сен-Жан-де-Люз") the least. Stop words are never required.
    """
    word = word.lstrip('="')
    if word in STOP_WORDS:
        return 0
    if len(word) <= 2:
        return 1
    if not word.isdigit() and not is_latin(word) and not is_known(word.rstrip("*")):
        return 100 + len(word)
    return len(word)


_FORM, _PREFIX, _ENGLISH, _MIXED = 0, 1, 2, 3


class _Requirement(NamedTuple):
    """What pass 1 must see for a term to be possible: its words, and a word of each `all` condition."""

    words: frozenset[int]
    groups: tuple[frozenset[int], ...]
    tags: frozenset[str] = frozenset()  # the rule's channel tags: out of scope elsewhere, so never possible
    # Phrases whose stop words pass 1 does not see ("ракеты на", "under fire"): when one of these is
    # all the post may hold, its words are looked for in order before pass 2 is paid for.
    confirm: tuple[Term, ...] = ()

    def met(self, present: set[int], tags: frozenset[str]) -> bool:
        if self.tags and self.tags.isdisjoint(tags):
            return False
        return self.words <= present and all(not group.isdisjoint(present) for group in self.groups)


class _IdSets:
    """One frozenset object per distinct set of word ids: most of 70,000 forms share a handful."""

    def __init__(self) -> None:
        self.sets: list[frozenset[int]] = []
        self._index: dict[frozenset[int], int] = {}

    def index(self, ids: Iterable[int]) -> int:
        key = frozenset(ids)
        found = self._index.get(key)
        if found is None:
            found = self._index[key] = len(self.sets)
            self.sets.append(key)
        return found

    def shared(self, ids: Iterable[int]) -> frozenset[int]:
        return self.sets[self.index(ids)]


class _WordScan(NamedTuple):
    """Aho-Corasick automaton of every form of the rule words, and what each of its keys stands for."""

    automaton: ahocorasick_rs.BytesAhoCorasick
    values: list[int]  # per key: which set of word ids it stands for, and its kind (see `_word_scan`)


# Pass 1 scans a post as single bytes, every character that is not a letter or a digit a space: half
# the bytes of UTF-8, offsets that are the text's own, and whole words found by keys with a space on
# either side instead of by a look at the characters around each hit. Characters Windows-1251 lacks
# (emoji, other scripts) become spaces too: a boundary where there was none can only add hits, which
# pass 2 reads exactly, never hide a word.
_SCAN_CODEC = "cp1251"


def _scan_table() -> bytes:
    table = bytearray(range(256))
    for byte in range(256):
        char = bytes([byte]).decode(_SCAN_CODEC, errors="replace")
        if not char.isalnum():
            table[byte] = 0x20
    return bytes(table)


_SCAN_TABLE = _scan_table()


def scan_bytes(text: str) -> bytes:
    """`text` as pass 1 scans it: one byte a character, words between spaces (see `_SCAN_CODEC`)."""
    return text.encode(_SCAN_CODEC, errors="replace").translate(_SCAN_TABLE)


def _word_scan(vocabulary: Vocabulary, wanted: set[int], id_sets: _IdSets) -> _WordScan:
    """Every form of the `wanted` words in one automaton: pass 1 is one Rust-speed scan of a post.

    Each key's value is one int (a tuple per key costs 70 bytes more, times 70,000 keys): the key's
    kind and which set of word ids it stands for. A form is keyed as a whole word (" form "), a prefix
    as the start of one (" prefix"), an English key is the part of a word its stem shares, confirmed
    by stemming. The contiguous NFA scans as fast here as the DFA, in 1 MB instead of 40.
    """
    keys: list[bytes] = []
    values: list[int] = []

    def add(key: str, kind: int, ids: Iterable[int]) -> None:
        keys.append(scan_bytes(key))
        values.append((id_sets.index(ids) << 2) | kind)

    for form, ids in vocabulary.by_form.items():
        if ids & wanted:
            add(f" {form} ", _FORM, ids & wanted)
    for prefix, word_id in vocabulary.prefixes.items():
        if word_id in wanted:
            add(f" {prefix}", _PREFIX, (word_id,))
    english: set[str] = set()
    for (kind, word), word_id in vocabulary.ids.items():
        if kind == "en" and word_id in wanted:
            stem = english_key(word).removeprefix("en:")
            english.add(os.path.commonprefix([stem, word]) or word)  # noqa: RUF071 (a character prefix)
    for key in sorted(english):
        add(f" {key}", _ENGLISH, ())
    # Look-alike letters meeting the other script: the same scan tells whether any word needs folding.
    # (Pairs with "ѐ" or "ѝ", which Windows-1251 lacks, would be a letter and a space: left out.)
    for pair in mixed_pairs():
        if b" " not in scan_bytes(pair):
            add(pair, _MIXED, ())
    automaton = ahocorasick_rs.BytesAhoCorasick(keys, implementation=ahocorasick_rs.Implementation.ContiguousNFA)
    return _WordScan(automaton, values)


def term_words(text: str) -> list[str]:
    """A term's words as the tokenizer sees them; a trailing `*` marks a prefix, a leading `=` an exact
    lemma, and a whole term in double quotes (`'"продолжалась"'`) these exact word forms."""
    if len(text) > 1 and text.startswith('"') and text.endswith('"'):
        return ['"' + normalize_word(m.group()) for m in WORD_RE.finditer(text)]
    words = []
    for match in WORD_RE.finditer(text):
        word = normalize_word(match.group())
        if text[match.end() : match.end() + 1] == "*":
            word += "*"
        if match.start() and text[match.start() - 1] == "=":
            word = "=" + word
        words.append(word)
    return words


@dataclass(frozen=True, slots=True)
class MonitorTimes:
    """A rule pack's `[monitors]` table (see `bot.rules.context`): how long a threat a monitoring channel
    announced stays open without an alarm or an update, and how long after it closed a counted move
    reopens it."""

    quiet: timedelta = timedelta(minutes=40)
    reopen: timedelta = timedelta(hours=6)


MONITOR_DEFAULTS = MonitorTimes()


class Engine:
    """A compiled rule set; `bot.rules.loader` builds it from TOML."""

    def __init__(
        self, rules: Sequence[Rule], vocabulary: Vocabulary, source: str = "", monitors: MonitorTimes = MONITOR_DEFAULTS
    ) -> None:
        self.rules = tuple(rules)
        self.source = source
        self.monitors = monitors
        self._rules_by_id = {rule.id: rule for rule in self.rules}
        self._id_sets = _IdSets()
        self._by_form = {form: self._id_sets.shared(ids) for form, ids in vocabulary.by_form.items()}
        self._by_english = {key: self._id_sets.shared(ids) for key, ids in vocabulary.by_english.items()}
        self._prefixes = tuple(vocabulary.prefixes.items())
        self._prefix_starts = tuple(vocabulary.prefixes)
        self._anchor_rules: dict[int, list[int]] = defaultdict(list)
        for index, rule in enumerate(self.rules):
            for anchor in dict.fromkeys(t.anchor for t in rule.any):
                self._anchor_rules[anchor].append(index)

        # Pass 1 wants every word of a term (bar stop words) somewhere in the post, in any order, and a
        # word of each of its rule's `all` conditions: it does not depend on guessing which word of a
        # phrase is rare, and "прямо сейчас" alone does not wake a rule that also wants a drone.
        def needed(term: Term) -> frozenset[int]:
            return frozenset(w for w in term.words if vocabulary.selectivity[w]) or frozenset(term.words)

        # Each requirement is filed under one of its words, the rarest: it can be met only where that
        # word occurs, so a post checks each requirement once at most, not once per word it shares.
        self._needs: dict[int, list[_Requirement]] = defaultdict(list)
        wanted: set[int] = set()
        phrases: dict[tuple[frozenset[int], tuple[frozenset[int], ...], frozenset[str]], list[Term] | None] = {}
        for rule in self.rules:
            groups = tuple(frozenset().union(*(needed(t) for t in g)) for g in rule.all)
            for term in rule.any:
                key = (needed(term), groups, rule.tags)
                known = phrases.setdefault(key, [])
                if len(key[0]) == len(set(term.words)):
                    phrases[key] = None  # a term pass 1 sees whole: no confirming needed
                elif known is not None:
                    known.append(term)
        for (words, groups, tags), confirm in phrases.items():
            wanted |= words.union(*groups)
            requirement = _Requirement(words, groups, tags, tuple(confirm or ()))
            self._needs[max(words, key=lambda w: (vocabulary.selectivity[w], w))].append(requirement)
        self._scan = _word_scan(vocabulary, wanted, self._id_sets)
        self._regex_rules = frozenset(i for i, r in enumerate(self.rules) if r.regex)
        # One alternation per channel-tag scope: a monitors-only pattern is not searched in every news post.
        by_scope: dict[frozenset[str], list[str]] = defaultdict(list)
        for rule in self.rules:
            by_scope[rule.tags].extend(p.pattern for p in rule.regex)
        self._scoped_regex = [
            (tags, re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE))
            for tags, patterns in by_scope.items()
            if patterns
        ]
        self._all_forms = frozenset(self._by_form)
        self._cache: dict[str, frozenset[int]] = {}
        self._english_words: dict[str, frozenset[int]] = {}

    # -- token → word ids -------------------------------------------------------------------------

    def _ids(self, norm: str) -> frozenset[int]:
        """Word ids a normalized token stands for, computed once per distinct token."""
        found = self._cache.get(norm)
        if found is not None:
            return found
        ids = set(self._by_form.get(norm, _NO_IDS))
        if is_latin(norm) and norm.isalpha():
            ids.update(self._by_english.get(english_key(norm), _NO_IDS))
        ids.update(word_id for prefix, word_id in self._prefixes if norm.startswith(prefix))
        result = frozenset(ids) if ids else _NO_IDS
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[norm] = result
        return result

    def _english_ids(self, word: str) -> frozenset[int]:
        found = self._english_words.get(word)
        if found is None:
            found = self._by_english.get(english_key(word), _NO_IDS) if word.isalpha() else _NO_IDS
            if len(self._english_words) >= _CACHE_LIMIT:
                self._english_words.clear()
            self._english_words[word] = found
        return found

    def _worth_a_look(
        self, text: str, folded: str, tags: frozenset[str] = frozenset(), *, folded_mixed: bool = False
    ) -> bool | None:
        """Pass 1: could any rule fire? One Aho-Corasick scan finds which term words occur.

        Keys are whole words (see `_word_scan`); English hits are stems, confirmed by stemming the
        word they start. A term is possible when all its words occur; where and in what order is for
        pass 2. None: the text mixes scripts inside a word, fold it (`fold_mixed_words`) and ask again.
        """
        folded = " " + folded + " "  # so that the first and last words have spaces around them, as keyed
        present: set[int] = set()
        id_sets = self._id_sets.sets
        values = self._scan.values
        for key, start, end in self._scan.automaton.find_matches_as_indexes(scan_bytes(folded), overlapping=True):
            value = values[key]
            kind = value & 3
            if kind == _MIXED:
                if folded_mixed:
                    continue
                return None
            if kind == _ENGLISH:
                while folded[end].isalnum():
                    end += 1
                present.update(self._english_ids(folded[start + 1 : end]))
            else:
                present.update(id_sets[value >> 2])
        # After the scan, which tells whether a word mixes scripts: a regex rule firing must not leave
        # "тpевога" (a Latin p) unfolded for the word rules.
        for scope, pattern in self._scoped_regex:
            if (not scope or not scope.isdisjoint(tags)) and pattern.search(text):
                return True
        needs = self._needs
        confirm: list[Term] = []
        for word in present:
            for requirement in needs.get(word, ()):
                if requirement.met(present, tags):
                    if not requirement.confirm:
                        return True
                    confirm.extend(requirement.confirm)
        return bool(confirm) and self._in_order(folded, confirm)

    def _in_order(self, folded: str, terms: Sequence[Term]) -> bool:
        """Whether any of these phrases occurs with its stop words: pass 2's word search, no rules."""
        token_ids = self._all_ids(FOLDED_WORD_RE.findall(blank_links(folded)))
        positions = _positions(token_ids)
        return any(_find(term, token_ids, positions) for term in terms)

    def _all_ids(self, tokens: Sequence[str]) -> list[frozenset[int]]:
        """Word ids per token; only tokens that can be a rule word (a set intersection) are looked up."""
        relevant = set(self._all_forms.intersection(tokens))
        if self._by_english or self._prefixes:
            starts = self._prefix_starts
            relevant.update(t for t in set(tokens) if (t.isascii() or t.startswith(starts)) and self._ids(t))
        ids = self._ids
        return [ids(t) if t in relevant else _NO_IDS for t in tokens]

    # -- matching ---------------------------------------------------------------------------------

    def match(self, doc: Document) -> list[Match]:
        return self._match(doc)[0]

    def verdict(self, doc: Document) -> Verdict:
        return self.read(doc)[0]

    def read(self, doc: Document) -> tuple[Verdict, list[Token] | None]:
        """The verdict, and the post's words with offsets when something matched (the places finder
        reads the same words: tokenizing a long post again would cost as much as matching it)."""
        matches, tokens = self._match(doc)
        result = verdict(matches)
        if result.all_clear:
            ends = sorted({c for m in result.matches for c in self._rules_by_id[m.rule].clears})
            result = replace(result, clears=tuple(ends))
        return result, tokens

    def _match(self, doc: Document) -> tuple[list[Match], list[Token] | None]:
        text = doc.text
        if not text:
            return [], None
        split = split_hashtags(text)
        folded, aligned = fold_text(split)
        possible = self._worth_a_look(text, folded, doc.channel_tags)
        if possible is None:  # a word mixes scripts: fold it (letter for letter: alignment holds), look again
            folded = fold_mixed_words(folded, check=False)
            possible = self._worth_a_look(text, folded, doc.channel_tags, folded_mixed=True)
        if not possible:
            return [], None
        if aligned and split == text:
            # The folded text's offsets are the original's: its words, with offsets, are the answer.
            words = list(FOLDED_WORD_RE.finditer(blank_links(folded)))
            matches = self._evaluate(doc, self._all_ids([w.group() for w in words]), [w.span() for w in words])
            return matches, [Token(w.start(), w.end(), w.group()) for w in words] if matches else None
        if not self._evaluate(doc, self._all_ids(FOLDED_WORD_RE.findall(folded)), None):
            return [], None
        exact = tokenize(text)
        return self._evaluate(doc, self._all_ids([t.text for t in exact]), [(t.start, t.end) for t in exact]), exact

    def _evaluate(
        self, doc: Document, token_ids: Sequence[frozenset[int]], spans: Sequence[tuple[int, int]] | None
    ) -> list[Match]:
        """Rules that fire on these tokens; without `spans`, matches carry no offsets (a yes/no pass)."""
        positions = _positions(token_ids)
        candidates = {r for word in positions for r in self._anchor_rules.get(word, ())} | self._regex_rules
        if not candidates:
            return []
        language: list[str | None] = []

        def lang() -> str | None:
            if not language:
                language.append(detect_language(doc.text))
            return language[0]

        found_cache: dict[Term, list[tuple[int, int]]] = {}

        def hits(term: Term) -> list[tuple[int, int]]:
            if term not in found_cache:
                found = _find(term, token_ids, positions)
                found_cache[term] = [(spans[a][0], spans[b][1]) for a, b in found] if spans else found
            return found_cache[term]

        matches: list[Match] = []
        for index in sorted(candidates):
            rule = self.rules[index]
            reason, found = _judge(rule, doc, lang, hits, positions)
            if reason == FIRED:
                matches.extend(
                    Match(rule.id, rule.category, rule.severity, start, end, term) for term, (start, end) in found
                )
        return matches

    def explain(self, doc: Document) -> Explanation:
        """Every rule's judgement on a post, with the tokens and lemmas it was made from."""
        tokens = tokenize(doc.text)
        token_ids = self._all_ids([t.text for t in tokens])
        positions = _positions(token_ids)

        def hits(term: Term) -> list[tuple[int, int]]:
            return [(tokens[a].start, tokens[b].end) for a, b in _find(term, token_ids, positions)]

        def lang() -> str | None:
            return detect_language(doc.text)

        reports = []
        for rule in self.rules:
            reason, found = _judge(rule, doc, lang, hits, positions)
            reports.append(RuleReport(rule.id, rule.category, reason == FIRED, reason, found))
        return Explanation(tokens, reports, self.verdict(doc))


FIRED = "fired"
HitFinder = Callable[[Term], list[tuple[int, int]]]


def _judge(
    rule: Rule, doc: Document, language: Callable[[], str | None], hits: HitFinder, present: Container[int]
) -> tuple[str, list[tuple[str, tuple[int, int]]]]:
    """A rule's decision on a post and the term hits behind it: FIRED, or why not.

    `present` holds the word ids found in the post: a term whose first word is absent cannot occur,
    which spares looking up most of a long exclusion list.
    """
    problem = rule.scope_problem(doc, language)
    if problem is not None:
        return f"out of scope: {problem}", []
    spans: dict[tuple[int, int], str] = {}  # terms that overlap ("эвакуация", "эвакуироваться") report a span once
    for term in rule.any:
        if term.words[0] in present:
            for span in hits(term):
                spans.setdefault(span, term.text)
    for pattern in rule.regex:
        for found_match in pattern.finditer(doc.text):
            spans.setdefault(found_match.span(), pattern.pattern)
    found = [(text, span) for span, text in spans.items()]
    if not found:
        return "no `any` term or regex found", []
    for group in rule.all:
        if not any(t.words[0] in present and hits(t) for t in group):
            return f"`all` condition missing: {' | '.join(t.text for t in group)}", found
    for term in rule.none:
        if term.words[0] in present and hits(term):
            return f"excluded by `none` term: {term.text}", found
    return FIRED, found


@dataclass(slots=True)
class RuleReport:
    rule: str
    category: str
    fired: bool
    reason: str
    hits: list[tuple[str, tuple[int, int]]]


@dataclass(slots=True)
class Explanation:
    tokens: list[Token]
    reports: list[RuleReport]
    verdict: Verdict


def _positions(token_ids: Sequence[frozenset[int]]) -> dict[int, list[int]]:
    """Where each word id occurs: the token indexes, in order."""
    positions: dict[int, list[int]] = defaultdict(list)
    for index, ids in enumerate(token_ids):
        for word in ids:
            positions[word].append(index)
    return positions


def _find(term: Term, token_ids: Sequence[frozenset[int]], positions: dict[int, list[int]]) -> list[tuple[int, int]]:
    """Token index ranges where the term's words occur in order, each within `near` of the last."""
    found = []
    count = len(token_ids)
    for first in positions.get(term.words[0], ()):
        last = first
        for word in term.words[1:]:
            nxt = next((i for i in range(last + 1, min(last + 2 + term.near, count)) if word in token_ids[i]), None)
            if nxt is None:
                break
            last = nxt
        else:
            found.append((first, last))
    return found
