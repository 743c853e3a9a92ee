-- Noise control and richer delivery: the same statement from several channels folded into one
-- alert, mutes, cooldowns, all-clears sent as replies, sent alerts edited as sources are added.

ALTER TABLE alerts ADD COLUMN fingerprint TEXT;              -- hash of the post's normalized text
ALTER TABLE alerts ADD COLUMN suppressed TEXT;               -- why it was not delivered: muted, cooldown, duplicate
ALTER TABLE alerts ADD COLUMN merged_into TEXT;              -- the alert a duplicate was folded into
CREATE INDEX alerts_fingerprint ON alerts (fingerprint, category, date) WHERE fingerprint IS NOT NULL;
CREATE INDEX alerts_recent ON alerts (channel_id, category, date);
CREATE INDEX alerts_cleared_by ON alerts (cleared_by) WHERE cleared_by IS NOT NULL;

-- A sent alert whose payload changed since (more channels carried it): an editing notifier
-- (Telegram) updates its message; the others keep what they were sent.
ALTER TABLE deliveries ADD COLUMN stale INTEGER NOT NULL DEFAULT 0;
CREATE INDEX deliveries_stale ON deliveries (destination, alert_seq) WHERE stale = 1;

CREATE TABLE mutes (
    target     TEXT PRIMARY KEY,                  -- channel:<id>, channel:@name, tag:<t>, category:<c>, rule:<id>
    until      TEXT NOT NULL,
    created_by INTEGER,                           -- the analyst's user id (null from the CLI)
    created_at TEXT NOT NULL
) WITHOUT ROWID;
