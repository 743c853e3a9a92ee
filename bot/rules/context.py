"""What each monitoring channel is warning about now, so that its shorthand reads as threat updates.

Air-defence monitors announce a threat once ("Шахеди на Київщину", "Балістика!") and then post only
where it is: "ОБУХІВ!!!!", "Васильків зі сходу", "2 на Київ", "Таценки". No rule can match such a
post by its words. Read in the channel's order, it is an update of the threat the channel last
announced, while that threat is open: an all-clear closes it, and so does `quiet` time (by post
time, so a replay decides as the live service did) without an alarm or an update.

The state is per channel and lives in memory: the pipeline and `tgmon rules check` feed posts in
order, and a restart begins with no threat open until the channel announces one again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.rules.engine import Document, Match, Verdict

MONITORS = "monitors"
CONTEXT_RULE = "channel-context"
DEFAULT_QUIET = timedelta(minutes=40)
# A post naming places and no more than this many words is shorthand ("Васильків Заріччя акустика").
_SHORT_POST_WORDS = 8
# "Not towards us", "ours", "past us", "clear": a place named to say there is no threat there.
_NOT_A_THREAT = re.compile(
    r"\b(?:не\s+(?:до|на)\s+нас|то\s+св(?:ої|ои)|це\s+св(?:ої|ои)|мимо|повз\s+нас|чисто|тихо|не\s+фіксу\w*"
    r"|не\s+фиксиру\w*|відбій|отбой|минул[аи]|мин(?:ует|ула))\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W\d_]+")


@dataclass(slots=True)
class _Threat:
    category: str
    severity: str
    since: datetime | None
    last: datetime | None


class ThreatContext:
    """Open threats per channel tagged `monitors`, and the verdicts they give to shorthand posts."""

    def __init__(self, quiet: timedelta = DEFAULT_QUIET, tag: str = MONITORS) -> None:
        self.quiet = quiet
        self.tag = tag
        self._open: dict[int, _Threat] = {}

    def applies(self, doc: Document) -> bool:
        return doc.channel_id is not None and self.tag in doc.channel_tags

    def is_open(self, doc: Document) -> bool:
        """Is a threat open in this post's channel, at its time?"""
        return self._current(doc) is not None

    def apply(self, doc: Document, verdict: Verdict) -> Verdict:
        """The post's verdict with the channel's context; updates the context. Call in post order.

        `verdict.places` must hold the places of the post: a shorthand update names one.
        """
        if not self.applies(doc):
            return verdict
        assert doc.channel_id is not None
        threat = self._current(doc)
        if verdict.all_clear:
            self._open.pop(doc.channel_id, None)
            return verdict
        if verdict.alert and verdict.category is not None and verdict.severity is not None:
            self._open[doc.channel_id] = _Threat(verdict.category, verdict.severity, doc.date, doc.date)
            return verdict
        if threat is None or verdict.matches or not self._is_update(doc.text, verdict):
            return verdict
        threat.last = doc.date
        first = verdict.places[0]
        match = Match(CONTEXT_RULE, threat.category, threat.severity, first.start, first.end, first.place.name)
        return replace(verdict, matches=(match,), category=threat.category, severity=threat.severity, alert=True)

    def _current(self, doc: Document) -> _Threat | None:
        if doc.channel_id is None:
            return None
        threat = self._open.get(doc.channel_id)
        if threat is None:
            return None
        if doc.date is not None and threat.last is not None and doc.date - threat.last > self.quiet:
            del self._open[doc.channel_id]
            return None
        return threat

    @staticmethod
    def _is_update(text: str, verdict: Verdict) -> bool:
        """A place with a direction, a count or as a target; or a short post naming a place."""
        if not verdict.places or _NOT_A_THREAT.search(text):
            return False
        if any(m.direction or m.count is not None or m.target for m in verdict.places):
            return True
        return len(_WORD.findall(text)) <= _SHORT_POST_WORDS
