"""Which alerts reach whom: routing, mutes, cooldowns and the folding of one statement posted by many.

Decided when an alert is raised, inside the transaction that stores its post, so a decision is
made once and survives restarts: a suppressed alert is stored with its reason (`muted …`,
`cooldown`, `duplicate`) and no delivery, and `/last` can still show it.

- **Duplicates.** The same normalized text (words folded as the rules fold them; links, mentions,
  punctuation and emoji ignored) in the same category from another channel within `dedup_window`
  becomes a source of the first alert instead of a new one. Sent copies are edited to list it.
- **Cooldown.** After an alert of a channel and category, the same channel's alerts of that
  category within `cooldown` (post time) are not sent again. All-clears are never held back.
- **Mutes** by channel, tag, category or rule, for a duration, set from the analyst chat or the CLI.
- **Routes**: a destination may take only some categories or channel tags; by default it takes all.

Configured in `config/alerts.toml` (optional; see the commented example in `config/`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.errors import ConfigError, UserError
from bot.models import bare_channel_id
from bot.places.finder import Mention
from bot.places.gazetteer import load_gazetteer
from bot.rules.normalize import FOLDED_WORD_RE, blank_links, fold_mixed_words, fold_text
from bot.settings import format_validation_error, read_toml

DEFAULT_COOLDOWN = timedelta(seconds=60)
DEFAULT_DEDUP_WINDOW = timedelta(minutes=10)
MAX_DURATION = timedelta(days=3660)  # ten years: longer is a typo, and overflows datetime arithmetic
MUTE_KINDS = ("channel", "tag", "category", "rule")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str | int | float) -> timedelta:
    """`90s`, `10m`, `2h`, `1d`, `1w`, or bare seconds; ValueError naming the expected form."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise ValueError(f"a duration such as 90s, 10m, 2h or 1d (got {value!r})")
        seconds = float(match.group(1)) * _UNITS[(match.group(2) or "s").lower()]
    if not 0 <= seconds <= MAX_DURATION.total_seconds():  # also NaN and infinity
        raise ValueError(f"a duration from 0 to {MAX_DURATION.days} days (got {value!r})")
    return timedelta(seconds=seconds)


def fingerprint(text: str) -> str | None:
    """The text as its words, normalized: a repost or a forward of the same statement gives the same one."""
    folded, _ = fold_text(blank_links(text))
    words = FOLDED_WORD_RE.findall(fold_mixed_words(folded))
    if not words:
        return None
    return hashlib.blake2b(" ".join(words).encode(), digest_size=10).hexdigest()


def mute_target(value: str) -> str:
    """`channel:@name`, `channel:123`, `@name`, `tag:governors`, `category:uav`, `rule:drone-attack`.

    Normalized to the forms `mute_targets` gives an alert: a channel by its bare id (a `-100…` chat
    id is stripped as Telegram's Bot API writes it) or by `@name`, in lower case.
    """
    text = value.strip()
    if text.startswith("@"):
        text = f"channel:{text}"
    kind, _, name = text.partition(":")
    kind, name = kind.lower(), name.strip()
    if kind == "channel":
        name = _channel_name(name)
    elif kind != "rule":
        name = name.lower()
    if kind not in MUTE_KINDS or not name:
        raise UserError(
            f"mute target {value!r}: expected channel:@name, channel:<id>, tag:<tag>, category:<category> or rule:<id>"
        )
    return f"{kind}:{name}"


def _channel_name(name: str) -> str:
    """`@Name`/`Name` → `@name`; `-1001234` / `1234` → `1234`; empty when it names nothing."""
    if name.lstrip("-").isdigit():
        number = bare_channel_id(int(name))
        return str(number) if number is not None else ""
    bare = name.removeprefix("@").lower()
    return f"@{bare}" if bare else ""


def mute_targets(alert: Mapping[str, Any]) -> list[str]:
    """Every target that would silence this alert."""
    targets = [f"channel:{alert['channel_id']}", f"category:{alert['category']}"]
    if alert.get("channel_username"):
        targets.append(f"channel:@{str(alert['channel_username']).lower()}")
    targets += [f"tag:{tag.lower()}" for tag in alert.get("channel_tags") or ()]
    targets += [f"rule:{rule}" for rule in alert.get("rules") or ()]
    return targets


