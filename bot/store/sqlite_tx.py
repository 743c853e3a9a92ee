"""Writes to the SQLite archive, inside one transaction, on the store's writer thread.

Synchronous on purpose: a whole batch job runs on the writer thread in one go. Each await of an
async driver is a thread hand-off, and with the matcher keeping the main thread busy each hand-off
can wait a full GIL switch interval (5 ms); ten statements a batch made the writer, not the disk,
the bottleneck. For the same reason a batch's rows go in few statements, never one per row (as
`executemany` does: each row a step, each step a GIL release and re-acquire): new rows as multi-row
`INSERT … VALUES`, updates as one JSON parameter that `json_each` unpacks.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import chain
from typing import Any

import orjson

from bot.models import Channel, Deletion, Edit, Entity, Event, ForwardOrigin, Media, MediaKind, Post
from bot.store import AlertRecord, ChannelRecord, MediaFile, Mute, Outcome

_KEY_JOIN = "{t}.channel_id = k.value->>0 AND {t}.message_id = k.value->>1"


def iso(dt: datetime) -> str:
    """Post dates: UTC, whole seconds, as Telegram gives them."""
    return (dt if dt.tzinfo is UTC else dt.astimezone(UTC)).isoformat(timespec="seconds")


def stamp(dt: datetime | None = None) -> str:
    """Bookkeeping times: UTC with milliseconds, so latencies can be read off the database."""
    return (dt or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="milliseconds")


def _columns(count: int) -> str:
    """`value->>0, value->>1, …`: the fields of a `json_each` row that is a JSON array."""
    return ", ".join(f"value->>{i}" for i in range(count))


# Rows per multi-row INSERT. Preparing a statement costs about 7 µs a row, so statements must be
# reused: a batch goes in chunks of this size, the rest in halving sizes (128, 64, …, 1), which
# keeps the statement texts few and in the connection's statement cache.
_CHUNK = 256


def _chunks(count: int) -> Iterator[tuple[int, int]]:
    """(start, size) of the chunks that cover `count` rows."""
    start, size = 0, _CHUNK
    while start < count:
        while size > count - start:
            size //= 2
        yield start, size
        start += size


@cache
def _insert_sql(head: str, rows: int, width: int, tail: str) -> str:
    """`head VALUES (?, …), … tail`; cached, so that each text is built (and hashed) once."""
    row = "(" + ", ".join("?" * width) + ")"
    return f"{head} VALUES {', '.join([row] * rows)}{tail}"


def insert_rows(conn: sqlite3.Connection, head: str, rows: Sequence[Sequence[Any]], tail: str = "") -> None:
    """Insert `rows` with few multi-row statements: bound in C, a single step each."""
    if not rows:
        return
    width = len(rows[0])
    for start, size in _chunks(len(rows)):
        conn.execute(_insert_sql(head, size, width, tail), list(chain.from_iterable(rows[start : start + size])))


def _entities_json(entities: tuple[Entity, ...]) -> str | None:
    if not entities:
        return None
    return orjson.dumps(
        [{"type": e.type, "offset": e.offset, "length": e.length, "url": e.url} for e in entities]
    ).decode()


def _forward_json(origin: ForwardOrigin | None) -> str | None:
    if origin is None:
        return None
    return orjson.dumps(
        {
            "channel_id": origin.channel_id,
            "message_id": origin.message_id,
            "name": origin.name,
            "date": iso(origin.date) if origin.date else None,
        }
    ).decode()


def media_from_row(row: Sequence[Any]) -> Media:
    kind, mime, size, duration, width, height, file_name, file_id = row
    return Media(MediaKind(kind), mime, size, duration, width, height, file_name, file_id)


@dataclass(slots=True)
class _State:
    """A post's stored state, simulated in memory while a batch is applied."""

    text: str
    entities: str | None
    edit_date: str | None
    version: int
    views: int | None
    forwards: int | None
    replies: int | None
    media: tuple[Media, ...]
    post: Post | None = None  # set for posts this batch inserts
    text_changed: bool = False
    counters_changed: bool = False
    media_changed: bool = False


def _post_row(post: Post, now: str) -> tuple[Any, ...]:
    return (
        post.channel.id, post.message_id, iso(post.date), iso(post.edit_date) if post.edit_date else None,
        post.text, _entities_json(post.entities), post.views, post.forwards, post.replies, post.reply_to,
        _forward_json(post.forward), post.grouped_id, post.author, 1, now,
    )  # fmt: skip


