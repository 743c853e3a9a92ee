"""Prometheus metrics of the running service, off unless TGMON_METRICS_PORT is set.

The endpoint serves the heartbeat's latest snapshot (`bot.health.Snapshot`), taken every few
seconds on the event loop: a scrape, which runs on the HTTP server's thread, never reads state the
loop is changing, and metrics and `tgmon health` can never disagree.
"""

from __future__ import annotations

from collections.abc import Iterator
from threading import Thread
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from bot.errors import ConfigError
from bot.health import Snapshot
from bot.logging import get_logger

log = get_logger("tgmon.metrics")


class SnapshotCollector(Collector):
    """Metric families from the latest snapshot; counters count from the service's start."""

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None

    def update(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot  # one reference swap: the scraping thread sees the old or the new one

    def collect(self) -> Iterator[Any]:
        snapshot = self.snapshot
        if snapshot is None:
            return
        posts = CounterMetricFamily("tgmon_posts_ingested", "New posts stored, by channel", labels=["channel"])
        for channel, count in sorted(snapshot.posts.items()):
            posts.add_metric([channel], count)
        yield posts
        alerts = CounterMetricFamily(
            "tgmon_alerts",
            "Alerts raised, by category and state (sent: to the outbox; held: muted, cooldown or duplicate)",
            labels=["category", "state"],
        )
        for key, count in sorted(snapshot.alerts.items()):
            category, _, state = key.partition("/")
            alerts.add_metric([category, state], count)
        yield alerts
        errors = CounterMetricFamily("tgmon_errors", "Errors logged, by event", labels=["event"])
        for event, count in sorted(snapshot.errors.items()):
            errors.add_metric([event], count)
        yield errors
        yield CounterMetricFamily("tgmon_floodwait", "FloodWait pauses Telegram imposed", value=snapshot.flood_waits)
        yield CounterMetricFamily(
            "tgmon_floodwait_seconds", "Seconds slept on Telegram's FloodWait", value=snapshot.flood_seconds
        )
        if snapshot.outbox_depth is not None:
            yield GaugeMetricFamily(
                "tgmon_outbox_depth", "Deliveries waiting for a notifier", value=snapshot.outbox_depth
            )
        yield GaugeMetricFamily("tgmon_queued_events", "Events read and not yet stored", value=snapshot.queued)
        if snapshot.catchup_lag_s is not None:
            yield GaugeMetricFamily(
                "tgmon_catchup_lag_seconds",
                "Age of the newest post stored, when it was stored: seconds live, hours after an outage",
                value=snapshot.catchup_lag_s,
            )
        if snapshot.telegram_connected is not None:
            yield GaugeMetricFamily(
                "tgmon_telegram_connected", "1 while connected to Telegram", value=int(snapshot.telegram_connected)
            )
        yield GaugeMetricFamily(
            "tgmon_store_writable", "0 while the database refuses writes", value=int(snapshot.store_problem is None)
        )
        yield GaugeMetricFamily(
            "tgmon_heartbeat_timestamp_seconds", "When this snapshot was taken", value=snapshot.at.timestamp()
        )


def serve(collector: SnapshotCollector, address: str, port: int) -> Thread:
    """Start the endpoint on its own thread; its registry holds only tgmon's metrics."""
    registry = CollectorRegistry()
    registry.register(collector)
    try:
        _server, thread = start_http_server(port, addr=address, registry=registry)
    except OSError as exc:  # port taken, address not this machine's or unknown: the operator's to fix, no traceback
        raise ConfigError(
            f"TGMON_METRICS_PORT: cannot listen on {address}:{port} ({exc.strerror or exc});"
            " choose a free port, or check TGMON_METRICS_ADDRESS"
        ) from None
    log.info("metrics.listening", address=address, port=port, path="/metrics")
    return thread
