"""Rules from TOML (`config/rules.toml`): validated, then compiled into an `Engine`.

Every problem is found at load time and reported with the rule and field it sits in; a rule file that
loads cannot fail later at match time (bad regexes included).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.errors import ConfigError
from bot.logging import get_logger
from bot.rules.engine import (
    ALL_CLEAR,
    MONITOR_DEFAULTS,
    SEVERITIES,
    Engine,
    MonitorTimes,
    Rule,
    Term,
    Vocabulary,
    term_words,
)
from bot.rules.morphology import release_build_memory
from bot.settings import format_validation_error, parse_username, read_toml

log = get_logger("tgmon.rules")

Severity = Literal["info", "low", "medium", "high", "critical"]
assert set(SEVERITIES) == set(Severity.__args__)  # type: ignore[attr-defined]
Language = Literal["ru", "uk", "en"]
_MIN_PREFIX = 3


def _check_term(term: str) -> str:
    words = term_words(term)
    if not words:
        raise ValueError(f"a word or phrase (got {term!r}, which has no letters or digits)")
    short = [w for w in words if w.endswith("*") and len(w.lstrip('="')) - 1 < _MIN_PREFIX]
    if short:
        raise ValueError(f"a prefix of at least {_MIN_PREFIX} letters before * (got {term!r})")
    return term


class RuleSpec(BaseModel):
    """One `[[rule]]` table, as written by an analyst."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    category: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    severity: Severity = "medium"
    description: str | None = None
    enabled: bool = True
    any: list[str] = []
    all: list[str | list[str]] = []
    none: list[str] = []
    regex: list[str] = []
    near: int = Field(0, ge=0, le=20)
    channels: list[str | int] = []
    tags: list[str] = []
    languages: list[Language] = []
    clears: list[str] = []

    @field_validator("any", "none")
    @classmethod
    def _terms(cls, terms: list[str]) -> list[str]:
        return [_check_term(t) for t in terms]

    @field_validator("all")
    @classmethod
    def _groups(cls, groups: list[str | list[str]]) -> list[str | list[str]]:
        for group in groups:
            for term in [group] if isinstance(group, str) else group:
                _check_term(term)
            if isinstance(group, list) and not group:
                raise ValueError("a term or a non-empty list of alternative terms")
        return groups

    @field_validator("regex")
    @classmethod
    def _regexes(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern, re.IGNORECASE)
            except (re.error, OverflowError, RecursionError) as exc:  # a{4294967296}, or parentheses 1,000 deep
                raise ValueError(f"a valid regular expression ({pattern!r}: {exc})") from None
        return patterns

    @field_validator("channels")
    @classmethod
    def _channels(cls, channels: list[str | int]) -> list[str | int]:
        out: list[str | int] = []
        for channel in channels:
            if isinstance(channel, int) or (isinstance(channel, str) and channel.strip().isdigit()):
                out.append(int(channel))
            else:
                out.append(parse_username(channel))
        return out

    @model_validator(mode="after")
    def _something_to_match(self) -> RuleSpec:
        if not self.any and not self.regex:
            raise ValueError("needs at least one `any` term or `regex`")
        if self.clears and self.category != ALL_CLEAR:
            raise ValueError(f"`clears` belongs to rules of category {ALL_CLEAR}")
        return self

    def compile(self, vocabulary: Vocabulary) -> Rule:
        def term(text: str, near: int = self.near) -> Term:
            return vocabulary.term(text, near)

        return Rule(
            id=self.id,
            category=self.category,
            severity=self.severity,
            any=tuple(term(t) for t in self.any),
            all=tuple(tuple(term(t) for t in ([g] if isinstance(g, str) else g)) for g in self.all),
            none=tuple(term(t, 0) for t in self.none),  # exclusions are fixed expressions: words adjacent
            regex=tuple(re.compile(p, re.IGNORECASE) for p in self.regex),
            channels=frozenset(str(c).lower() for c in self.channels),
            tags=frozenset(self.tags),
            languages=frozenset(self.languages),
            clears=frozenset(self.clears),
        )


class MonitorsSpec(BaseModel):
    """`[monitors]`: the channel context of channels tagged `monitors` (see `bot.rules.context`)."""

    model_config = ConfigDict(extra="forbid")

    quiet_minutes: float = Field(MONITOR_DEFAULTS.quiet.total_seconds() / 60, gt=0)
    reopen_minutes: float = Field(MONITOR_DEFAULTS.reopen.total_seconds() / 60, ge=0)

    def times(self) -> MonitorTimes:
        return MonitorTimes(timedelta(minutes=self.quiet_minutes), timedelta(minutes=self.reopen_minutes))


class RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lists: dict[str, list[str]] = {}
    monitors: MonitorsSpec = MonitorsSpec()
    rule: list[RuleSpec] = []


_LIST_FIELDS = ("any", "all", "none")


