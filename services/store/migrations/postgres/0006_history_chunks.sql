-- The historian's samples move into per-tag chunks (PostgreSQL dialect;
-- migrations/sqlite has the same in SQLite's). A chunk holds one tag's
-- samples over a stretch of time, encoded in `data` (see
-- services/store/src/history.rs, `mod chunk`), with the summary a
-- downsample needs beside it: the first and last time, how many samples
-- (`n`) and how many of them carry a value (`valued`), the least, greatest
-- and summed value, and the worst quality code. A downsample reads the
-- summaries of the chunks wholly inside a bucket and decodes only the
-- chunks that straddle a bucket's edge.
-- Chunks of one tag never overlap in time, and a time is stored at most
-- once per tag: the write path checks the stored chunks before it writes
-- (under a transaction-scoped advisory lock, so writers take turns), so a
-- replayed batch stores nothing twice (the first write wins).
-- A chunk of one sample may leave `data` NULL: its sample is then
-- (start_us, lo, worst). That is how the rows of 0005 move over, one chunk
-- each; nothing is lost, and later writes of those tags add real chunks.
-- The encoded samples barely compress: STORAGE EXTERNAL spares PostgreSQL
-- the attempt.
CREATE TABLE history_chunks (
    tag_id   integer          NOT NULL,
    start_us bigint           NOT NULL,
    end_us   bigint           NOT NULL,
    n        integer          NOT NULL,
    valued   integer          NOT NULL,
    lo       double precision,
    hi       double precision,
    total    double precision,
    worst    smallint         NOT NULL,
    data     bytea,
    PRIMARY KEY (tag_id, start_us)
);
ALTER TABLE history_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

-- Every history write adds one to `generation` in its transaction. A
-- writer that caches its tags' last chunks trusts the cache only when the
-- generation it reads is one past the one it wrote last: otherwise another
-- writer (or a retention run) has been at the chunks.
CREATE TABLE history_meta (
    id         bigint NOT NULL PRIMARY KEY,
    generation bigint NOT NULL
);
INSERT INTO history_meta (id, generation) VALUES (1, 0);

INSERT INTO history_chunks (tag_id, start_us, end_us, n, valued, lo, hi, total, worst, data)
SELECT tag_id, at_us, at_us, 1, CASE WHEN value IS NULL THEN 0 ELSE 1 END,
       value, value, value, quality, NULL
FROM history_samples;

DROP TABLE history_samples;
