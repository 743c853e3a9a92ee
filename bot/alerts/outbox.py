"""The outbox: which alerts a stored post raises, and their delivery to each destination.

Alert rows are written in the transaction that stores the post (see `bot.pipeline`), so a post is
never stored without its alert nor an alert raised for a post that was not stored. Delivery state
lives in the store, so alerts survive restarts: the dispatcher picks up whatever is pending.

Delivery is in order per destination: a failing alert holds back the ones after it (with backoff
and jitter) rather than letting a later alert overtake it. A notifier raising `PermanentError` sends
the alert to the dead letters instead, counted in `tgmon stats`.

Crash between sending and recording: the alert is sent again after the restart (at-least-once),
unless the notifier can tell it already has it; the JSONL file notifier checks its own tail, so it
never writes an alert twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from bot.aio import wait_event
from bot.alerts.notifiers import (
    DigestNotifier,
    EditingNotifier,
    Notifier,
    PermanentError,
    ReplyingNotifier,
    RetryAfter,
)
from bot.alerts.policy import AlertPolicy, fingerprint, mute_targets
from bot.errors import StoreError
from bot.logging import get_logger
from bot.models import Edit, Post, post_link
from bot.rules.engine import Match, Verdict
from bot.store import AlertRecord, Delivery, Mute, Outcome, Store, WriteTx, write_until_stored

log = get_logger("tgmon.outbox")

_BATCH = 100
_IDLE_POLL_S = 5.0
_FLUSH_EVERY_S = 1.0
_BACKOFF_BASE_S = 1.0
_BACKOFF_CAP_S = 300.0
_STORE_RETRY_S = 0.5  # first wait when the database refuses a write (full disk, read-only), doubled up to the cap
_STORE_RETRY_CAP_S = 30.0
SEND_TIMEOUT_S = 30.0
DIGEST_MAX = 50  # alerts in one digest message
CLEAR_WINDOW = timedelta(hours=12)  # an all-clear ends an alarm raised at most this long before it


def alert_id(channel_id: int, message_id: int, category: str) -> str:
    """Deterministic: the same post and category give the same id in any database, on any replay."""
    key = f"{channel_id}/{message_id}/{category}".encode()
    return hashlib.blake2b(key, digest_size=10).hexdigest()


def _match_json(match: Match, text: str) -> dict[str, Any]:
    return {
        "rule": match.rule,
        "category": match.category,
        "severity": match.severity,
        "start": match.start,
        "end": match.end,
        "term": match.term,
        "text": text[match.start : match.end],
    }


def moment(event: Post | Edit, edited: bool) -> datetime:
    """When what the alert is about happened: the edit's time for an edit, else the post's."""
    if isinstance(event, Edit):
        return event.edit_date
    return event.edit_date if edited and event.edit_date is not None else event.date


def build_alert(
    event: Post | Edit,
    verdict: Verdict,
    now: datetime | None = None,
    clears: Mapping[str, Any] | None = None,
    *,
    late: bool = False,
    edited: bool | None = None,
    tags: Sequence[str] = (),
) -> AlertRecord:
    """The alert object, as delivered and as written to alerts.jsonl.

    `clears`: the alert an all-clear ends. `late`: the post was read while catching up, not pushed
    live; `late_s` then says how long after the post the alert was raised. `edited`: the event
    changed a stored post (Telegram sends an edit as the whole post, with its edit date); by
    default, an `Edit` event is one.
    """
    if verdict.category is None or verdict.severity is None:
        raise ValueError("build_alert needs a verdict with matches")
    created = now or datetime.now(UTC)
    channel = event.channel
    link = post_link(channel.id, channel.username, event.message_id)
    is_post = isinstance(event, Post)
    was_edited = not is_post if edited is None else edited
    date = moment(event, was_edited)
    media = event.media if is_post or event.media is not None else ()
    payload: dict[str, Any] = {
        "id": alert_id(channel.id, event.message_id, verdict.category),
        "created_at": created.astimezone(UTC).isoformat(timespec="milliseconds"),
        "category": verdict.category,
        "severity": verdict.severity,
        "all_clear": verdict.all_clear,
        "rules": list(verdict.rules),
        "channel_id": channel.id,
        "channel_title": channel.title,
        "channel_username": channel.username,
        "message_id": event.message_id if event.message_id > 0 else None,
        "link": link,
        "date": date.astimezone(UTC).isoformat(timespec="seconds"),
        "edited": was_edited,
        "text": event.text,
        "matches": [_match_json(m, event.text) for m in verdict.matches],
        "places": [mention.as_json() for mention in verdict.places],
        "media": [
            {"kind": m.kind.value, "mime_type": m.mime_type, "size": m.size, "duration": m.duration}
            for m in media or ()
        ],
        "forward_from": (event.forward.name if isinstance(event, Post) and event.forward else None),
        "channel_tags": list(tags),
        "sources": [
            {
                "channel_id": channel.id,
                "channel_title": channel.title,
                "channel_username": channel.username,
                "message_id": event.message_id,
                "link": link,
                "date": date.astimezone(UTC).isoformat(timespec="seconds"),
            }
        ],
        "clears": dict(clears) if clears else None,
        "late_s": max(0, round((created - date).total_seconds())) if late else None,
        "suppressed": None,
    }
    return AlertRecord(
        id=payload["id"],
        created_at=created,
        date=date,
        channel_id=channel.id,
        message_id=event.message_id,
        category=verdict.category,
        severity=verdict.severity,
        payload=payload,
    )


def raise_alerts(
    tx: WriteTx,
    events: Sequence[Post | Edit],
    outcomes: Sequence[Outcome],
    verdicts: Sequence[Verdict],
    policy: AlertPolicy | Sequence[str],
    late: Sequence[bool] | None = None,
) -> list[AlertRecord]:
    """Alerts for what was just stored: new posts that match, and edits that change the category.

    A re-applied event is UNCHANGED and raises nothing, which is what makes replays and catch-up
    safe to repeat. An edit that only fixes a typo keeps its category and stays quiet. An all-clear
    is linked to the alert it ends: its channel's latest open alarm of the categories it clears.
    `policy` (or just the destinations) decides who gets each one; see `bot.alerts.policy`.
    Returns every alert stored, suppressed ones included (their `suppressed` says why).
    """
    if not isinstance(policy, AlertPolicy):
        policy = AlertPolicy(list(policy))
    lateness = late if late is not None else [False] * len(events)
    candidates = [
        (event, verdict, outcome, is_late)
        for event, outcome, verdict, is_late in zip(events, outcomes, verdicts, lateness, strict=True)
        if verdict.category is not None and outcome in (Outcome.NEW, Outcome.EDITED)
    ]
    if not candidates:
        return []
    edited = [event for event, _, outcome, _ in candidates if outcome is Outcome.EDITED]
    alerted = tx.alerted_categories([e.key for e in edited]) if edited else {}
    known = tx.channels([e.channel.id for e in edited]) if edited else {}
    mutes = tx.active_mutes(datetime.now(UTC))
    raised = []
    for event, verdict, outcome, is_late in candidates:
        if outcome is Outcome.EDITED:
            if verdict.category in alerted.get(event.key, set()):
                continue
            stored = known.get(event.channel.id)
            event = replace(event, channel=stored.updated(event.channel) if stored else event.channel)
        ended = None
        if verdict.all_clear:
            when = moment(event, outcome is Outcome.EDITED)
            ended = tx.open_alert(event.channel.id, verdict.clears, when - CLEAR_WINDOW)
        clears = {k: v for k, v in ended.items() if k != "own"} if ended is not None else None
        tags = policy.tags_of(event.channel.id, event.channel.username)
        record = build_alert(event, verdict, clears=clears, late=is_late, edited=outcome is Outcome.EDITED, tags=tags)
        record = _decide(tx, record, verdict.all_clear, policy, mutes)
        routed = [] if record.suppressed else policy.route(record.payload, verdict.places)
        if tx.add_alerts([record], routed):
            raised.append(record)
            if record.merged_into is not None:
                tx.add_source(record.merged_into, record.payload["sources"][0])
            if ended is not None:
                tx.clear_alert(str(ended["own"]), record.id)
    return raised


def _decide(
    tx: WriteTx, record: AlertRecord, all_clear: bool, policy: AlertPolicy, mutes: Mapping[str, Mute]
) -> AlertRecord:
    """Mute, fold into a twin from another channel, or hold back by cooldown; else deliver."""
    text_print = fingerprint(str(record.payload["text"]))
    suppressed: str | None = None
    twin: str | None = None
    muted = next((target for target in mute_targets(record.payload) if target in mutes), None)
    if muted is not None:
        suppressed = f"muted ({muted})"
    elif text_print is not None and policy.dedup_window:
        ends = (record.payload.get("clears") or {}).get("id")
        twin = tx.twin_alert(text_print, record.category, record.date, policy.dedup_window, record.channel_id, ends)
        suppressed = "duplicate" if twin is not None else None
    if suppressed is None and not all_clear and policy.cooldown:
        last = tx.last_alert_date(record.channel_id, record.category, record.date)
        if last is not None and record.date - last < policy.cooldown:
            suppressed = "cooldown"
    payload = {**record.payload, "suppressed": suppressed} if suppressed else record.payload
    return replace(record, payload=payload, fingerprint=text_print, suppressed=suppressed, merged_into=twin)


def backoff(attempts: int) -> timedelta:
    """Exponential with full jitter in its upper half: 1 s, 2 s, 4 s, … capped at 5 minutes."""
    ceiling = min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2**attempts)
    return timedelta(seconds=ceiling * random.uniform(0.5, 1.0))


class Dispatcher:
    """Delivers pending alerts, one worker per destination, in alert order.

    Alerts raised while catching up and later than `digest_after` seconds (an outage, a restart
    after hours) go to notifiers that can digest them as one message per run, not a flood.
    """

    def __init__(self, store: Store, notifiers: Sequence[Notifier], *, digest_after: float | None = None) -> None:
        self.store = store
        self.digest_after = digest_after
        self.notifiers = {n.name: n for n in notifiers}
        self._wake = {name: asyncio.Event() for name in self.notifiers}
        self._draining = False
        self._tasks: list[asyncio.Task[None]] = []
        self.sent = 0

    @property
    def destinations(self) -> list[str]:
        return list(self.notifiers)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._worker(notifier), name=f"deliver-{name}")
            for name, notifier in self.notifiers.items()
        ]

    def wake(self) -> None:
        for event in self._wake.values():
            event.set()

    async def drain(self, within: float | None = None) -> bool:
        """Deliver everything pending, then stop; False if `within` seconds ran out first (alerts stay queued)."""
        self._draining = True
        self.wake()
        done, pending = await asyncio.wait(self._tasks, timeout=within) if self._tasks else (set(), set())
        for task in pending:
            task.cancel()
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        return not pending

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for notifier in self.notifiers.values():
            await notifier.close()

    async def _sleep(self, name: str, seconds: float) -> None:
        event = self._wake[name]
        await wait_event(event, seconds)
        event.clear()

    async def _worker(self, notifier: Notifier) -> None:
        """A database that refuses writes pauses the deliveries; it must not end them until a restart."""
        while True:
            try:
                await self._work(notifier)
                return
            except StoreError as exc:  # a retry or a dead letter not recorded: the delivery is tried again
                log.error(
                    "alert.store_unavailable", destination=notifier.name, error=str(exc), retry_in_s=_STORE_RETRY_S
                )
                await asyncio.sleep(_STORE_RETRY_S)

    async def _work(self, notifier: Notifier) -> None:
        name = notifier.name
        while True:
            self._wake[name].clear()
            draining = self._draining
            due = await self.store.due_deliveries(name, _BATCH)
            if not due:
                if isinstance(notifier, EditingNotifier):
                    await self._edit(notifier)
                if draining:  # nothing left, by a read that began after the drain was asked for
                    return
                if self._draining:
                    continue
                await self._sleep(name, _IDLE_POLL_S)
                continue
            now = datetime.now(UTC)
            head = due[0]
            if head.next_attempt_at is not None and head.next_attempt_at > now:
                await self._sleep(name, (head.next_attempt_at - now).total_seconds())
                continue
            await self._deliver(notifier, due, now)

    def _groups(self, notifier: Notifier, due: Sequence[Delivery]) -> list[list[Delivery]]:
        """Each delivery alone, except runs of late alerts, which go out as one digest where supported."""
        digests = self.digest_after is not None and isinstance(notifier, DigestNotifier)
        groups: list[list[Delivery]] = []
        previous_late = False
        for delivery in due:
            late_s = delivery.payload.get("late_s")
            late = digests and late_s is not None and float(late_s) >= (self.digest_after or 0.0)
            if late and previous_late and len(groups[-1]) < DIGEST_MAX:
                groups[-1].append(delivery)
            else:
                groups.append([delivery])
            previous_late = late
        return groups

    async def _send(
        self, notifier: Notifier, group: Sequence[Delivery], just_sent: Mapping[str, str | None]
    ) -> str | None:
        """`just_sent`: remote ids of alerts sent earlier in this batch, not yet visible in the store."""
        now = datetime.now(UTC)
        alerts = [{**d.payload, "delayed_s": _delayed(d.payload, now)} for d in group]
        async with asyncio.timeout(SEND_TIMEOUT_S):
            if len(group) > 1:
                assert isinstance(notifier, DigestNotifier)
                return await notifier.send_digest(alerts)
            head = group[0]
            reply_to = head.reply_to or (just_sent.get(head.clears) if head.clears else None)
            if reply_to is not None and isinstance(notifier, ReplyingNotifier):
                return await notifier.send_reply(alerts[0], reply_to)
            return await notifier.send(alerts[0])

    async def _edit(self, notifier: EditingNotifier) -> None:
        """Bring sent copies up to date (more channels carried the alert); best effort, retried later."""
        name = notifier.name
        for delivery in await self.store.stale_deliveries(name, _BATCH):
            assert delivery.remote_id is not None
            try:
                async with asyncio.timeout(SEND_TIMEOUT_S):
                    await notifier.edit(delivery.remote_id, delivery.payload)
            except PermanentError as exc:
                log.warning("alert.edit_dropped", destination=name, alert=delivery.alert_id, error=str(exc))
            except Exception as exc:
                log.warning("alert.edit_failed", destination=name, alert=delivery.alert_id, error=str(exc))
                return
            await self.store.write(partial(_edited, name, delivery.seq))

    async def _deliver(self, notifier: Notifier, due: Sequence[Delivery], now: datetime) -> None:
        name = notifier.name
        sent: list[tuple[int, str | None, int]] = []  # seq, remote id, sources listed in the copy sent
        just_sent: dict[str, str | None] = {}
        flushed = time.monotonic()
        try:
            for group in self._groups(notifier, due):
                if sent and time.monotonic() - flushed >= _FLUSH_EVERY_S:
                    await self._flush(name, sent)  # a crash now resends at most a second's worth
                    flushed = time.monotonic()
                head = group[0]
                if head.next_attempt_at is not None and head.next_attempt_at > now:
                    return
                try:
                    remote = await self._send(notifier, group, just_sent)
                except PermanentError as exc:
                    await self._flush(name, sent)
                    for delivery in group:
                        log.error("alert.dead_letter", destination=name, alert=delivery.alert_id, error=str(exc))
                        await self.store.write(partial(_dead, name, delivery.seq, str(exc)))
                    continue
                except Exception as exc:
                    await self._flush(name, sent)
                    error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                    wait = timedelta(seconds=exc.seconds) if isinstance(exc, RetryAfter) else backoff(head.attempts)
                    retry_at = datetime.now(UTC) + wait
                    log.warning(
                        "alert.delivery_failed",
                        destination=name,
                        alert=head.alert_id,
                        digest_of=len(group) if len(group) > 1 else None,
                        attempt=head.attempts + 1,
                        retry_at=retry_at.isoformat(timespec="seconds"),
                        error=error,
                    )
                    await self.store.write(partial(_retry, name, head.seq, retry_at, error))
                    return
                if len(group) > 1:
                    log.info("alert.digest_sent", destination=name, alerts=len(group))
                sent.extend((d.seq, remote, len(d.payload.get("sources") or ())) for d in group)
                just_sent.update((d.alert_id, remote) for d in group)
        finally:
            await self._flush(name, sent)

    async def _flush(self, name: str, sent: list[tuple[int, str | None, int]]) -> None:
        """Record what was sent; called before anything else can fail, so a sent alert stays sent."""
        if not sent:
            return
        seqs, remotes, sources = (list(column) for column in zip(*sent, strict=True))

        def refused(exc: StoreError, delay: float) -> None:
            log.error("alert.mark_sent_failed", destination=name, alerts=len(seqs), error=str(exc), retry_in_s=delay)

        # They went out: until the database records it, sending more would only add to resend.
        await write_until_stored(
            self.store,
            lambda tx: tx.mark_sent(name, seqs, remotes, sources),
            refused,
            first_s=_STORE_RETRY_S,
            cap_s=_STORE_RETRY_CAP_S,
        )
        sent.clear()
        self.sent += len(seqs)


def _delayed(alert: Mapping[str, Any], now: datetime) -> int:
    """Seconds from raising to this delivery: how long a notifier outage held the alert back."""
    try:
        created = datetime.fromisoformat(str(alert["created_at"]))
    except (KeyError, ValueError):
        return 0
    return max(0, round((now - created).total_seconds()))


def _edited(name: str, seq: int, tx: WriteTx) -> None:
    tx.mark_edited(name, seq)


def _dead(name: str, seq: int, error: str, tx: WriteTx) -> None:
    tx.mark_dead(name, seq, error)


def _retry(name: str, seq: int, at: datetime, error: str, tx: WriteTx) -> None:
    tx.mark_retry(name, seq, at, error)
