-- The manifest: one row per cache key, shared by every node through LiteFS.
-- Times are unix milliseconds. Rows are written with upserts keyed on `key`, so a
-- replayed or duplicated batch never creates a second row.
CREATE TABLE entries (
    id          INTEGER PRIMARY KEY,   -- stable across upserts; entry_tags points here
    key         TEXT    NOT NULL UNIQUE,
    method      TEXT    NOT NULL,
    url         TEXT    NOT NULL,
    origin      TEXT    NOT NULL,
    status      INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    stored_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    node        TEXT    NOT NULL,      -- the node that stored the body
    stale_at    INTEGER,               -- set by a soft purge; NULL while the row is live
    change_seq  INTEGER NOT NULL       -- changes.seq of the transaction that last wrote the row
) STRICT;

CREATE INDEX entries_by_url ON entries (url, key);
CREATE INDEX entries_by_stored ON entries (stored_at, key);
CREATE INDEX entries_by_change ON entries (change_seq, key);

CREATE TABLE entry_tags (
    tag       TEXT    NOT NULL,
    entry_id  INTEGER NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
    PRIMARY KEY (tag, entry_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX entry_tags_by_entry ON entry_tags (entry_id);

-- A counter bumped once by every write transaction: a node polls it to learn whether
-- anything changed since it last looked.
CREATE TABLE changes (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL
) STRICT;

INSERT INTO changes (id, seq) VALUES (1, 0);

-- Every purge and clear, so a node that was offline can replay what it missed.
CREATE TABLE purges (
    id          INTEGER PRIMARY KEY,
    change_seq  INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    node        TEXT    NOT NULL,
    selector    TEXT    NOT NULL,      -- key | url | prefix | tag | all
    value       TEXT    NOT NULL,
    soft        INTEGER NOT NULL,
    rows        INTEGER NOT NULL
) STRICT;

CREATE INDEX purges_by_change ON purges (change_seq);
