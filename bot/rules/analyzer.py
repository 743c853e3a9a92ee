"""A post read as an analyst reads it: the rules' verdict, the places it names, the channel's context.

The pipeline and `tgmon rules check` both read posts through an `Analyzer`, in post order, so a
monitoring channel's shorthand is judged alike live, in a replay and in an evaluation.

Places are looked for only where they matter: in posts the rules matched (about 3% of a feed) and
in monitoring channels while a threat is open there, whose shorthand is made of them. The other
posts cost the engine alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from bot.places.finder import PlaceFinder
from bot.rules.context import ThreatContext
from bot.rules.engine import Document, Engine, Verdict


class Analyzer:
    """`engine` may be swapped while running (a rules file reloaded); the context carries over, with the
    new pack's `[monitors]` times."""

    def __init__(
        self,
        engine: Engine,
        finder: PlaceFinder | None = None,
        homes: Callable[[int], Sequence[int]] = lambda _channel_id: (),
        context: ThreatContext | None = None,
    ) -> None:
        self._engine = engine
        self.finder = finder
        self.homes = homes
        self.context = context or ThreatContext(engine.monitors.quiet, reopen=engine.monitors.reopen)

    @property
    def engine(self) -> Engine:
        return self._engine

    @engine.setter
    def engine(self, engine: Engine) -> None:
        self._engine = engine
        self.context.quiet, self.context.reopen = engine.monitors.quiet, engine.monitors.reopen

    def verdict(self, doc: Document, *, new: bool = True) -> Verdict:
        """The post's verdict with its places; `new` posts (not edits) move the channel's context."""
        result, tokens = self.engine.read(doc)
        monitored = self.context.applies(doc)
        threat_open = monitored and self.context.is_open(doc)
        if not result.matches and not threat_open:
            return result  # no alert, and no threat for a shorthand post to update: its places would not be used
        if self.finder is not None:
            alarm = result.alert or threat_open
            home = self.homes(doc.channel_id) if doc.channel_id is not None else ()
            places = self.finder.find(doc.text, home, alarm=alarm, tokens=tokens)
            if places:
                result = replace(result, places=tuple(places))
        if monitored and new:
            result = self.context.apply(doc, result)
        return result
