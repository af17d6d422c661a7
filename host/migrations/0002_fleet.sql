-- What other nodes need to follow purges (see host/src/populate).

-- The pages a prefix or tag purge touched: the rows themselves are gone (or stale), and every
-- node must find its own files of them. A URL or key purge names its pages in `purges` already.
CREATE TABLE purged_pages (
    id          INTEGER PRIMARY KEY,
    change_seq  INTEGER NOT NULL,      -- the purge's, as in `purges`
    key         TEXT    NOT NULL,
    method      TEXT    NOT NULL,
    url         TEXT    NOT NULL,
    node        TEXT    NOT NULL       -- the node that had stored the page
) STRICT;

CREATE INDEX purged_pages_by_change ON purged_pages (change_seq, id);

-- The manifest handle (one running caje) that logged a purge or last wrote a row: the node that
-- asked for a purge applied it to its own files already and skips it when it replays the log;
-- a node does not warm back the rows it wrote itself (a file of its own that is gone was
-- dropped on purpose). '' for what was written before these columns.
ALTER TABLE purges ADD COLUMN session TEXT NOT NULL DEFAULT '';
ALTER TABLE entries ADD COLUMN session TEXT NOT NULL DEFAULT '';

-- Which manifest this is. A node remembers how far it applied this manifest's purge log; a
-- different instance (the file was replaced) means that position no longer counts.
CREATE TABLE manifest_identity (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    instance  TEXT    NOT NULL
) STRICT;

INSERT INTO manifest_identity (id, instance) VALUES (1, lower(hex(randomblob(16))));
