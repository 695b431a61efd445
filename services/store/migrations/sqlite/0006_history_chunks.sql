-- The historian's samples move into per-tag chunks (SQLite dialect;
-- migrations/postgres has the same in PostgreSQL's). A chunk holds one
-- tag's samples over a stretch of time, encoded in `data` (see
-- services/store/src/history.rs, `mod chunk`), with the summary a
-- downsample needs beside it: the first and last time, how many samples
-- (`n`) and how many of them carry a value (`valued`), the least, greatest
-- and summed value, and the worst quality code. A downsample reads the
-- summaries of the chunks wholly inside a bucket and decodes only the
-- chunks that straddle a bucket's edge.
-- Chunks of one tag never overlap in time, and a time is stored at most
-- once per tag: the write path checks the stored chunks before it writes,
-- so a replayed batch stores nothing twice (the first write wins).
-- A chunk of one sample may leave `data` NULL: its sample is then
-- (start_us, lo, worst). That is how the rows of 0005 move over, one chunk
-- each; nothing is lost, and later writes of those tags add real chunks.
-- WITHOUT ROWID keeps a tag's chunks in time order, one contiguous scan.
CREATE TABLE history_chunks (
    tag_id   INTEGER NOT NULL,
    start_us INTEGER NOT NULL,
    end_us   INTEGER NOT NULL,
    n        INTEGER NOT NULL,
    valued   INTEGER NOT NULL,
    lo       REAL,
    hi       REAL,
    total    REAL,
    worst    INTEGER NOT NULL,
    data     BLOB,
    PRIMARY KEY (tag_id, start_us)
) WITHOUT ROWID;

-- Every history write adds one to `generation` in its transaction. A
-- writer that caches its tags' last chunks trusts the cache only when the
-- generation it reads is one past the one it wrote last: otherwise another
-- writer (or a retention run) has been at the chunks.
CREATE TABLE history_meta (
    id         INTEGER NOT NULL PRIMARY KEY,
    generation INTEGER NOT NULL
);
INSERT INTO history_meta (id, generation) VALUES (1, 0);

INSERT INTO history_chunks (tag_id, start_us, end_us, n, valued, lo, hi, total, worst, data)
SELECT tag_id, at_us, at_us, 1, CASE WHEN value IS NULL THEN 0 ELSE 1 END,
       value, value, value, quality, NULL
FROM history_samples;

DROP TABLE history_samples;
