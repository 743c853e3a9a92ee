"""What each monitoring channel is warning about now, so that its shorthand reads as threat updates.

Air-defence monitors announce a threat once ("Шахеди на Київщину", "Балістика!") and then post only
where it is: "ОБУХІВ!!!!", "Васильків зі сходу", "2 на Київ", "Таценки". No rule can match such a
post by its words. Read in the channel's order, it is an update of the threat the channel last
announced, while that threat is open: an all-clear closes it, and so does `quiet` time (by post
time, so a replay decides as the live service did) without an alarm or an update. A counted move
("7 на Павлиш", "1 на Славутич з півдня") reopens the threat the channel announced last, within
`reopen` time: digest channels post "не фіксується" after each wave and the next wave's counts
without announcing it again.

The state is per channel and lives in memory: the pipeline and `tgmon rules check` feed posts in
order, and a restart begins with no threat open until the channel announces one again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from bot.rules.engine import MONITOR_DEFAULTS, Document, Match, Verdict

MONITORS = "monitors"
CONTEXT_RULE = "channel-context"
DEFAULT_QUIET = MONITOR_DEFAULTS.quiet
# How long after a channel's threat closed a counted move ("1 на Павлоград зі сходу") reopens it.
DEFAULT_REOPEN = MONITOR_DEFAULTS.reopen
# A post naming places and no more than this many words is shorthand ("Васильків Заріччя акустика").
_SHORT_POST_WORDS = 8
# "Not towards us", "ours", "past us", "clear": a place named to say there is no threat there.
_NOT_A_THREAT = re.compile(
    r"\b(?:не\s+(?:до|на)\s+нас|то\s+св(?:ої|ои)|це\s+св(?:ої|ои)|мимо|повз\s+нас|чисто|тихо|не\s+фіксу\w*"
    r"|не\s+фиксиру\w*|відбій|отбой|минул[аи]|мин(?:ует|ула)|дорозвідк\w*|доровіздк\w*|перевірк\w*"
    r"|без\s+(?:фіксації|цілей|ракет|шахедів|швидкісних|бпла)|відсутн\w*|зникл\w*|помилково|посадк\w*"
    r"|донат\w*|банк[аиу]|підтрима\w*|мирн\w*\s+неб\w*)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"\w+")
_DIGIT = re.compile(r"\d")
# In a short post while a threat is open: how many, where it goes, that it hits. "Дві", "Ще йде",
# "7 шт", "Зараз гепне", "Наближення", "Всім увага".
_UPDATE_WORDS = re.compile(
    r"(?<!\w)(?:\d+|одн[аеоу]|два|дві|три|чотири|п'ять|кілька|декілька|штук\w*|шт|ще|йде|йдуть|летить|летять"
    r"|падає|падають|впала|влупило|гепн\w*|гепат\w*|жахн\w*|бахн\w*|вибух\w*|заход\w*|залітає|залітають"
    r"|підлітає|підлітають|наближ\w*|облітає|кружля\w*|крутиться|спуск|групов\w*|ціл[ьі]|увага|уважно"
    r"|ховайтесь|в укриття|лягли|ляг\w*|сховал\w*|ракет\w*|ещё|идет|летит|летят|взрыв\w*)(?!\w)",
    re.IGNORECASE,
)
_SHORT_UPDATE_WORDS = 6


@dataclass(slots=True)
class _Threat:
    category: str
    severity: str
    announced: datetime | None  # when the channel last raised this threat (an alarm, not an update)
    last: datetime | None  # when it was last alarmed or updated


class ThreatContext:
    """Open threats per channel tagged `monitors`, and the verdicts they give to shorthand posts.

    A channel may have several threats open at once (drones and missiles on the same night): an
    update belongs to the one announced last. An all-clear ends the categories it names (`clears`),
    or else the threat announced last, so "Чисто по цілям" after a missile salvo leaves the drones open.
    """

    def __init__(
        self, quiet: timedelta = DEFAULT_QUIET, tag: str = MONITORS, reopen: timedelta = DEFAULT_REOPEN
    ) -> None:
        self.quiet = quiet
        self.tag = tag
        self.reopen = reopen
        self._open: dict[int, dict[str, _Threat]] = {}
        self._last: dict[int, _Threat] = {}  # the threat each channel announced last, open or closed

    def applies(self, doc: Document) -> bool:
        return doc.channel_id is not None and self.tag in doc.channel_tags

    def is_open(self, doc: Document) -> bool:
        """Is a threat open in this post's channel, at its time, or one this post may reopen (it has a
        number: a counted move)?"""
        return self._current(doc) is not None or (
            _DIGIT.search(doc.text) is not None and self._reopenable(doc) is not None
        )

    def apply(self, doc: Document, verdict: Verdict) -> Verdict:
        """The post's verdict with the channel's context; updates the context. Call in post order.

        `verdict.places` must hold the places of the post: a shorthand update names one.
        """
        if not self.applies(doc) or doc.channel_id is None:
            return verdict
        threat = self._current(doc)
        threats = self._open.setdefault(doc.channel_id, {})
        if verdict.all_clear:
            ended = verdict.clears or ([threat.category] if threat is not None else [])
            for category in ended:
                threats.pop(category, None)
            return verdict
        if verdict.alert and verdict.category is not None and verdict.severity is not None:
            threats[verdict.category] = self._last[doc.channel_id] = _Threat(
                verdict.category, verdict.severity, doc.date, doc.date
            )
            return verdict
        if verdict.matches:
            return verdict
        if threat is None:
            closed = self._reopenable(doc)
            if closed is None or not any(m.count is not None and m.target for m in verdict.places):
                return verdict
            threat = threats[closed.category] = self._last[doc.channel_id] = _Threat(
                closed.category, closed.severity, closed.announced, doc.date
            )
        span = self._update(doc.text, verdict)
        if span is None:
            return verdict
        threat.last = doc.date
        start, end = span
        match = Match(CONTEXT_RULE, threat.category, threat.severity, start, end, doc.text[start:end])
        return replace(verdict, matches=(match,), category=threat.category, severity=threat.severity, alert=True)

    def _current(self, doc: Document) -> _Threat | None:
        """The threat announced last among those still open in the post's channel."""
        if doc.channel_id is None:
            return None
        threats = self._open.get(doc.channel_id)
        if not threats:
            return None
        if doc.date is not None:
            for category, threat in list(threats.items()):
                if threat.last is not None and doc.date - threat.last > self.quiet:
                    del threats[category]
        return max(threats.values(), key=_announced, default=None)

    def _reopenable(self, doc: Document) -> _Threat | None:
        """The threat the post's channel announced last, closed no longer than `reopen` ago."""
        last = self._last.get(doc.channel_id) if doc.channel_id is not None else None
        if last is None or doc.date is None or last.last is None or doc.date - last.last > self.quiet + self.reopen:
            return None
        return last

    @staticmethod
    def _update(text: str, verdict: Verdict) -> tuple[int, int] | None:
        """Where a post updates the open threat, or None: a place with a direction, a count or as a
        target; a short post naming a place; a short post saying how many, where to or that it hits."""
        if _NOT_A_THREAT.search(text):
            return None
        words = len(_WORD.findall(text))
        if verdict.places:
            first = verdict.places[0]
            moving = any(m.direction or m.count is not None or m.target for m in verdict.places)
            if moving or words <= _SHORT_POST_WORDS:
                return first.start, first.end
        if words <= _SHORT_UPDATE_WORDS:
            found = _UPDATE_WORDS.search(text)
            if found is not None:
                return found.span()
        return None


def _announced(threat: _Threat) -> datetime:
    return threat.announced or datetime.min.replace(tzinfo=UTC)
