"""Matching in a process of its own, so that a replay or a catch-up uses a second core.

Reading, storing and delivering hold the interpreter lock about half the time, and matching the
other half: in one process they take turns, in two they overlap. The rules process holds the
engine, the gazetteer and the monitoring channels' context; the pipeline sends it posts in batches,
in order, and gets their verdicts back (`None` for the great majority that match nothing, which
keeps the answers small). One worker, tasks in submission order: the context sees posts in order.

Only the rules process loads the rules: the main process does not hold a second copy of the engine
and its dictionaries. A rules file that fails to load is the same `ConfigError` it would be in
process, raised by `start()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path

from bot.places.finder import PlaceFinder
from bot.places.gazetteer import load_gazetteer
from bot.rules.analyzer import Analyzer
from bot.rules.engine import NO_MATCH, Document, Verdict
from bot.rules.loader import load_rules
from bot.settings import Channels

_analyzer: Analyzer | None = None  # in the rules process
_ORPHAN_CHECK_S = 0.5
_PR_SET_PDEATHSIG = 1  # linux/prctl.h: a signal for the child when its parent dies


def _follow_parent(parent: int) -> None:
    """The rules process ends with its parent, however that ends (a SIGKILL included): an orphan would
    hold the parent's stderr open and keep its dictionaries in memory for nothing."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_ORPHAN_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name="follow-parent", daemon=True).start()


def _load(path: str, channels: Channels, log_level: str, log_format: str) -> int:
    """Build (or rebuild, keeping the channels' context) the analyzer; the number of rules."""
    global _analyzer
    from bot.logging import configure

    configure(log_level, log_format)
    engine = load_rules(Path(path))
    if _analyzer is None:
        _analyzer = Analyzer(engine, PlaceFinder(load_gazetteer()), channels.homes_of)
    else:
        _analyzer.engine = engine
    return len(engine.rules)


# A post as sent to the rules process: a plain tuple pickles in a third of a dataclass's time.
_Sent = tuple[str, int | None, str | None, frozenset[str], datetime | None, bool]


def _verdicts(posts: Sequence[_Sent]) -> list[Verdict | None]:
    assert _analyzer is not None, "the rules process was not started"
    out: list[Verdict | None] = []
    for text, channel_id, username, tags, date, new in posts:
        verdict = _analyzer.verdict(Document(text, channel_id, username, tags, date), new=new)
        out.append(verdict if verdict is not NO_MATCH else None)
    return out


class RulesProcess:
    """The rules, their places and the channels' context, matched in a child process."""

    def __init__(self, path: Path, channels: Channels, log_level: str = "info", log_format: str = "auto") -> None:
        self.path = path
        self.channels = channels
        self._logging = (log_level, log_format)
        # Spawned, not forked: the parent runs SQLite threads, which a fork would copy mid-call.
        self._pool = ProcessPoolExecutor(
            1, mp_context=multiprocessing.get_context("spawn"), initializer=_follow_parent, initargs=(os.getpid(),)
        )
        self.rules = 0

    async def start(self) -> int:
        """Load the rules in the child; the number of rules. A bad rules file raises `ConfigError`."""
        return await self.reload(self.path)

    async def reload(self, path: Path) -> int:
        loop = asyncio.get_running_loop()
        self.rules = await loop.run_in_executor(self._pool, _load, str(path), self.channels, *self._logging)
        self.path = path
        return self.rules

    async def verdicts(self, docs: Sequence[tuple[Document, bool]]) -> list[Verdict]:
        return await self.submit(docs)

    def submit(self, docs: Sequence[tuple[Document, bool]]) -> asyncio.Future[list[Verdict]]:
        """Send a batch now, its verdicts later: the next batch can be on its way while this one is matched."""
        loop = asyncio.get_running_loop()
        sent = [(d.text, d.channel_id, d.channel_username, d.channel_tags, d.date, new) for d, new in docs]
        found = loop.run_in_executor(self._pool, _verdicts, sent)
        result: asyncio.Future[list[Verdict]] = loop.create_future()

        def done(future: asyncio.Future[list[Verdict | None]]) -> None:
            if future.cancelled():
                result.cancel()
            elif (error := future.exception()) is not None:
                result.set_exception(error)
            else:
                result.set_result([verdict or NO_MATCH for verdict in future.result()])

        found.add_done_callback(done)
        return result

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
