-- tgmon schema 1: the archive (channels, posts, versions, deletions, media), source cursors and the alert outbox.
-- The full-text index lives in its own file, search.db (see store/search.py).
-- Dates are ISO 8601 text in UTC ("2024-03-12T05:41:00+00:00"), so they sort and compare as strings.

CREATE TABLE channels (
    id                 INTEGER PRIMARY KEY,     -- bare MTProto channel id (PeerChannel.channel_id)
    username           TEXT,
    title              TEXT,
    access_hash        INTEGER,                 -- kept so the channel is never resolved by username again
    available          INTEGER NOT NULL DEFAULT 1,
    unavailable_reason TEXT,                    -- private, deleted, renamed…: why it is not followed
    resolved_at        TEXT,
    first_seen_at      TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);

-- Every @username a channel was configured or seen under: a renamed channel is still found by
-- the name in channels.toml, and never confused with a new owner of its old name.
CREATE TABLE channel_aliases (
    username   TEXT PRIMARY KEY COLLATE NOCASE,
    channel_id INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE posts (
    id           INTEGER PRIMARY KEY,
    channel_id   INTEGER NOT NULL,
    message_id   INTEGER NOT NULL,              -- negative: synthetic id of a source without message ids
    date         TEXT NOT NULL,
    edit_date    TEXT,
    text         TEXT NOT NULL,
    entities     TEXT,                          -- JSON list of {type, offset, length, url}
    views        INTEGER,
    forwards     INTEGER,
    replies      INTEGER,
    reply_to     INTEGER,
    forward_from TEXT,                          -- JSON {channel_id, message_id, name, date}
    grouped_id   INTEGER,
    author       TEXT,
    version      INTEGER NOT NULL DEFAULT 1,    -- current text version; older ones are in post_versions
    stored_at    TEXT NOT NULL,
    UNIQUE (channel_id, message_id)
);
CREATE INDEX posts_date ON posts (date);
CREATE INDEX posts_album ON posts (channel_id, grouped_id) WHERE grouped_id IS NOT NULL;

-- Superseded texts: version N is the text a post had before its Nth edit. The rowid orders edits as
-- they were stored, which is how the search indexer (store/search.py) finds posts to re-index.
CREATE TABLE post_versions (
    id          INTEGER PRIMARY KEY,
    channel_id  INTEGER NOT NULL,
    message_id  INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    edit_date   TEXT,
    text        TEXT NOT NULL,
    entities    TEXT,
    replaced_at TEXT NOT NULL,
    UNIQUE (channel_id, message_id, version)
);

-- Deletions are recorded, never applied: the post stays in the archive.
CREATE TABLE deletions (
    channel_id INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    deleted_at TEXT NOT NULL,
    PRIMARY KEY (channel_id, message_id)
) WITHOUT ROWID;

CREATE TABLE media (
    channel_id INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    position   INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    mime_type  TEXT,
    size       INTEGER,
    duration   REAL,
    width      INTEGER,
    height     INTEGER,
    file_name  TEXT,
    file_id    TEXT,
    PRIMARY KEY (channel_id, message_id, position)
) WITHOUT ROWID;

-- Files downloaded for channels with download_media on (metadata alone is in `media`).
CREATE TABLE media_files (
    channel_id    INTEGER NOT NULL,
    message_id    INTEGER NOT NULL,
    position      INTEGER NOT NULL,
    path          TEXT NOT NULL,                -- relative to the data directory
    sha256        TEXT NOT NULL,
    size          INTEGER NOT NULL,
    downloaded_at TEXT NOT NULL,
    PRIMARY KEY (channel_id, message_id, position)
) WITHOUT ROWID;

-- Message ids a channel's history was asked for and did not have (deleted before tgmon saw them):
-- the gap check does not ask again.
CREATE TABLE absent_messages (
    channel_id INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    checked_at TEXT NOT NULL,
    PRIMARY KEY (channel_id, message_id)
) WITHOUT ROWID;

-- Where each source stopped; written in the same transaction as the posts it covers.
CREATE TABLE cursors (
    source     TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;

-- The outbox: an alert is written with the post that raised it, then delivered per destination.
CREATE TABLE alerts (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    date       TEXT NOT NULL,                   -- the post's date: what "open" and "recent" are measured in
    channel_id INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    category   TEXT NOT NULL,
    severity   TEXT NOT NULL,
    cleared_by TEXT,                            -- id of the all-clear that ended it
    payload    TEXT NOT NULL,                   -- the alert object as written to alerts.jsonl
    UNIQUE (channel_id, message_id, category)
);
CREATE INDEX alerts_channel ON alerts (channel_id, seq);

CREATE TABLE deliveries (
    destination     TEXT NOT NULL,
    alert_seq       INTEGER NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    sent_at         TEXT,
    remote_id       TEXT,
    last_error      TEXT,
    PRIMARY KEY (destination, alert_seq)
) WITHOUT ROWID;
CREATE INDEX deliveries_pending ON deliveries (destination, alert_seq) WHERE state = 'pending';
