"""`tgmon rules lint`: what loads fine but probably does not do what its author meant.

Load errors (bad regex, unknown key) stop a rules file; these are warnings, one line each, naming
the rule and field: a likely typo (a word no dictionary knows), a rule that can never fire, a
duplicate, an English stem so short it matches half the language.
"""

from __future__ import annotations

import re
from collections import defaultdict

from bot.rules.engine import ALL_CLEAR, STOP_WORDS, term_words
from bot.rules.loader import RuleSpec
from bot.rules.morphology import english_key, is_known, is_latin


def _word_problems(word: str, *, alone: bool) -> str | None:
    bare = word.lstrip('="').rstrip("*")
    if word.endswith("*") or word.startswith('"') or bare.isdigit():
        return None
    if is_latin(bare):
        stem = english_key(bare).removeprefix("en:")
        if alone and len(stem) <= 2:
            return f"English stem {stem!r} of {bare!r} is very short and matches many words"
        return None
    if not is_known(bare) and len(bare) > 4 and not bare.isupper():
        return f"{bare!r} is in neither the Russian nor the Ukrainian dictionary: matched as written (a typo?)"
    return None


def lint(specs: list[RuleSpec], where: str) -> list[str]:
    warnings: list[str] = []
    seen_terms: dict[tuple[str, tuple[str, ...]], str] = {}
    categories = {spec.category for spec in specs}
    for index, spec in enumerate(specs):
        label = f"{where}: rule[{index}] ({spec.id})"
        any_words = {tuple(term_words(t)) for t in spec.any}
        # What a trigger word cannot match costs recall silently; an exclusion word no dictionary
        # knows just matches as written, which is usually what its author meant.
        for position, term in enumerate(spec.any):
            words = term_words(term)
            if all(w.lstrip('="').rstrip("*") in STOP_WORDS for w in words):
                warnings.append(f"{label}.any[{position}]: {term!r} has only common words; it matches everywhere")
            for word in words:
                problem = _word_problems(word, alone=len(words) == 1)
                if problem:
                    warnings.append(f"{label}.any[{position}]: {problem}")
            key = (spec.category, tuple(words))
            if key in seen_terms:
                warnings.append(f"{label}.any[{position}]: {term!r} repeats a term of {seen_terms[key]}")
            seen_terms.setdefault(key, f"rule {spec.id}")
        for position, term in enumerate(spec.none):
            if tuple(term_words(term)) in any_words:
                warnings.append(f"{label}.none[{position}]: {term!r} is also an `any` term: the rule cannot fire on it")
        for position, pattern in enumerate(spec.regex):
            if re.compile(pattern, re.IGNORECASE).search(""):
                warnings.append(
                    f"{label}.regex[{position}]: {pattern!r} matches the empty string: it fires on every post"
                )
        for category in spec.clears:
            if category not in categories:
                warnings.append(f"{label}.clears: no rule raises {category!r}")
        if spec.category == ALL_CLEAR and spec.severity not in ("info", "low"):
            warnings.append(f"{label}.severity: an all-clear at {spec.severity!r} outranks the alarms it ends")
    return warnings


def unused_tags(specs: list[RuleSpec], known_tags: set[str], where: str) -> list[str]:
    """Rules scoped to tags no configured channel carries never fire on live traffic."""
    missing: dict[str, list[str]] = defaultdict(list)
    for spec in specs:
        for tag in spec.tags:
            if tag not in known_tags:
                missing[tag].append(spec.id)
    return [
        f"{where}: tag {tag!r} (rules {', '.join(ids)}) is on no channel in channels.toml"
        for tag, ids in sorted(missing.items())
    ]
