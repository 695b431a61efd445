-- The historian (SQLite dialect; migrations/postgres has the same tables in
-- PostgreSQL's). Tag names are interned into small integer ids, so that a
-- sample is a narrow row: tag id, time in microseconds since the epoch, the
-- value (NULL for a bad sample), and the quality code of
-- remine_domain::SampleQuality (0 good, 1 uncertain, 2 and up bad).
-- One sample per tag and time: the primary key makes a replayed batch a
-- no-op (INSERT OR IGNORE, the first write wins). WITHOUT ROWID keeps the
-- rows in key order, so a tag's range is one contiguous scan. There is no
-- foreign key from samples to tags: the ids come from history_tags only,
-- and checking it on every row would halve the ingest rate.
CREATE TABLE history_tags (
    id   INTEGER NOT NULL PRIMARY KEY,
    name TEXT    NOT NULL UNIQUE
);

CREATE TABLE history_samples (
    tag_id  INTEGER NOT NULL,
    at_us   INTEGER NOT NULL,
    value   REAL,
    quality INTEGER NOT NULL,
    PRIMARY KEY (tag_id, at_us)
) WITHOUT ROWID;