def _media_rows(key: tuple[int, int], media: Sequence[Media]) -> list[tuple[Any, ...]]:
    return [
        (*key, i, m.kind.value, m.mime_type, m.size, m.duration, m.width, m.height, m.file_name, m.file_id)
        for i, m in enumerate(media)
    ]


@dataclass(slots=True)
class PreparedBatch:
    """A batch encoded for the writer before it gets there (`prepare_batch`, on the caller's thread).

    When every post in it is new, the writer only checks that and runs the prepared statements;
    anything else (edits, refreshes, repeats) takes the general path from `events`.
    """

    events: Sequence[Event]
    keys: bytes
    posts: list[tuple[Any, ...]] | None = None  # INSERT rows, valid if no key exists yet
    media: list[tuple[Any, ...]] | None = None
    deletions: list[tuple[int, int, str]] | None = None
    channels: list[Channel] | None = None


def prepare_batch(events: Sequence[Event]) -> PreparedBatch:
    """Encode a batch; the cost lands on the caller's thread, not on the single writer."""
    keys: list[tuple[int, int]] = []
    posts: list[tuple[Any, ...]] = []
    media: list[tuple[Any, ...]] = []
    deletions: list[tuple[int, int, str]] = []
    channels: dict[int, Channel] = {}
    fresh = True
    now = stamp()
    for event in events:
        if isinstance(event, Deletion):
            when = iso(event.date)
            deletions.extend((event.channel_id, mid, when) for mid in event.message_ids)
            continue
        keys.append(event.key)
        if not isinstance(event, Post):
            fresh = False
            continue
        seen = channels.get(event.channel.id)
        if seen is None or seen != event.channel:
            channels[event.channel.id] = seen.updated(event.channel) if seen else event.channel
        posts.append(_post_row(event, now))
        if event.media:
            media.extend(_media_rows(event.key, event.media))
    if not fresh or len(set(keys)) != len(keys):
        return PreparedBatch(events, orjson.dumps(keys))
    return PreparedBatch(events, orjson.dumps(keys), posts, media, deletions, list(channels.values()))


_INSERT_POSTS = (
    "INSERT INTO posts (channel_id, message_id, date, edit_date, text, entities, views, forwards, replies,"
    " reply_to, forward_from, grouped_id, author, version, stored_at)"
)
_INSERT_MEDIA = (
    "INSERT INTO media (channel_id, message_id, position, kind, mime_type, size, duration, width, height,"
    " file_name, file_id)"
)
_INSERT_DELETIONS = "INSERT OR IGNORE INTO deletions (channel_id, message_id, deleted_at)"


