"""Is the service alive and well? `tgmon run` says so in a heartbeat file; `tgmon health` reads it.

A file in the data directory rather than a port: Docker's HEALTHCHECK runs `tgmon health` in the
service's own container, which sees the same volume, and nothing listens that an operator did not
ask for. The service rewrites the file every few seconds with what it knows of itself; a file that
is not rewritten means a service that is gone or stuck, whatever the file last said.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.logging import get_logger

HEARTBEAT_FILE = "heartbeat.json"
INTERVAL_S = 10.0
MAX_AGE_S = 60.0  # six missed beats: a loop blocked that long is not serving

log = get_logger("tgmon.health")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the service knows of itself at one moment; also what the metrics endpoint serves."""

    at: datetime
    pid: int
    state: str = "running"  # or "stopped": written on a clean exit
    telegram_connected: bool | None = None  # None: no Telegram source (a replay)
    store_problem: str | None = None  # the last write error while the database refuses writes
    queued: int = 0  # events read, not yet stored
    outbox_depth: int | None = 0  # deliveries waiting for a notifier; None: the database could not say
    catchup_lag_s: float | None = None  # how old the newest stored post was when it was stored
    flood_waits: int = 0
    flood_seconds: float = 0.0
    posts: Mapping[str, int] = field(default_factory=dict)  # new posts stored, by channel
    alerts: Mapping[str, int] = field(default_factory=dict)  # "category/state": state sent or held
    errors: Mapping[str, int] = field(default_factory=dict)  # errors logged, by event name

    def problem(self) -> str | None:
        """Why the service is unhealthy now; None when it is well."""
        if self.state != "running":
            return f"tgmon run stopped at {self.at.isoformat(timespec='seconds')}"
        if self.store_problem is not None:
            return (
                f"database not writable ({self.store_problem}); {self.queued} events held and retried,"
                " nothing is lost while it lasts: free disk space or fix the data directory's permissions"
            )
        if self.telegram_connected is False:
            return "Telegram not connected: tgmon reconnects by itself; see the logs if this lasts"
        return None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "at": self.at.isoformat()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Snapshot:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{**fields, "at": datetime.fromisoformat(str(data["at"]))})


def heartbeat_path(data_dir: Path) -> Path:
    return data_dir / HEARTBEAT_FILE


def write_heartbeat(path: Path, snapshot: Snapshot) -> None:
    """Replace the file whole (write, then rename): a reader never sees half of it."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(snapshot.to_json(), handle)
    os.replace(temporary, path)


def check(path: Path, *, now: datetime | None = None, max_age_s: float = MAX_AGE_S) -> tuple[bool, str]:
    """(healthy, one line saying why) from the heartbeat file at `path`."""
    try:
        snapshot = Snapshot.from_json(json.loads(path.read_text(encoding="utf-8")))
        age = ((now or datetime.now(UTC)) - snapshot.at).total_seconds()
    except FileNotFoundError:
        return False, f"no heartbeat at {path}: tgmon run is not running"
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return False, f"heartbeat {path} unreadable ({exc}): tgmon run is not writing it"
    problem = snapshot.problem()
    if problem is not None:
        return False, problem
    if age > max_age_s:
        return False, f"heartbeat {age:.0f} s old (limit {max_age_s:.0f} s): tgmon run is stuck or gone"
    telegram = {True: "Telegram connected", False: "Telegram not connected", None: "no Telegram source"}
    return True, (
        f"heartbeat {max(age, 0):.0f} s ago, {telegram[snapshot.telegram_connected]},"
        f" {snapshot.queued} queued, {snapshot.outbox_depth if snapshot.outbox_depth is not None else '?'}"
        " deliveries waiting"
    )


class Heartbeat:
    """Takes a snapshot every `interval_s` and hands it on: to the heartbeat file, to the metrics.

    A failed write (a full disk) is logged once per streak and retried: the file then goes stale,
    and a stale heartbeat is itself the unhealthy answer.
    """

    def __init__(
        self,
        probe: Callable[[], Awaitable[Snapshot]],
        path: Path,
        *,
        interval_s: float = INTERVAL_S,
        listeners: tuple[Callable[[Snapshot], None], ...] = (),
    ) -> None:
        self.probe = probe
        self.path = path
        self.interval_s = interval_s
        self.listeners = listeners
        self.last: Snapshot | None = None
        self._failing = False

    async def beat(self) -> Snapshot:
        snapshot = await self.probe()
        self.last = snapshot
        for listener in self.listeners:
            listener(snapshot)
        try:
            write_heartbeat(self.path, snapshot)
        except OSError as exc:
            if not self._failing:
                log.error("health.heartbeat_not_written", path=str(self.path), error=str(exc))
            self._failing = True
        else:
            if self._failing:
                log.info("health.heartbeat_written_again", path=str(self.path))
            self._failing = False
        problem = snapshot.problem()
        if problem is not None:
            log.warning("health.unhealthy", reason=problem)
        return snapshot

    async def run(self) -> None:
        while True:
            await self.beat()
            await asyncio.sleep(self.interval_s)

    def stopped(self) -> None:
        """A clean exit: say so, so that a health check does not wait for the file to go stale."""
        now = datetime.now(UTC)
        stopped = replace(self.last, at=now, state="stopped") if self.last else Snapshot(now, os.getpid(), "stopped")
        with contextlib.suppress(OSError):
            write_heartbeat(self.path, stopped)
