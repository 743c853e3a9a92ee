"""The Prometheus endpoint: families from the heartbeat's snapshot, served over HTTP on loopback."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bot.errors import ConfigError
from bot.health import Snapshot
from bot.metrics import SnapshotCollector, serve

NOW = datetime(2024, 3, 12, 3, 0, tzinfo=UTC)
FULL = Snapshot(
    at=NOW,
    pid=4242,
    telegram_connected=True,
    queued=7,
    outbox_depth=3,
    catchup_lag_s=12.5,
    flood_waits=2,
    flood_seconds=31.0,
    posts={"chan_one": 5, "chan_two": 1},
    alerts={"violence/sent": 4, "violence/held": 2, "drones/sent": 1},
    errors={"store.commit_failed": 1},
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape_text(text: str) -> tuple[dict[str, str], Samples]:
    """(family name → type, (sample name, labels) → value) from the exposition text."""
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return types, samples


def scrape(collector: SnapshotCollector) -> tuple[dict[str, str], Samples]:
    registry = CollectorRegistry()
    registry.register(collector)
    return scrape_text(generate_latest(registry).decode())


def plain(name: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return (name, frozenset())


def labelled(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return (name, frozenset(labels.items()))


def test_nothing_before_the_first_snapshot() -> None:
    collector = SnapshotCollector()
    assert list(collector.collect()) == []
    assert scrape(collector) == ({}, {})


def test_families_and_values() -> None:
    collector = SnapshotCollector()
    collector.update(FULL)
    types, samples = scrape(collector)
    assert types == {
        "tgmon_posts_ingested": "counter",
        "tgmon_alerts": "counter",
        "tgmon_errors": "counter",
        "tgmon_floodwait": "counter",
        "tgmon_floodwait_seconds": "counter",
        "tgmon_outbox_depth": "gauge",
        "tgmon_queued_events": "gauge",
        "tgmon_catchup_lag_seconds": "gauge",
        "tgmon_telegram_connected": "gauge",
        "tgmon_store_writable": "gauge",
        "tgmon_heartbeat_timestamp_seconds": "gauge",
    }
    assert samples == {
        labelled("tgmon_posts_ingested_total", channel="chan_one"): 5,
        labelled("tgmon_posts_ingested_total", channel="chan_two"): 1,
        labelled("tgmon_alerts_total", category="violence", state="sent"): 4,
        labelled("tgmon_alerts_total", category="violence", state="held"): 2,
        labelled("tgmon_alerts_total", category="drones", state="sent"): 1,
        labelled("tgmon_errors_total", event="store.commit_failed"): 1,
        plain("tgmon_floodwait_total"): 2,
        plain("tgmon_floodwait_seconds_total"): 31.0,
        plain("tgmon_outbox_depth"): 3,
        plain("tgmon_queued_events"): 7,
        plain("tgmon_catchup_lag_seconds"): 12.5,
        plain("tgmon_telegram_connected"): 1,
        plain("tgmon_store_writable"): 1,
        plain("tgmon_heartbeat_timestamp_seconds"): NOW.timestamp(),
    }


def test_unknown_values_are_left_out_not_zero() -> None:
    """No Telegram source (a replay), outbox depth unreadable, nothing stored yet: absent, not a false 0."""
    collector = SnapshotCollector()
    collector.update(Snapshot(at=NOW, pid=1, outbox_depth=None))
    types, samples = scrape(collector)
    for absent in ("tgmon_outbox_depth", "tgmon_catchup_lag_seconds", "tgmon_telegram_connected"):
        assert absent not in types
    assert not [key for key in samples if key[0] in ("tgmon_posts_ingested_total", "tgmon_alerts_total")]
    assert samples[plain("tgmon_store_writable")] == 1


def test_store_problem_and_disconnection() -> None:
    collector = SnapshotCollector()
    collector.update(Snapshot(at=NOW, pid=1, telegram_connected=False, store_problem="disk I/O error"))
    _, samples = scrape(collector)
    assert samples[plain("tgmon_store_writable")] == 0
    assert samples[plain("tgmon_telegram_connected")] == 0


def test_the_latest_snapshot_is_served() -> None:
    collector = SnapshotCollector()
    collector.update(FULL)
    collector.update(Snapshot(at=NOW, pid=4242, posts={"chan_one": 6}))
    _, samples = scrape(collector)
    assert samples[labelled("tgmon_posts_ingested_total", channel="chan_one")] == 6
    assert labelled("tgmon_posts_ingested_total", channel="chan_two") not in samples


# --- serve() ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def test_serve_answers_over_http() -> None:
    collector = SnapshotCollector()
    port = free_port()
    thread = serve(collector, "127.0.0.1", port)  # a daemon thread: it ends with the test session
    assert thread.is_alive()
    collector.update(FULL)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        body = response.read().decode()
    assert 'tgmon_posts_ingested_total{channel="chan_one"} 5.0' in body
    types, samples = scrape_text(body)
    assert samples[labelled("tgmon_alerts_total", category="violence", state="held")] == 2
    assert samples[plain("tgmon_queued_events")] == 7
    assert not [name for name in types if not name.startswith("tgmon_")]  # only tgmon's: no process_ or python_


def test_serve_on_a_port_in_use_is_a_config_error(taken_port: int) -> None:
    with pytest.raises(ConfigError) as raised:
        serve(SnapshotCollector(), "127.0.0.1", taken_port)
    message = str(raised.value)
    assert "TGMON_METRICS_PORT" in message
    assert f"127.0.0.1:{taken_port}" in message
    assert "in use" in message
    assert "\n" not in message


def test_serve_on_an_address_not_this_machines_is_a_config_error() -> None:
    """192.0.2.1 is TEST-NET-1: bind() refuses it locally, nothing goes on the network."""
    with pytest.raises(ConfigError, match=r"^TGMON_METRICS_PORT: cannot listen on 192\.0\.2\.1:\d+ \(Cannot assign"):
        serve(SnapshotCollector(), "192.0.2.1", free_port())