@dataclass(frozen=True, slots=True)
class Route:
    """A destination's share: only these categories, channel tags and places (empty: all of them).

    A route with places takes the alerts of those places and of anything inside them, and the alerts
    that name no place or only a whole country: an analyst covering Kursk gets Kursk's alerts and
    the militias' call to all of Russia's border regions, not Kyiv's.
    """

    destination: str
    categories: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    places: frozenset[int] = frozenset()  # gazetteer ids

    def accepts(self, alert: Mapping[str, Any], places: Sequence[Mention] = ()) -> bool:
        if self.categories and alert["category"] not in self.categories:
            return False
        if self.tags and not self.tags & {t.lower() for t in alert.get("channel_tags") or ()}:
            return False
        named = [m for m in places if m.place.kind != "country"]
        return not self.places or not named or any(not m.lineage.isdisjoint(self.places) for m in named)


@dataclass(slots=True)
class AlertPolicy:
    destinations: Sequence[str] = ()
    routes: Mapping[str, Route] = field(default_factory=dict)
    tags_of: Callable[[int, str | None], Sequence[str]] = lambda _id, _name: ()
    cooldown: timedelta = DEFAULT_COOLDOWN
    dedup_window: timedelta = DEFAULT_DEDUP_WINDOW

    def route(self, alert: Mapping[str, Any], places: Sequence[Mention] = ()) -> list[str]:
        return [d for d in self.destinations if d not in self.routes or self.routes[d].accepts(alert, places)]


class _RouteConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chat: int | None = None
    destination: str | None = None
    categories: list[str] = []
    tags: list[str] = []
    places: list[str] = []

    @field_validator("categories", "tags", "places", mode="before")
    @classmethod
    def _list(cls, value: object) -> object:
        if isinstance(value, str):
            raise ValueError('a list of strings, e.g. ["evacuation"]')
        return value


class _AlertsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cooldown: str | int | float = Field(default="60s")
    dedup_window: str | int | float = Field(default="10m")
    route: list[_RouteConfig] = []


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    cooldown: timedelta = DEFAULT_COOLDOWN
    dedup_window: timedelta = DEFAULT_DEDUP_WINDOW
    routes: tuple[Route, ...] = ()
    source: str = "config/alerts.toml"

    def check(self, destinations: Sequence[str]) -> None:
        """A route naming no configured destination would silently route nothing: an error instead."""
        known = set(destinations)
        problems = [
            f"{self.source}: route[{index}]: {route.destination} is not a destination; configured:"
            f" {', '.join(destinations) or 'none'} (ANALYST_CHAT_ID, TGMON_NOTIFIERS, ALERT_WEBHOOK_URL…)"
            for index, route in enumerate(self.routes)
            if route.destination not in known
        ]
        if problems:
            raise ConfigError(*problems)

    def policy(self, destinations: Sequence[str], tags_of: Callable[[int, str | None], Sequence[str]]) -> AlertPolicy:
        known = set(destinations)
        return AlertPolicy(
            destinations,
            {r.destination: r for r in self.routes if r.destination in known},
            tags_of,
            self.cooldown,
            self.dedup_window,
        )


def load_alerts_config(path: Path) -> AlertsConfig:
    """`config/alerts.toml`; absent means the defaults. Every problem is one line naming the key."""
    if not path.exists():
        return AlertsConfig(source=str(path))
    try:
        parsed = _AlertsFile.model_validate(read_toml(path))
    except ValidationError as exc:
        raise ConfigError(*format_validation_error(str(path), exc)) from None
    problems = []
    durations = {}
    for key in ("cooldown", "dedup_window"):
        try:
            durations[key] = parse_duration(getattr(parsed, key))
        except ValueError as exc:
            problems.append(f"{path}: {key}: expected {exc}")
    routes = []
    for index, route in enumerate(parsed.route):
        if (route.chat is None) == (route.destination is None):
            problems.append(f"{path}: route[{index}]: give `chat` (a Telegram chat id) or `destination`, not both")
            continue
        name = route.destination or f"telegram:{route.chat}"
        places = set()
        for number, place in enumerate(route.places):
            found = load_gazetteer().find(place)
            if not found:
                problems.append(
                    f"{path}: route[{index}].places[{number}]: no place named {place!r}; write it as in"
                    ' Ukrainian or Russian ("Київська область", "Курская область", "Бровари"), or its'
                    ' ISO code ("UA-32", "RU-KRS")'
                )
            else:
                places.add(found[0].id)
        tags = frozenset(t.lower() for t in route.tags)
        routes.append(Route(name, frozenset(route.categories), tags, frozenset(places)))
    if problems:
        raise ConfigError(*problems)
    return AlertsConfig(durations["cooldown"], durations["dedup_window"], tuple(routes), str(path))