class SQLiteTx:
    """`WriteTx` over the writer connection; only the store's writer thread creates these."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def apply_prepared(self, batch: PreparedBatch) -> list[Outcome]:
        """The fast path when every post of the batch is new; the general `apply` otherwise."""
        if batch.channels is None:
            return self.apply(batch.events)
        existing = self._conn.execute(
            f"SELECT count(*) FROM json_each(?) k CROSS JOIN posts p ON {_KEY_JOIN.format(t='p')}", (batch.keys,)
        ).fetchone()[0]
        if existing:
            return self.apply(batch.events)
        self._write_channels(batch.channels, stamp())
        insert_rows(self._conn, _INSERT_POSTS, batch.posts or ())
        insert_rows(self._conn, _INSERT_MEDIA, batch.media or ())
        insert_rows(self._conn, _INSERT_DELETIONS, batch.deletions or ())
        return [Outcome.DELETED if isinstance(e, Deletion) else Outcome.NEW for e in batch.events]

    def _bulk(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run `sql` once over all rows, passed as one JSON array that `json_each` unpacks."""
        if rows:
            self._conn.execute(sql, (orjson.dumps(rows),))

    # -- posts ------------------------------------------------------------------------------------

    def apply(self, events: Sequence[Event]) -> list[Outcome]:
        now = stamp()
        state = self._load_state({e.key for e in events if not isinstance(e, Deletion)})
        versions: list[tuple[Any, ...]] = []
        deletions: list[tuple[int, int, str]] = []
        channels: dict[int, Channel] = {}
        outcomes: list[Outcome] = []
        for event in events:
            if isinstance(event, Deletion):
                when = iso(event.date)
                deletions.extend((event.channel_id, mid, when) for mid in event.message_ids)
                outcomes.append(Outcome.DELETED)
                continue
            seen = channels.get(event.channel.id)
            if seen is None or seen != event.channel:
                channels[event.channel.id] = seen.updated(event.channel) if seen else event.channel
            current = state.get(event.key)
            if isinstance(event, Post):
                if current is None:
                    state[event.key] = _State(
                        event.text,
                        _entities_json(event.entities),
                        iso(event.edit_date) if event.edit_date else None,
                        1,
                        event.views,
                        event.forwards,
                        event.replies,
                        event.media,
                        post=event,
                    )
                    outcomes.append(Outcome.NEW)
                else:
                    outcomes.append(self._refresh(current, event, versions, now))
            elif current is None:
                outcomes.append(Outcome.UNKNOWN)
            else:
                outcomes.append(self._edit(current, event, versions, now))
        self._write_channels(channels.values(), now)
        self._write_posts(state, now)
        self._bulk(
            "INSERT OR IGNORE INTO post_versions (channel_id, message_id, version, edit_date, text, entities,"
            f" replaced_at) SELECT {_columns(7)} FROM json_each(?)",
            versions,
        )
        insert_rows(self._conn, _INSERT_DELETIONS, deletions)
        return outcomes

    @staticmethod
    def _supersede(
        current: _State,
        key: tuple[int, int],
        text: str,
        entities: str | None,
        edit_date: str | None,
        versions: list[tuple[Any, ...]],
        now: str,
    ) -> None:
        versions.append((*key, current.version, current.edit_date, current.text, current.entities, now))
        current.text, current.entities, current.edit_date = text, entities, edit_date
        current.version += 1
        current.text_changed = True

    def _refresh(self, current: _State, post: Post, versions: list[tuple[Any, ...]], now: str) -> Outcome:
        outcome = Outcome.UNCHANGED
        edit_date = iso(post.edit_date) if post.edit_date else None
        if post.text != current.text:
            # An older copy (the original of a post stored since edited, or an earlier edit) must
            # not bring its text back: a file replayed twice would add versions each time.
            if current.edit_date is not None and (edit_date is None or edit_date < current.edit_date):
                return Outcome.STALE
            self._supersede(current, post.key, post.text, _entities_json(post.entities), edit_date, versions, now)
            outcome = Outcome.EDITED
        for name in ("views", "forwards", "replies"):
            value = getattr(post, name)
            if value is not None and value != getattr(current, name):
                setattr(current, name, value)
                current.counters_changed = True
                outcome = outcome if outcome is Outcome.EDITED else Outcome.REFRESHED
        if post.media != current.media:
            current.media = post.media
            current.media_changed = True
            outcome = outcome if outcome is Outcome.EDITED else Outcome.REFRESHED
        return outcome

    def _edit(self, current: _State, edit: Edit, versions: list[tuple[Any, ...]], now: str) -> Outcome:
        edit_date = iso(edit.edit_date)
        if current.edit_date is not None and edit_date < current.edit_date:
            return Outcome.STALE
        outcome = Outcome.UNCHANGED
        if edit.text != current.text:
            self._supersede(current, edit.key, edit.text, _entities_json(edit.entities), edit_date, versions, now)
            outcome = Outcome.EDITED
        if edit.media is not None and edit.media != current.media:
            current.media = edit.media
            current.media_changed = True
            outcome = outcome if outcome is Outcome.EDITED else Outcome.REFRESHED
        return outcome

    def _load_state(self, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], _State]:
        state: dict[tuple[int, int], _State] = {}
        rows = self._conn.execute(
            "SELECT p.channel_id, p.message_id, p.text, p.entities, p.edit_date, p.version, p.views, p.forwards,"
            f" p.replies FROM json_each(?) k CROSS JOIN posts p ON {_KEY_JOIN.format(t='p')}",
            (orjson.dumps(list(keys)),),
        )
        for cid, mid, text, entities, edit_date, version, views, forwards, replies in rows:
            state[(cid, mid)] = _State(text, entities, edit_date, version, views, forwards, replies, ())
        if not state:
            return state
        media: dict[tuple[int, int], list[Media]] = defaultdict(list)
        rows = self._conn.execute(
            "SELECT m.channel_id, m.message_id, m.kind, m.mime_type, m.size, m.duration, m.width, m.height,"
            f" m.file_name, m.file_id FROM json_each(?) k CROSS JOIN media m ON {_KEY_JOIN.format(t='m')}"
            " ORDER BY m.channel_id, m.message_id, m.position",
            (orjson.dumps(list(state)),),
        )
        for row in rows:
            media[(row[0], row[1])].append(media_from_row(row[2:]))
        for key, items in media.items():
            state[key].media = tuple(items)
        return state

    def _write_channels(self, channels: Iterable[Channel], now: str) -> None:
        """Upsert each channel once (the caller passes each id once: a row may not conflict with another)."""
        insert_rows(
            self._conn,
            "INSERT INTO channels (id, username, title, first_seen_at, updated_at)",
            [(c.id, c.username, c.title, now, now) for c in channels],
            " ON CONFLICT (id) DO UPDATE SET"
            " username = coalesce(excluded.username, username), title = coalesce(excluded.title, title),"
            " updated_at = excluded.updated_at"
            " WHERE coalesce(excluded.username, username) IS NOT username"
            " OR coalesce(excluded.title, title) IS NOT title",
        )

    def _write_posts(self, state: dict[tuple[int, int], _State], now: str) -> None:
        inserts: list[tuple[Any, ...]] = []
        media_rows: list[tuple[Any, ...]] = []
        text_updates: list[tuple[Any, ...]] = []
        counter_updates: list[tuple[Any, ...]] = []
        replaced_media: list[tuple[int, int]] = []
        for key, current in state.items():
            post = current.post
            if post is not None:  # from the state: the batch may have edited or refreshed it already
                inserts.append(
                    (
                        *key, iso(post.date), current.edit_date, current.text, current.entities, current.views,
                        current.forwards, current.replies, post.reply_to, _forward_json(post.forward),
                        post.grouped_id, post.author, current.version, now,
                    )
                )  # fmt: skip
            else:
                if current.text_changed:
                    text_updates.append((current.text, current.entities, current.edit_date, current.version, *key))
                if current.counters_changed:
                    counter_updates.append((current.views, current.forwards, current.replies, *key))
                if current.media_changed:
                    replaced_media.append(key)
            if post is not None or current.media_changed:
                media_rows.extend(_media_rows(key, current.media))
        insert_rows(self._conn, _INSERT_POSTS, inserts)
        self._bulk(
            "UPDATE posts SET text = u.a, entities = u.b, edit_date = u.c, version = u.d FROM"
            " (SELECT value->>0 AS a, value->>1 AS b, value->>2 AS c, value->>3 AS d, value->>4 AS cid,"
            " value->>5 AS mid FROM json_each(?)) AS u WHERE posts.channel_id = u.cid AND posts.message_id = u.mid",
            text_updates,
        )
        self._bulk(
            "UPDATE posts SET views = u.a, forwards = u.b, replies = u.c FROM"
            " (SELECT value->>0 AS a, value->>1 AS b, value->>2 AS c, value->>3 AS cid, value->>4 AS mid"
            " FROM json_each(?)) AS u WHERE posts.channel_id = u.cid AND posts.message_id = u.mid",
            counter_updates,
        )
        self._bulk(
            "DELETE FROM media WHERE (channel_id, message_id) IN (SELECT value->>0, value->>1 FROM json_each(?))",
            replaced_media,
        )
        insert_rows(self._conn, _INSERT_MEDIA, media_rows)

    def channels(self, ids: Sequence[int]) -> dict[int, Channel]:
        rows = self._conn.execute(
            "SELECT c.id, c.title, c.username FROM json_each(?) k CROSS JOIN channels c ON c.id = k.value",
            (orjson.dumps(list(dict.fromkeys(ids))),),
        )
        return {cid: Channel(cid, title, username) for cid, title, username in rows}

    # -- the outbox -------------------------------------------------------------------------------

    def alerted_categories(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], set[str]]:
        found: dict[tuple[int, int], set[str]] = defaultdict(set)
        rows = self._conn.execute(
            f"SELECT a.channel_id, a.message_id, a.category FROM json_each(?) k CROSS JOIN alerts a"
            f" ON {_KEY_JOIN.format(t='a')}",
            (orjson.dumps(list(keys)),),
        )
        for cid, mid, category in rows:
            found[(cid, mid)].add(category)
        return dict(found)

    def add_alerts(self, alerts: Sequence[AlertRecord], destinations: Sequence[str]) -> list[str]:
        inserted: list[str] = []
        deliveries: list[tuple[str, int]] = []
        for alert in alerts:
            # Not RETURNING: fetching its row is one more step, and one more GIL hand-off.
            cursor = self._conn.execute(
                "INSERT INTO alerts (id, created_at, date, channel_id, message_id, category, severity, payload,"
                " fingerprint, suppressed, merged_into) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (
                    alert.id,
                    stamp(alert.created_at),
                    iso(alert.date),
                    alert.channel_id,
                    alert.message_id,
                    alert.category,
                    alert.severity,
                    orjson.dumps(alert.payload).decode(),
                    alert.fingerprint,
                    alert.suppressed,
                    alert.merged_into,
                ),
            )
            if not cursor.rowcount:  # raised before
                continue
            inserted.append(alert.id)
            seq = cursor.lastrowid
            if alert.suppressed is None and seq is not None:
                deliveries.extend((destination, seq) for destination in destinations)
        insert_rows(self._conn, "INSERT OR IGNORE INTO deliveries (destination, alert_seq)", deliveries)
        return inserted

    def open_alert(self, channel_id: int, categories: Sequence[str], since: datetime) -> dict[str, Any] | None:
        """The channel's latest alarm not yet ended, skipping those held back (never sent, nothing to reply to).

        A duplicate folded into another channel's alert counts: `root` is the alert the analyst saw.
        """
        marks = ",".join("?" * len(categories))
        wanted = f"a.category IN ({marks})" if categories else "a.category <> 'all_clear'"
        row = self._conn.execute(
            "SELECT a.id, coalesce(r.id, a.id), coalesce(r.category, a.category), coalesce(r.date, a.date),"
            f" coalesce(r.message_id, a.message_id), coalesce(r.channel_id, a.channel_id) FROM alerts a"
            f" LEFT JOIN alerts r ON r.id = a.merged_into WHERE a.channel_id = ? AND {wanted}"
            " AND a.cleared_by IS NULL AND a.date >= ? AND (a.suppressed IS NULL OR a.merged_into IS NOT NULL)"
            " ORDER BY a.seq DESC LIMIT 1",
            (channel_id, *categories, iso(since)),
        ).fetchone()
        if row is None:
            return None
        own, root, category, date, message_id, root_channel = row
        return {
            "id": root,
            "own": own,
            "category": category,
            "date": date,
            "message_id": message_id,
            "channel_id": root_channel,
        }

    def clear_alert(self, alert_id: str, by: str) -> None:
        self._conn.execute("UPDATE alerts SET cleared_by = ? WHERE id = ? AND cleared_by IS NULL", (by, alert_id))

    def twin_alert(
        self,
        fingerprint: str,
        category: str,
        around: datetime,
        window: timedelta,
        channel_id: int,
        clears: str | None = None,
    ) -> str | None:
        """An alert of another channel with the same text within `window` either side of `around`.

        All-clears are twins only when they end the same alert: one channel's "Отбой." must still
        reach the analyst when another channel's identical "Отбой." ended a different alarm.
        """
        row = self._conn.execute(
            "SELECT id FROM alerts WHERE fingerprint = ? AND category = ? AND date >= ? AND date <= ?"
            " AND channel_id <> ? AND suppressed IS NULL"
            " AND (? = 0 OR coalesce(payload ->> '$.clears.id', '') = ?) ORDER BY seq LIMIT 1",
            (
                fingerprint,
                category,
                iso(around - window),
                iso(around + window),
                channel_id,
                int(category == "all_clear"),
                clears or "",
            ),
        ).fetchone()
        return None if row is None else str(row[0])

    def add_source(self, alert_id: str, source: Mapping[str, Any]) -> None:
        self._conn.execute(
            "UPDATE alerts SET payload = json_insert(payload, '$.sources[#]', json(?)) WHERE id = ?",
            (orjson.dumps(source).decode(), alert_id),
        )
        self._conn.execute(
            "UPDATE deliveries SET stale = 1 WHERE alert_seq = (SELECT seq FROM alerts WHERE id = ?)", (alert_id,)
        )

    def last_alert_date(self, channel_id: int, category: str, before: datetime) -> datetime | None:
        row = self._conn.execute(
            # Newest first along the index, stopping at the first one delivered: max() would read them all.
            "SELECT date FROM alerts WHERE channel_id = ? AND category = ? AND date <= ? AND suppressed IS NULL"
            " ORDER BY date DESC LIMIT 1",
            (channel_id, category, iso(before)),
        ).fetchone()
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    def active_mutes(self, now: datetime) -> dict[str, Mute]:
        rows = self._conn.execute("SELECT target, until, created_by FROM mutes WHERE until > ?", (iso(now),)).fetchall()
        return {target: Mute(target, datetime.fromisoformat(until), by) for target, until, by in rows}

    def add_mute(self, mute: Mute) -> None:
        self._conn.execute(
            "INSERT INTO mutes (target, until, created_by, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (target) DO UPDATE SET until = excluded.until, created_by = excluded.created_by,"
            " created_at = excluded.created_at",
            (mute.target, iso(mute.until), mute.created_by, stamp()),
        )

    def remove_mute(self, target: str) -> bool:
        return self._conn.execute("DELETE FROM mutes WHERE target = ?", (target,)).rowcount > 0

    def mark_edited(self, destination: str, seq: int) -> None:
        self._conn.execute(
            "UPDATE deliveries SET stale = 0 WHERE destination = ? AND alert_seq = ?", (destination, seq)
        )

    def save_channel(self, record: ChannelRecord) -> None:
        now = stamp()
        self._conn.execute(
            "INSERT INTO channels (id, username, title, access_hash, available, unavailable_reason, resolved_at,"
            " first_seen_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
            " username = coalesce(excluded.username, username), title = coalesce(excluded.title, title),"
            " access_hash = coalesce(excluded.access_hash, access_hash), available = excluded.available,"
            " unavailable_reason = excluded.unavailable_reason, resolved_at = excluded.resolved_at,"
            " updated_at = excluded.updated_at",
            (
                record.id, record.username, record.title, record.access_hash, int(record.available),
                record.unavailable_reason, now, now, now,
            ),
        )  # fmt: skip
        self._conn.executemany(
            "INSERT INTO channel_aliases (username, channel_id) VALUES (?, ?)"
            " ON CONFLICT (username) DO UPDATE SET channel_id = excluded.channel_id",
            [(alias, record.id) for alias in {*record.aliases, *([record.username] if record.username else [])}],
        )

    def mark_absent(self, channel_id: int, message_ids: Sequence[int]) -> None:
        now = stamp()
        self._conn.executemany(
            "INSERT OR IGNORE INTO absent_messages (channel_id, message_id, checked_at) VALUES (?, ?, ?)",
            [(channel_id, mid, now) for mid in message_ids],
        )

    def add_media_file(self, file: MediaFile) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO media_files (channel_id, message_id, position, path, sha256, size, downloaded_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (file.channel_id, file.message_id, file.position, file.path, file.sha256, file.size, stamp()),
        )

    def forget_media_files(self, downloaded_before: datetime) -> list[str]:
        rows = self._conn.execute(
            "DELETE FROM media_files WHERE downloaded_at < ? RETURNING path", (stamp(downloaded_before),)
        ).fetchall()
        return [str(row[0]) for row in rows]

    def set_cursor(self, source: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO cursors (source, value, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (source) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (source, value, stamp()),
        )

    def mark_sent(
        self,
        destination: str,
        seqs: Sequence[int],
        remote_ids: Sequence[str | None],
        sources: Sequence[int] | None = None,
    ) -> None:
        """`sources`: how many sources each sent copy listed; a copy listing fewer than the alert has now
        (a channel was added while it was in flight) stays stale, to be edited."""
        counts = sources if sources is not None else [0] * len(seqs)
        # One statement, not one per alert. Not `UPDATE … FROM json_each`: SQLite would scan the
        # destination's deliveries and the list for each; `IN` looks each one up by key.
        self._conn.execute(
            "UPDATE deliveries SET state = 'sent', sent_at = ?1, attempts = attempts + 1, last_error = NULL,"
            " remote_id = (SELECT u.value->>1 FROM json_each(?2) u WHERE u.value->>0 = alert_seq),"
            " stale = stale AND (SELECT u.value->>2 FROM json_each(?2) u WHERE u.value->>0 = alert_seq)"
            "  < (SELECT json_array_length(a.payload, '$.sources') FROM alerts a WHERE a.seq = alert_seq)"
            " WHERE destination = ?3 AND alert_seq IN (SELECT value->>0 FROM json_each(?2)) AND state = 'pending'",
            (stamp(), orjson.dumps(list(zip(seqs, remote_ids, counts, strict=True))).decode(), destination),
        )

    def mark_retry(self, destination: str, seq: int, next_attempt_at: datetime, error: str) -> None:
        self._conn.execute(
            "UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?"
            " WHERE destination = ? AND alert_seq = ? AND state = 'pending'",
            (stamp(next_attempt_at), error[:500], destination, seq),
        )

    def mark_dead(self, destination: str, seq: int, error: str) -> None:
        self._conn.execute(
            "UPDATE deliveries SET state = 'dead', attempts = attempts + 1, last_error = ?"
            " WHERE destination = ? AND alert_seq = ? AND state = 'pending'",
            (error[:500], destination, seq),
        )
