"""Alert latency benchmark: from a post stored (the writer's commit returns) to the notifier called.

Posts are fed at a steady rate (default 200/s for 20 s) through the real `Pipeline`, `SQLiteStore` and
`Dispatcher`, dated "now" as a live channel would push them, to one in-process notifier that records
when it is called. The posts are the real corpus of ../shared/data, shuffled (seeded), so the share
that raises alerts is the real one (about 3%); without the corpus, generated posts of which 3% are
alarms. The alert policy's cooldown and duplicate folding are off unless `--keep-policy`: the corpus
spans months and is fed here in seconds, so they would hold back most alerts, which is not what a
live feed sees; alerts held back are not delivered and not counted.

The time an alert is stored is taken when the pipeline's `store.write` returns, before it wakes the
dispatcher; the time it is delivered when the notifier's `send` starts. The same feed is then run
against the naive peer, an outbox polled every second with nobody woken on commit, for a baseline
in the same run. Prints its figures, then one JSON object on the last line.

    .venv/bin/python bench/alerts.py [--rate 200] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bot.alerts.outbox as outbox  # noqa: E402
import bot.pipeline as pipeline_module  # noqa: E402
from bot.alerts.outbox import Dispatcher  # noqa: E402
from bot.alerts.policy import AlertPolicy  # noqa: E402
from bot.models import Channel, Post  # noqa: E402
from bot.pipeline import Pipeline  # noqa: E402
from bot.rules.loader import load_rules  # noqa: E402
from bot.sources import CursorLookup, SourceItem  # noqa: E402
from bot.sources.replay import BadRecord, record_to_event  # noqa: E402
from bot.store.sqlite import open_store  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
TARGET_P99_MS = 100
BASELINE_POLL_S = 1.0
SEED = 20240312

ALARMS = [
    "⚠️ Ракетная опасность в Белгороде. Пройдите в укрытия.",
    "Внимание! Угроза атаки БПЛА в Курской области. Оставайтесь в безопасных местах.",
    "Повітряна тривога в Києві та Київській області! Прямуйте до укриття.",
    "Жителей приграничных сёл просим немедленно эвакуироваться.",
    "Обстрел Шебекино: повреждены дома, пострадавших уточняем.",
]
NEUTRAL = [
    "В городе открылась новая библиотека, приглашаем жителей.",
    "Прогноз погоды на завтра: облачно, без осадков, до +12.",
    "Сегодня прошло заседание областной думы по вопросам бюджета.",
    "Футбольный клуб провёл открытую тренировку для болельщиков.",
]


def corpus_posts(count: int, rng: random.Random, generated: bool = False) -> tuple[list[Post], str]:
    """`count` posts: the real corpus shuffled, or generated ones with 3% alarms."""
    files = [] if generated else sorted(DATA.glob("*.jsonl"))
    posts: list[Post] = []
    for path in files:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    event = record_to_event(json.loads(line))
                except (BadRecord, ValueError):
                    continue
                if isinstance(event, Post):
                    posts.append(event)
    if posts:
        rng.shuffle(posts)
        return posts[:count], f"real corpus ({len(posts):,} posts in {len(files)} files, shuffled)"
    channels = [Channel(1900000000 + i, f"Channel {i}", f"bench_channel_{i}") for i in range(20)]
    made = []
    for number in range(1, count + 1):
        text = rng.choice(ALARMS) if rng.random() < 0.03 else rng.choice(NEUTRAL)
        made.append(Post(rng.choice(channels), number, datetime.now(UTC), f"{text} #{number}"))
    return made, "generated posts, 3% alarms"


class PacedSource:
    """Yields the posts at a steady rate, each dated when it is yielded, as a live channel would."""

    name = "bench"

    def __init__(self, posts: Sequence[Post], rate: float) -> None:
        self.posts = posts
        self.rate = rate
        self.behind_s = 0.0  # how far the feed fell behind its schedule, at worst

    async def items(self, cursors: CursorLookup) -> AsyncIterator[SourceItem]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for index, post in enumerate(self.posts):
            due = start + index / self.rate
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            else:
                self.behind_s = max(self.behind_s, -wait)
            yield SourceItem(replace(post, date=datetime.now(UTC)))


class Recorder:
    """The notifier: notes when it is called for each alert."""

    name = "bench"

    def __init__(self) -> None:
        self.called: dict[str, float] = {}

    async def send(self, alert: Mapping[str, Any]) -> str | None:
        self.called.setdefault(str(alert["id"]), time.perf_counter())
        return None

    async def close(self) -> None:
        return None


class StoredClock:
    """When each alert's transaction committed: the moment the pipeline's `store.write` returned.

    `raise_alerts` is wrapped to note, on the writer thread, which alerts (not held back by the
    policy) the job being run raised; the job carries its list, and the wrapped `store.write`
    stamps them all once it returns.
    """

    def __init__(self) -> None:
        self.stored: dict[str, float] = {}
        self.picked: dict[str, tuple[float, float]] = {}  # the dispatcher's read that found it: start, end
        self._current = threading.local()

    def install(self, pipeline: Pipeline) -> None:
        original_raise = pipeline_module.raise_alerts
        current = self._current

        def raise_alerts(*args: Any, **kwargs: Any) -> Any:
            raised = original_raise(*args, **kwargs)
            box = getattr(current, "box", None)
            if box is not None:
                box.extend(r.id for r in raised if getattr(r, "suppressed", None) is None)
            return raised

        pipeline_module.raise_alerts = raise_alerts  # type: ignore[assignment]

        original_job = pipeline._job

        def job_factory(batch: Any) -> Callable[[Any], Any]:
            inner = original_job(batch)
            box: list[str] = []

            def job(tx: Any) -> Any:
                current.box = box
                try:
                    return inner(tx)
                finally:
                    current.box = None

            job.box = box  # type: ignore[attr-defined]
            return job

        pipeline._job = job_factory  # type: ignore[method-assign]

        store = pipeline.store
        original_write = store.write
        stored = self.stored

        async def write(job: Callable[[Any], Any]) -> Any:
            result = await original_write(job)
            now = time.perf_counter()
            for alert_id in getattr(job, "box", ()):
                stored.setdefault(alert_id, now)
            return result

        store.write = write  # type: ignore[method-assign]

        original_due = store.due_deliveries
        picked = self.picked

        async def due_deliveries(destination: str, limit: int) -> Any:
            started = time.perf_counter()
            due = await original_due(destination, limit)
            done = time.perf_counter()
            for delivery in due:
                picked.setdefault(delivery.alert_id, (started, done))
            return due

        store.due_deliveries = due_deliveries  # type: ignore[method-assign]


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, round(share * len(ordered) + 0.5))
    return ordered[min(rank, len(ordered)) - 1]


def policy_off(dispatcher: Dispatcher, keep: bool) -> dict[str, Any]:
    """No cooldown and no folding of duplicates: the corpus spans months, fed here in seconds, so the
    default 60 s cooldown per channel and category would hold back most of its alerts (`--keep-policy`)."""
    if keep:
        return {}
    return {"policy": AlertPolicy(dispatcher.destinations, cooldown=timedelta(0), dedup_window=timedelta(0))}


class PollingDispatcher(Dispatcher):
    """The naive peer: an outbox table polled every second, nobody woken when an alert is stored."""

    def wake(self) -> None:
        if self._draining:
            super().wake()


async def measure(
    posts: Sequence[Post], rate: float, keep_policy: bool, baseline: bool = False
) -> tuple[StoredClock, dict[str, float], PacedSource, Pipeline]:
    engine = load_rules(ROOT / "config" / "rules.toml")
    with tempfile.TemporaryDirectory(prefix="tgmon-bench-alerts-") as tmp:
        store = await open_store(Path(tmp) / "data")
        try:
            recorder = Recorder()
            dispatcher = (PollingDispatcher if baseline else Dispatcher)(store, [recorder])
            pipeline = Pipeline(store, engine, dispatcher, **policy_off(dispatcher, keep_policy))
            clock = StoredClock()
            clock.install(pipeline)
            source = PacedSource(posts, rate)
            await pipeline.run(source, drain=True, drain_timeout=60)
        finally:
            await store.close()
    return clock, recorder.called, source, pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="posts per second (default 200)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to feed posts (default 20)")
    parser.add_argument("--generated", action="store_true", help="generated posts even when the corpus is there")
    parser.add_argument(
        "--keep-policy", action="store_true", help="keep the alert policy's cooldown and duplicate folding"
    )
    args = parser.parse_args()
    from bot.logging import configure

    configure("warning", "console")
    rng = random.Random(SEED)
    posts, origin = corpus_posts(round(args.rate * args.seconds), rng, args.generated)
    print(f"feed: {len(posts):,} posts at {args.rate:g}/s from the {origin}")
    print(
        f"dispatcher: idle poll {outbox._IDLE_POLL_S:g} s, batch {outbox._BATCH},"
        " woken by the pipeline after each commit"
    )

    clock, called, source, pipeline = asyncio.run(measure(posts, args.rate, args.keep_policy))
    stored = clock.stored
    raised = pipeline.stats.alerts.total()
    held = pipeline.stats.suppressed.total()
    both = sorted(set(stored) & set(called))
    missing = sorted(set(stored) - set(called))
    latencies = [(called[a] - stored[a]) * 1000 for a in both]
    if not latencies:
        sys.exit("no alert was delivered: nothing to measure")
    p50, p90, p99 = (percentile(latencies, q) for q in (0.50, 0.90, 0.99))
    worst = max(latencies)
    print(
        f"ran {pipeline.stats.elapsed:.1f} s; the feed fell behind its schedule by at most"
        f" {source.behind_s * 1000:.0f} ms"
    )
    print(
        f"alerts: {raised + held} raised, {held} held back by the alert policy (cooldown, duplicates);"
        f" {len(both)} delivered ({len(both) / len(posts):.1%} of posts), never delivered: {len(missing)}"
    )
    if len(latencies) < 100:
        print(f"note: with {len(latencies)} alerts, p99 is the slowest one; a longer --seconds gives a steadier figure")
    print(
        f"stored -> notifier called: p50 {p50:.1f} ms, p90 {p90:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms,"
        f" mean {statistics.fmean(latencies):.1f} ms, min {min(latencies):.2f} ms"
    )
    print("slowest, split into: stored -> the dispatcher's read begins | the read | read done -> notifier called")
    for alert_id in sorted(both, key=lambda a: called[a] - stored[a], reverse=True)[:3]:
        at, call = stored[alert_id], called[alert_id]
        start, end = clock.picked.get(alert_id, (at, at))
        parts = " | ".join(f"{ms * 1000:6.1f}" for ms in (start - at, end - start, call - end))
        print(f"  {alert_id}: {(call - at) * 1000:6.1f} ms = {parts}")

    outbox._IDLE_POLL_S = BASELINE_POLL_S
    base_clock, base_called, _, _ = asyncio.run(measure(posts, args.rate, args.keep_policy, baseline=True))
    base = [(base_called[a] - base_clock.stored[a]) * 1000 for a in set(base_clock.stored) & set(base_called)]
    base_p99 = percentile(base, 0.99)
    print(
        f"naive peer (outbox polled every {BASELINE_POLL_S:g} s, no wake-up), same feed: p50"
        f" {percentile(base, 0.5):.0f} ms, p99 {base_p99:.0f} ms; tgmon's p99 is {base_p99 / p99:.0f}x lower"
    )
    verdict = "under" if p99 < TARGET_P99_MS else "NOT under"
    print(f"p99 is {verdict} the {TARGET_P99_MS} ms target")
    result = {
        "alerts": len(both),
        "posts": len(posts),
        "rate_per_s": args.rate,
        "p50_ms": round(p50, 2),
        "p90_ms": round(p90, 2),
        "p99_ms": round(p99, 2),
        "max_ms": round(worst, 2),
        "baseline_p99_ms": round(base_p99, 1),
        "ratio": round(base_p99 / p99, 1),
        "target_p99_ms": TARGET_P99_MS,
        "undelivered": len(missing),
        "corpus": "generated" if origin.startswith("generated") else "real",
        "cooldown_and_dedup": args.keep_policy,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