def expand_lists(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """`"@name"` in any/all/none stands for the terms of `[lists] name = [...]`.

    In `any` and `none` the list's terms join the others; in `all` the list is one condition that
    any of its terms satisfies. Shared vocabularies (drills, aftermath) are written once.
    """
    lists = raw.get("lists", {})
    rules = raw.get("rule")
    if not isinstance(lists, dict) or not isinstance(rules, list):
        return raw
    problems = []
    expanded_rules = []
    for index, rule in enumerate(rules):
        if not isinstance(rule, dict):
            expanded_rules.append(rule)
            continue
        rule = dict(rule)
        for field in _LIST_FIELDS:
            items = rule.get(field)
            if not isinstance(items, list):
                continue
            out: list[Any] = []
            for position, item in enumerate(items):
                if isinstance(item, str) and item.startswith("@"):
                    terms = lists.get(item[1:])
                    if not isinstance(terms, list):
                        label = _rule_label(raw, ("rule", index))
                        name = item[1:] if item[1:].isprintable() else repr(item[1:])  # "@\n": still one line
                        problems.append(
                            f"{where}: rule[{index}]{label}.{field}[{position}]: unknown list {item!r}"
                            f" (define it under [lists]: {name} = [...])"
                        )
                        continue
                    out.extend([terms] if field == "all" else terms)
                else:
                    out.append(item)
            rule[field] = out
        expanded_rules.append(rule)
    if problems:
        raise ConfigError(*problems)
    return {**raw, "rule": expanded_rules}


def _rule_label(raw: dict[str, Any], loc: tuple[int | str, ...]) -> str:
    """`rule[3]` → `rule[3] (evacuation-call)` so the analyst finds it by id."""
    if len(loc) >= 2 and loc[0] == "rule" and isinstance(loc[1], int):
        rules = raw.get("rule")
        if isinstance(rules, list) and loc[1] < len(rules) and isinstance(rules[loc[1]], dict):
            rule_id = rules[loc[1]].get("id")
            if isinstance(rule_id, str):
                return f" ({rule_id if rule_id.isprintable() else repr(rule_id)})"  # an id with "\n": one line
    return ""


def parse_rules(raw: dict[str, Any], where: str) -> list[RuleSpec]:
    return parse_pack(raw, where)[0]


def parse_pack(raw: dict[str, Any], where: str) -> tuple[list[RuleSpec], MonitorTimes]:
    """The enabled rules of a rules file, and its `[monitors]` times."""
    raw = expand_lists(raw, where)
    try:
        parsed = RulesFile.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for item, line in zip(exc.errors(), format_validation_error(where, exc), strict=True):
            label = _rule_label(raw, item["loc"])
            if label:
                head = f"{where}: rule[{item['loc'][1]}]"
                line = line.replace(head, head + label, 1)
            lines.append(line)
        raise ConfigError(*lines) from None
    seen: dict[str, int] = {}
    problems = []
    for index, spec in enumerate(parsed.rule):
        if spec.id in seen:
            problems.append(f"{where}: rule[{index}] ({spec.id}).id: already used by rule[{seen[spec.id]}]")
        seen[spec.id] = index
    if problems:
        raise ConfigError(*problems)
    return [spec for spec in parsed.rule if spec.enabled], parsed.monitors.times()


def build_engine(specs: list[RuleSpec], source: str = "", monitors: MonitorTimes = MONITOR_DEFAULTS) -> Engine:
    vocabulary = Vocabulary()
    engine = Engine([spec.compile(vocabulary) for spec in specs], vocabulary, source, monitors)
    release_build_memory()
    return engine


def load_rules(path: Path) -> Engine:
    """Load and compile a rules file; raises ConfigError with one line per problem."""
    specs, monitors = parse_pack(read_toml(path), str(path))
    if not specs:
        raise ConfigError(f"{path}: no enabled [[rule]] tables; copy the default pack from config/rules.toml")
    return build_engine(specs, str(path), monitors)


class RulesReloader:
    """Swaps in a changed rules file while the service runs (SIGHUP, or the file's mtime changing).

    A file that fails to load leaves the running rules in place; the error is logged, line by line,
    and the next change is tried again.
    """

    def __init__(self, path: Path, apply: Callable[[Engine], None], interval: float = 5.0) -> None:
        self.path = path
        self.apply = apply
        self.interval = interval
        self._mtime = self._stat()
        self._lock = asyncio.Lock()

    def _stat(self) -> float | None:
        try:
            return self.path.stat().st_mtime
        except OSError:
            return None

    async def reload(self, reason: str) -> bool:
        async with self._lock:
            self._mtime = self._stat()
            try:
                engine = await asyncio.to_thread(load_rules, self.path)
            except ConfigError as exc:
                log.error("rules.reload_failed", path=str(self.path), reason=reason, errors=list(exc.lines))
                return False
            self.apply(engine)
            log.info("rules.reloaded", path=str(self.path), reason=reason, rules=len(engine.rules))
            return True

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if self._stat() != self._mtime:
                await self.reload("file changed")
