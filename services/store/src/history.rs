//! The historian's storage: [`HistoryStore`] on SQLite and PostgreSQL.
//!
//! Samples are kept in per-tag chunks (`history_chunks`, migration 0006):
//! one row holds one tag's samples over a stretch of time, encoded compactly
//! (see [`chunk`]), beside the summary a downsample needs (first and last
//! time, sample and value counts, least, greatest and summed value, worst
//! quality). Tag names are interned into `history_tags` once and their ids
//! cached in the [`Db`].
//!
//! Writing (one transaction per batch; SQLite `BEGIN IMMEDIATE`, PostgreSQL
//! a transaction-scoped advisory lock, so history writers take turns):
//! 1. the batch is grouped by tag and time (a time repeated within the batch
//!    keeps its first sample);
//! 2. one query reads each tag's last chunk (its encoded samples too when it
//!    holds fewer than [`CHUNK_TARGET`]);
//! 3. a tag whose new samples all come after its last chunk (the live case)
//!    gets them appended: merged into that chunk while it is small, else as
//!    new chunks of at most [`CHUNK_MAX`] samples;
//! 4. a tag whose samples reach back into stored time (a replay, a
//!    backfill) has its overlapping chunks read and rewritten with the new
//!    samples merged in; a time stored already keeps its stored sample, so a
//!    replayed batch stores nothing twice and the count of new samples is
//!    exact;
//! 5. the chunks are upserted with multi-row statements (SQLite, through
//!    the store's pool, `synchronous = NORMAL` and a 32 MiB page cache for
//!    the batch; WAL: a process crash loses nothing, a power cut may lose
//!    the last batches) or `UNNEST` arrays (PostgreSQL, through a native
//!    pool of its own, opened lazily with the store's options).
//!
//! Reading goes through the Any pool with the same SQL on both backends. A
//! downsample adds up, in one `GROUP BY`, the summaries of the chunks that
//! lie wholly inside one bucket, and decodes only the chunks that straddle
//! a bucket edge or the range's ends; the statistics are those of the raw
//! samples (the mean up to the rounding of a sum taken in another order).

use crate::db::{Db, db_error, micros, time_from_micros};
use crate::rows::get;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use remine_domain::ports::{HistoryStore, StoreError};
use remine_domain::{Bucket, Sample, SampleQuality, TagName, bucket_width_us};
use sqlx::any::AnyRow;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{AnyConnection, AssertSqlSafe, Connection, PgConnection, PgPool, Row};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

/// A tag's last chunk with fewer samples than this takes the next samples
/// in, so live data, a few samples per tag per batch, still ends up in
/// chunks of about this size: each batch adds a small chunk row, and every
/// [`RUN_ROWS`] rows the run is merged into one chunk (see [`Run`]).
pub(crate) const CHUNK_TARGET: usize = 256;
/// How many chunk rows a tag's run of small chunks may have before it is
/// merged: each merge rewrites the run's first chunk, so fewer merges
/// write less; more rows make a downsample read more summaries.
pub(crate) const RUN_ROWS: u32 = 16;
/// The most samples one chunk holds (about 11 kB encoded).
pub(crate) const CHUNK_MAX: usize = 1024;
/// Chunk rows per SQLite upsert: 10 parameters each, well under SQLite's
/// limit of 32,766 variables.
const SQLITE_CHUNKS_PER_STATEMENT: usize = 300;
/// What a history write sets on its SQLite connection first.
const SQLITE_SESSION: &str = "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -32768";
/// Names per statement when interning tags.
const NAMES_PER_STATEMENT: usize = 500;
/// How long a history write waits for a PostgreSQL connection: short, so
/// that the historian learns soon that the server is gone and spools.
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
const PG_CONNECTIONS: u32 = 2;
/// The key of the PostgreSQL advisory lock history writers take turns on
/// ("remine history" in ASCII, truncated to 64 bits).
const PG_HISTORY_LOCK: i64 = 0x7265_6d69_6e65_6869;

/// What the [`Db`] keeps for the historian.
pub(crate) struct HistoryState {
    ids: Mutex<HashMap<TagName, i64>>,
    tails: Mutex<Tails>,
    pg: Option<PgPool>,
}

/// A tag's last stored time as this process last wrote it, and its run
/// while the run is small enough to take more samples.
#[derive(Debug, Clone)]
struct Tail {
    end_us: i64,
    run: Option<Run>,
}

/// The chunk rows at a tag's end that together hold fewer than
/// [`CHUNK_TARGET`] samples: `chunk` is all their samples merged (it starts
/// where the first row starts), `rows` how many rows hold them. No other
/// row of the tag starts within the chunk's span.
#[derive(Debug, Clone)]
struct Run {
    chunk: Chunk,
    rows: u32,
}

impl Tail {
    /// The tail after writing `c` as one row.
    fn of(c: &Chunk) -> Tail {
        Tail {
            end_us: c.end_us,
            run: usize::try_from(c.n)
                .is_ok_and(|n| n < CHUNK_TARGET)
                .then(|| Run {
                    chunk: c.clone(),
                    rows: 1,
                }),
        }
    }
}

/// The last chunks of the tags this process wrote, valid as of
/// `history_meta.generation` = `generation` (see migration 0006): the live
/// path then reads nothing before it writes.
#[derive(Debug, Default)]
struct Tails {
    generation: Option<i64>,
    by_tag: HashMap<i64, Tail>,
}

impl fmt::Debug for HistoryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HistoryState")
            .field("native_pool", &self.pg.is_some())
            .finish()
    }
}

impl HistoryState {
    pub(crate) fn new(pg: Option<PgPool>) -> HistoryState {
        HistoryState {
            ids: Mutex::new(HashMap::new()),
            tails: Mutex::new(Tails::default()),
            pg,
        }
    }

    /// Takes the cached tails of `tags` for a write whose generation is
    /// `generation`; the cache is dropped when another write came between.
    fn take_tails(&self, generation: i64, tags: &[Group]) -> HashMap<i64, Tail> {
        let mut t = self.tails.lock().unwrap_or_else(|p| p.into_inner());
        if t.generation != Some(generation - 1) {
            t.by_tag.clear();
            t.generation = None;
            return HashMap::new();
        }
        tags.iter()
            .filter_map(|g| t.by_tag.remove(&g.tag_id).map(|x| (g.tag_id, x)))
            .collect()
    }

    /// Puts back the tails of a committed write of `generation`.
    fn put_tails(&self, generation: i64, tails: Vec<(i64, Tail)>) {
        let mut t = self.tails.lock().unwrap_or_else(|p| p.into_inner());
        if t.generation.is_some_and(|g| g > generation) {
            return;
        }
        t.generation = Some(generation);
        t.by_tag.extend(tails);
    }

    pub(crate) async fn close(&self) {
        if let Some(pg) = &self.pg {
            pg.close().await;
        }
    }

    fn cached(&self, tags: &[&TagName]) -> (HashMap<TagName, i64>, Vec<TagName>) {
        let ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        for &t in tags {
            match ids.get(t) {
                Some(&id) => {
                    found.insert(t.clone(), id);
                }
                None => missing.push(t.clone()),
            }
        }
        (found, missing)
    }

    fn remember(&self, more: &HashMap<TagName, i64>) {
        let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        ids.extend(more.iter().map(|(t, &id)| (t.clone(), id)));
    }
}

/// The historian's native PostgreSQL pool: it connects on first use.
pub(crate) fn native_pool(options: PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(PG_CONNECTIONS)
        .acquire_timeout(PG_ACQUIRE_TIMEOUT)
        .connect_lazy_with(options)
}

/// Maps a sqlx error like [`db_error`], and also the server's "cannot
/// connect now" and "shutting down" answers (SQLSTATE classes 08 and 57)
/// to `Unavailable`.
fn history_error(context: impl fmt::Display) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| {
        let going_away = e
            .as_database_error()
            .and_then(|d| d.code())
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57"));
        if going_away {
            StoreError::Unavailable(format!("{context}: {e}"))
        } else {
            db_error(context)(e)
        }
    }
}

/// The encoding of a chunk's samples and the chunk as written.
///
/// `data` is, per sample in time order: the time since the previous
/// sample (the first: since the chunk's start, so 0) as an unsigned LEB128
/// varint of microseconds; one byte, the quality code in the low 7 bits
/// and bit 7 set when a value follows; the value as 8 little-endian bytes
/// of an IEEE 754 double. A chunk of one sample may have no `data`: its
/// sample is then `(start_us, lo, worst)`.
pub(crate) mod chunk {
    use remine_domain::ports::StoreError;

    /// One stored sample of a tag: time in microseconds, value, quality code.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub(crate) struct Point {
        pub at_us: i64,
        pub value: Option<f64>,
        pub quality: i16,
    }

    /// A chunk to write: one tag's points with their summary.
    #[derive(Debug, Clone, PartialEq)]
    pub(crate) struct Chunk {
        pub tag_id: i64,
        pub start_us: i64,
        pub end_us: i64,
        pub n: i32,
        pub valued: i32,
        pub lo: Option<f64>,
        pub hi: Option<f64>,
        pub total: Option<f64>,
        pub worst: i16,
        pub data: Vec<u8>,
    }

    const HAS_VALUE: u8 = 0x80;

    impl Chunk {
        /// The chunk of `points` (in time order, times distinct, at least
        /// one).
        pub(crate) fn of(tag_id: i64, points: &[Point]) -> Chunk {
            let start_us = points.first().map_or(0, |p| p.at_us);
            let mut c = Chunk {
                tag_id,
                start_us,
                end_us: start_us,
                n: 0,
                valued: 0,
                lo: None,
                hi: None,
                total: None,
                worst: 0,
                data: Vec::with_capacity(points.len() * 11),
            };
            c.extend(points);
            c
        }

        /// Appends `points` (in time order, all after the chunk's end
        /// unless the chunk is empty), keeping the summary.
        pub(crate) fn extend(&mut self, points: &[Point]) {
            let mut prev = if self.n == 0 {
                self.start_us
            } else {
                self.end_us
            };
            for p in points {
                let mut delta = p.at_us.wrapping_sub(prev) as u64;
                prev = p.at_us;
                while delta >= 0x80 {
                    self.data.push((delta as u8) | 0x80);
                    delta >>= 7;
                }
                self.data.push(delta as u8);
                let code = (p.quality as u8) & 0x7f;
                self.worst = self.worst.max(p.quality);
                match p.value {
                    Some(v) => {
                        self.data.push(code | HAS_VALUE);
                        self.data.extend_from_slice(&v.to_le_bytes());
                        self.valued += 1;
                        self.lo = Some(self.lo.map_or(v, |m| m.min(v)));
                        self.hi = Some(self.hi.map_or(v, |m| m.max(v)));
                        self.total = Some(self.total.unwrap_or(0.0) + v);
                    }
                    None => self.data.push(code),
                }
                self.n = self.n.saturating_add(1);
            }
            self.end_us = prev;
        }
    }

    /// A stored chunk as read back: its key, summary and (when asked for)
    /// encoded samples.
    #[derive(Debug, Clone)]
    pub(crate) struct Stored {
        pub start_us: i64,
        pub end_us: i64,
        pub n: i64,
        pub lo: Option<f64>,
        pub worst: i64,
        pub data: Option<Vec<u8>>,
    }

    impl Stored {
        /// The chunk's samples; `what` names the chunk for the error.
        pub(crate) fn points(
            &self,
            what: &dyn std::fmt::Display,
        ) -> Result<Vec<Point>, StoreError> {
            let corrupt = |why: &str| {
                StoreError::Corrupt(format!(
                    "{what} (history_chunks, start_us {}): {why}",
                    self.start_us
                ))
            };
            let quality = i16::try_from(self.worst).map_err(|_| corrupt("worst out of range"))?;
            let Some(data) = &self.data else {
                if self.n != 1 {
                    return Err(corrupt("no data but more than one sample"));
                }
                return Ok(vec![Point {
                    at_us: self.start_us,
                    value: self.lo,
                    quality,
                }]);
            };
            let n = usize::try_from(self.n).map_err(|_| corrupt("negative sample count"))?;
            let mut points = Vec::with_capacity(n.min(1 << 20));
            let mut at = self.start_us;
            let mut i = 0;
            while i < data.len() {
                let mut delta: u64 = 0;
                let mut shift = 0;
                loop {
                    let b = *data.get(i).ok_or_else(|| corrupt("truncated time"))?;
                    i += 1;
                    if shift > 63 {
                        return Err(corrupt("time delta too long"));
                    }
                    delta |= u64::from(b & 0x7f) << shift;
                    shift += 7;
                    if b & 0x80 == 0 {
                        break;
                    }
                }
                at = at.wrapping_add(delta as i64);
                let q = *data.get(i).ok_or_else(|| corrupt("truncated quality"))?;
                i += 1;
                let value = if q & HAS_VALUE != 0 {
                    let bytes: [u8; 8] = data
                        .get(i..i + 8)
                        .and_then(|b| b.try_into().ok())
                        .ok_or_else(|| corrupt("truncated value"))?;
                    i += 8;
                    Some(f64::from_le_bytes(bytes))
                } else {
                    None
                };
                points.push(Point {
                    at_us: at,
                    value,
                    quality: i16::from(q & 0x7f),
                });
            }
            if points.len() != n || points.last().map(|p| p.at_us) != Some(self.end_us) {
                return Err(corrupt("data disagrees with its summary"));
            }
            Ok(points)
        }
    }

    /// `points` (in time order) as chunks of at most `max` points each.
    pub(crate) fn split(tag_id: i64, points: &[Point], max: usize) -> Vec<Chunk> {
        points
            .chunks(max.max(1))
            .map(|c| Chunk::of(tag_id, c))
            .collect()
    }

    /// Merges `new` into `stored` (both in time order, times distinct
    /// within each); a time in both keeps the stored point. Returns the
    /// merged points and how many of `new` were taken.
    pub(crate) fn merge(stored: &[Point], new: &[Point]) -> (Vec<Point>, usize) {
        let mut out = Vec::with_capacity(stored.len() + new.len());
        let (mut i, mut j, mut taken) = (0, 0, 0);
        while i < stored.len() || j < new.len() {
            match (stored.get(i), new.get(j)) {
                (Some(s), Some(n)) if s.at_us == n.at_us => {
                    out.push(*s);
                    i += 1;
                    j += 1;
                }
                (Some(s), Some(n)) if s.at_us < n.at_us => {
                    out.push(*s);
                    i += 1;
                }
                (_, Some(n)) => {
                    out.push(*n);
                    j += 1;
                    taken += 1;
                }
                (Some(s), None) => {
                    out.push(*s);
                    i += 1;
                }
                (None, None) => break,
            }
        }
        (out, taken)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn p(at_us: i64, value: Option<f64>, quality: i16) -> Point {
            Point {
                at_us,
                value,
                quality,
            }
        }

        fn stored(c: &Chunk) -> Stored {
            Stored {
                start_us: c.start_us,
                end_us: c.end_us,
                n: i64::from(c.n),
                lo: c.lo,
                worst: i64::from(c.worst),
                data: Some(c.data.clone()),
            }
        }

        /// Encodes `points`, checks the summary and that they decode back.
        fn check(points: &[Point], lo: Option<f64>, hi: Option<f64>, valued: i32, worst: i16) {
            let c = Chunk::of(7, points);
            assert_eq!((c.lo, c.hi, c.valued, c.worst), (lo, hi, valued, worst));
            assert_eq!(c.n as usize, points.len());
            assert_eq!(stored(&c).points(&"test").unwrap(), points);
        }

        #[test]
        fn chunks_round_trip_with_their_summary() {
            check(&[p(5, Some(1.5), 0)], Some(1.5), Some(1.5), 1, 0);
            check(
                &[
                    p(-10, Some(-2.0), 0),
                    p(0, None, 7),
                    p(1 << 40, Some(3.0), 1),
                ],
                Some(-2.0),
                Some(3.0),
                2,
                7,
            );
            check(&[p(1, None, 2), p(2, None, 3)], None, None, 0, 3);
        }

        #[test]
        fn a_chunk_without_data_is_its_one_summarised_sample() {
            let s = Stored {
                start_us: 9,
                end_us: 9,
                n: 1,
                lo: Some(4.0),
                worst: 1,
                data: None,
            };
            assert_eq!(s.points(&"t").unwrap(), vec![p(9, Some(4.0), 1)]);
            let two = Stored { n: 2, ..s };
            assert!(matches!(two.points(&"t"), Err(StoreError::Corrupt(_))));
        }

        #[test]
        fn damaged_data_is_reported_not_trusted() {
            let c = Chunk::of(1, &[p(1, Some(1.0), 0), p(2, Some(2.0), 0)]);
            let mut s = stored(&c);
            s.data.as_mut().unwrap().pop();
            assert!(
                matches!(s.points(&"t"), Err(StoreError::Corrupt(m)) if m.contains("truncated"))
            );
            let mut s = stored(&c);
            s.n = 3;
            assert!(matches!(s.points(&"t"), Err(StoreError::Corrupt(m)) if m.contains("summary")));
        }

        #[test]
        fn a_merge_keeps_the_stored_point_of_a_time_in_both() {
            let (m, taken) = merge(
                &[p(1, Some(1.0), 0), p(3, Some(3.0), 0)],
                &[p(0, Some(0.0), 0), p(3, Some(9.0), 0), p(4, None, 5)],
            );
            assert_eq!(
                m,
                vec![
                    p(0, Some(0.0), 0),
                    p(1, Some(1.0), 0),
                    p(3, Some(3.0), 0),
                    p(4, None, 5)
                ]
            );
            assert_eq!(taken, 2);
        }
    }
}

use chunk::{Chunk, Point, Stored};

/// Reads a stored chunk's columns (`start_us`, `end_us`, `n`, `lo`,
/// `worst`, `data`) from a row of either driver.
macro_rules! stored_chunk {
    ($row:expr, $what:expr) => {{
        let row = $row;
        let what: &dyn fmt::Display = $what;
        let col = |e: sqlx::Error| StoreError::Corrupt(format!("{what}: history_chunks: {e}"));
        Ok::<Stored, StoreError>(Stored {
            start_us: row.try_get("start_us").map_err(col)?,
            end_us: row.try_get("end_us").map_err(col)?,
            n: row.try_get("n").map_err(col)?,
            lo: row.try_get("lo").map_err(col)?,
            worst: row.try_get("worst").map_err(col)?,
            data: row.try_get("data").map_err(col)?,
        })
    }};
}

fn stored_any(row: &AnyRow, what: &dyn fmt::Display) -> Result<Stored, StoreError> {
    stored_chunk!(row, what)
}

fn stored_pg(row: &PgRow, what: &dyn fmt::Display) -> Result<Stored, StoreError> {
    stored_chunk!(row, what)
}

/// Which tag a chunk of a write belongs to, for messages.
struct TagRef(i64);

impl fmt::Display for TagRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "history tag id {}", self.0)
    }
}

/// One tag's share of a batch: its new points in time order.
struct Group {
    tag_id: i64,
    points: Vec<Point>,
}

impl Group {
    fn first_us(&self) -> i64 {
        self.points.first().map_or(i64::MIN, |p| p.at_us)
    }

    fn last_us(&self) -> i64 {
        self.points.last().map_or(i64::MIN, |p| p.at_us)
    }
}

/// What one batch writes: chunk rows to delete before the upserts, as
/// `(tag_id, after_us, until_us)`: the rows starting in `(after, until]`;
/// the tags' tails afterwards, where known.
#[derive(Default)]
struct Plan {
    delete: Vec<(i64, i64, i64)>,
    upsert: Vec<Chunk>,
    new: u64,
    tails: Vec<(i64, Tail)>,
}

impl Plan {
    /// A tag whose points all come after its last chunk. While its run
    /// is small, a few points go in as one more small row; the run is
    /// merged (its rows after the first deleted, the first replaced by the
    /// whole run) when it has [`RUN_ROWS`] rows or [`CHUNK_TARGET`]
    /// samples. Points beyond that become new chunks.
    fn append(&mut self, group: &Group, tail: Option<Tail>) {
        self.new += group.points.len() as u64;
        let tag_id = group.tag_id;
        let mut rest = group.points.as_slice();
        let first = self.upsert.len();
        if let Some(Run { mut chunk, rows }) = tail.and_then(|t| t.run) {
            let room = CHUNK_MAX.saturating_sub(usize::try_from(chunk.n).unwrap_or(CHUNK_MAX));
            let (now, later) = rest.split_at(room.min(rest.len()));
            rest = later;
            let grown = usize::try_from(chunk.n).unwrap_or(CHUNK_MAX) + now.len();
            if later.is_empty() && rows + 1 < RUN_ROWS && grown < CHUNK_TARGET {
                let row = Chunk::of(tag_id, now);
                chunk.extend(now);
                self.upsert.push(row);
                self.tails.push((
                    tag_id,
                    Tail {
                        end_us: chunk.end_us,
                        run: Some(Run {
                            chunk,
                            rows: rows + 1,
                        }),
                    },
                ));
                return;
            }
            chunk.extend(now);
            if rows > 1 {
                self.delete.push((tag_id, chunk.start_us, chunk.end_us));
            }
            self.upsert.push(chunk);
        }
        self.upsert.extend(chunk::split(tag_id, rest, CHUNK_MAX));
        if let Some(last) = self.upsert[first..].last() {
            self.tails.push((tag_id, Tail::of(last)));
        }
    }

    /// A tag whose points reach into stored time: `overlapping` (every
    /// chunk of the tag overlapping the group's span) is rewritten with the
    /// new points merged in.
    fn rewrite(&mut self, group: &Group, overlapping: &[Stored]) -> Result<(), StoreError> {
        let mut stored = Vec::new();
        for c in overlapping {
            stored.extend(c.points(&TagRef(group.tag_id))?);
        }
        let (merged, taken) = chunk::merge(&stored, &group.points);
        if taken == 0 {
            return Ok(());
        }
        self.new += taken as u64;
        self.delete.extend(
            overlapping
                .iter()
                .map(|c| (group.tag_id, c.start_us - 1, c.start_us)),
        );
        self.upsert
            .extend(chunk::split(group.tag_id, &merged, CHUNK_MAX));
        Ok(())
    }
}

/// The tail of a stored last chunk (`data` read only when it is small).
fn tail_of_stored(tag_id: i64, c: &Stored) -> Result<Tail, StoreError> {
    let small = usize::try_from(c.n).is_ok_and(|n| n < CHUNK_TARGET);
    let chunk = if small {
        Some(Chunk::of(tag_id, &c.points(&TagRef(tag_id))?))
    } else {
        None
    };
    Ok(Tail {
        end_us: c.end_us,
        run: chunk.map(|chunk| Run { chunk, rows: 1 }),
    })
}

/// Bumps `history_meta.generation` in the write's transaction and returns
/// the new value.
const NEXT_GENERATION_SQL: &str =
    "UPDATE history_meta SET generation = generation + 1 WHERE id = 1 RETURNING generation";

/// The chunks of a tag overlapping `[first_us, last_us]` (both inclusive):
/// the last one starting at or before `first_us` and those starting up to
/// `last_us`, when they reach `first_us`.
const OVERLAPPING_SQL: &str = "SELECT start_us, end_us, CAST(n AS BIGINT) AS n, lo, \
     CAST(worst AS BIGINT) AS worst, data FROM history_chunks \
     WHERE tag_id = $1 AND start_us <= $3 AND end_us >= $2 AND start_us >= COALESCE(\
     (SELECT MAX(start_us) FROM history_chunks WHERE tag_id = $1 AND start_us <= $2), $2) \
     ORDER BY start_us";

const UPSERT_SET: &str = " ON CONFLICT (tag_id, start_us) DO UPDATE SET end_us = excluded.end_us, \
     n = excluded.n, valued = excluded.valued, lo = excluded.lo, hi = excluded.hi, \
     total = excluded.total, worst = excluded.worst, data = excluded.data";

fn sqlite_upsert_sql(rows: usize) -> String {
    let mut sql = String::with_capacity(200 + rows * 24);
    sql.push_str(
        "INSERT INTO history_chunks (tag_id, start_us, end_us, n, valued, lo, hi, total, worst, data) VALUES ",
    );
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?,?,?,?,?,?,?)");
    }
    sql.push_str(UPSERT_SET);
    sql
}

/// Groups rows (sorted by tag, then time) by tag.
fn groups_of(mut rows: Vec<(i64, Point)>) -> Vec<Group> {
    // Key order; a repeated (tag, time) within the batch keeps its first
    // sample (the sort is stable), as a replay across batches does.
    rows.sort_by_key(|(t, p)| (*t, p.at_us));
    rows.dedup_by_key(|(t, p)| (*t, p.at_us));
    let mut groups: Vec<Group> = Vec::new();
    for (tag_id, p) in rows {
        match groups.last_mut() {
            Some(g) if g.tag_id == tag_id => g.points.push(p),
            _ => groups.push(Group {
                tag_id,
                points: vec![p],
            }),
        }
    }
    groups
}

impl Db {
    /// The ids of `tags`, interning the names not stored yet.
    async fn tag_ids(&self, tags: &[&TagName]) -> Result<HashMap<TagName, i64>, StoreError> {
        let state = self.history_state();
        let (mut found, missing) = state.cached(tags);
        if missing.is_empty() {
            return Ok(found);
        }
        let mut fetched = HashMap::new();
        for chunk in missing.chunks(NAMES_PER_STATEMENT) {
            let params: Vec<String> = (1..=chunk.len()).map(|i| format!("(${i})")).collect();
            let mut insert = sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO history_tags (name) VALUES {} ON CONFLICT (name) DO NOTHING",
                params.join(",")
            )));
            for t in chunk {
                insert = insert.bind(t.as_str());
            }
            insert
                .execute(self.pool())
                .await
                .map_err(history_error("interning history tags"))?;
            let params: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let mut select = sqlx::query(AssertSqlSafe(format!(
                "SELECT CAST(id AS BIGINT) AS id, name FROM history_tags WHERE name IN ({})",
                params.join(",")
            )));
            for t in chunk {
                select = select.bind(t.as_str());
            }
            let rows = select
                .fetch_all(self.pool())
                .await
                .map_err(history_error("reading history tag ids"))?;
            for row in &rows {
                let name: String = get(row, "name", &"history_tags")?;
                let id: i64 = get(row, "id", &format!("history tag {name}"))?;
                let tag = TagName::parse(&name)
                    .map_err(|e| StoreError::Corrupt(format!("history_tags: {e}")))?;
                fetched.insert(tag, id);
            }
        }
        state.remember(&fetched);
        found.extend(fetched);
        Ok(found)
    }

    /// The id of a stored tag, or `None` when it never had a sample.
    async fn known_tag_id(&self, tag: &TagName) -> Result<Option<i64>, StoreError> {
        if let (found, _) = self.history_state().cached(&[tag])
            && let Some(&id) = found.get(tag)
        {
            return Ok(Some(id));
        }
        let row = sqlx::query("SELECT CAST(id AS BIGINT) AS id FROM history_tags WHERE name = $1")
            .bind(tag.as_str())
            .fetch_optional(self.pool())
            .await
            .map_err(history_error(format!(
                "reading the id of history tag {tag}"
            )))?;
        row.map(|r| get(&r, "id", &format!("history tag {tag}")))
            .transpose()
    }

    async fn append_sqlite(&self, groups: &[Group]) -> Result<u64, StoreError> {
        let mut conn = self
            .pool()
            .acquire()
            .await
            .map_err(history_error("opening a connection for history samples"))?;
        // The chunks of many tags outgrow SQLite's default 2 MB page cache
        // soon; a larger cache keeps a batch's writes in memory.
        sqlx::raw_sql(SQLITE_SESSION)
            .execute(&mut *conn)
            .await
            .map_err(history_error("setting up a connection for history samples"))?;
        let outcome = async {
            let mut tx = conn
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(history_error("beginning a history write"))?;
            let (plan, generation) = plan_sqlite(self.history_state(), &mut tx, groups).await?;
            for (tag_id, after, until) in &plan.delete {
                sqlx::query(
                    "DELETE FROM history_chunks WHERE tag_id = $1 AND start_us > $2 AND start_us <= $3",
                )
                .bind(tag_id)
                .bind(after)
                .bind(until)
                    .execute(&mut *tx)
                    .await
                    .map_err(history_error("deleting rewritten history chunks"))?;
            }
            let full = sqlite_upsert_sql(SQLITE_CHUNKS_PER_STATEMENT);
            for part in plan.upsert.chunks(SQLITE_CHUNKS_PER_STATEMENT) {
                let sql = if part.len() == SQLITE_CHUNKS_PER_STATEMENT {
                    full.clone()
                } else {
                    sqlite_upsert_sql(part.len())
                };
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for c in part {
                    q = q
                        .bind(c.tag_id)
                        .bind(c.start_us)
                        .bind(c.end_us)
                        .bind(c.n)
                        .bind(c.valued)
                        .bind(c.lo)
                        .bind(c.hi)
                        .bind(c.total)
                        .bind(c.worst)
                        .bind(c.data.clone());
                }
                q.execute(&mut *tx)
                    .await
                    .map_err(history_error("writing history chunks"))?;
            }
            tx.commit()
                .await
                .map_err(history_error("committing history samples"))?;
            self.history_state().put_tails(generation, plan.tails);
            Ok(plan.new)
        }
        .await;
        if let Err(e) = sqlx::query("PRAGMA synchronous = FULL")
            .execute(&mut *conn)
            .await
        {
            tracing::warn!(error = %e, "cannot restore synchronous = FULL; closing the connection");
            conn.close_on_drop();
        }
        outcome
    }

    async fn append_postgres(&self, pg: &PgPool, groups: &[Group]) -> Result<u64, StoreError> {
        let mut conn = pg
            .acquire()
            .await
            .map_err(history_error("connecting for history samples"))?;
        let mut tx = conn
            .begin()
            .await
            .map_err(history_error("beginning a history write"))?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PG_HISTORY_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(history_error("waiting for the history write lock"))?;
        let (plan, generation) = plan_postgres(self.history_state(), &mut tx, groups).await?;
        if !plan.delete.is_empty() {
            sqlx::query(
                "DELETE FROM history_chunks AS c \
                 USING UNNEST($1::int[], $2::bigint[], $3::bigint[]) AS d(tag_id, after_us, until_us) \
                 WHERE c.tag_id = d.tag_id AND c.start_us > d.after_us AND c.start_us <= d.until_us",
            )
            .bind(plan.delete.iter().map(|d| d.0 as i32).collect::<Vec<i32>>())
            .bind(plan.delete.iter().map(|d| d.1).collect::<Vec<i64>>())
            .bind(plan.delete.iter().map(|d| d.2).collect::<Vec<i64>>())
            .execute(&mut *tx)
            .await
            .map_err(history_error("deleting rewritten history chunks"))?;
        }
        if !plan.upsert.is_empty() {
            let u = &plan.upsert;
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO history_chunks (tag_id, start_us, end_us, n, valued, lo, hi, total, worst, data) \
                 SELECT * FROM UNNEST($1::int[], $2::bigint[], $3::bigint[], $4::int[], $5::int[], \
                 $6::float8[], $7::float8[], $8::float8[], $9::smallint[], $10::bytea[]){UPSERT_SET}"
            )))
            .bind(u.iter().map(|c| c.tag_id as i32).collect::<Vec<i32>>())
            .bind(u.iter().map(|c| c.start_us).collect::<Vec<i64>>())
            .bind(u.iter().map(|c| c.end_us).collect::<Vec<i64>>())
            .bind(u.iter().map(|c| c.n).collect::<Vec<i32>>())
            .bind(u.iter().map(|c| c.valued).collect::<Vec<i32>>())
            .bind(u.iter().map(|c| c.lo).collect::<Vec<Option<f64>>>())
            .bind(u.iter().map(|c| c.hi).collect::<Vec<Option<f64>>>())
            .bind(u.iter().map(|c| c.total).collect::<Vec<Option<f64>>>())
            .bind(u.iter().map(|c| c.worst).collect::<Vec<i16>>())
            .bind(u.iter().map(|c| c.data.as_slice()).collect::<Vec<&[u8]>>())
            .execute(&mut *tx)
            .await
            .map_err(history_error("writing history chunks"))?;
        }
        tx.commit()
            .await
            .map_err(history_error("committing history samples"))?;
        self.history_state().put_tails(generation, plan.tails);
        Ok(plan.new)
    }

    /// Deletes a tag's samples before `before` in one transaction: whole
    /// chunks, and the early part of a chunk that straddles `before`.
    async fn delete_before(&self, tag_id: i64, before_us: i64) -> Result<u64, StoreError> {
        let what = TagRef(tag_id);
        // Most runs find nothing to delete: they write nothing, so other
        // writers' cached tails stay valid.
        let any_old = sqlx::query(
            "SELECT start_us FROM history_chunks WHERE tag_id = $1 AND start_us < $2 LIMIT 1",
        )
        .bind(tag_id)
        .bind(before_us)
        .fetch_optional(self.pool())
        .await
        .map_err(history_error("looking for old history"))?;
        if any_old.is_none() {
            return Ok(0);
        }
        let mut conn = self
            .pool()
            .acquire()
            .await
            .map_err(history_error("opening a connection for history retention"))?;
        let pg = self.history_state().pg.is_some();
        let mut tx = if pg {
            let mut tx = Connection::begin(&mut *conn)
                .await
                .map_err(history_error("beginning history retention"))?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(PG_HISTORY_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(history_error("waiting for the history write lock"))?;
            tx
        } else {
            conn.begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(history_error("beginning history retention"))?
        };
        // Other writers' cached tails are stale after this.
        sqlx::query(NEXT_GENERATION_SQL)
            .fetch_one(&mut *tx)
            .await
            .map_err(history_error("counting history writes"))?;
        let whole = sqlx::query(
            "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) AS n FROM history_chunks \
             WHERE tag_id = $1 AND start_us < $2 AND end_us < $2",
        )
        .bind(tag_id)
        .bind(before_us)
        .fetch_one(&mut *tx)
        .await
        .map_err(history_error("counting old history"))?;
        let mut deleted: i64 = get(&whole, "n", &what)?;
        sqlx::query(
            "DELETE FROM history_chunks WHERE tag_id = $1 AND start_us < $2 AND end_us < $2",
        )
        .bind(tag_id)
        .bind(before_us)
        .execute(&mut *tx)
        .await
        .map_err(history_error("deleting old history"))?;
        let straddling = sqlx::query(
            "SELECT start_us, end_us, CAST(n AS BIGINT) AS n, lo, CAST(worst AS BIGINT) AS worst, data \
             FROM history_chunks WHERE tag_id = $1 AND start_us < $2",
        )
        .bind(tag_id)
        .bind(before_us)
        .fetch_all(&mut *tx)
        .await
        .map_err(history_error("reading old history"))?;
        for row in &straddling {
            let c = stored_any(row, &what)?;
            let keep: Vec<Point> = c
                .points(&what)?
                .into_iter()
                .filter(|p| p.at_us >= before_us)
                .collect();
            deleted += c.n - keep.len() as i64;
            sqlx::query("DELETE FROM history_chunks WHERE tag_id = $1 AND start_us = $2")
                .bind(tag_id)
                .bind(c.start_us)
                .execute(&mut *tx)
                .await
                .map_err(history_error("deleting old history"))?;
            for k in chunk::split(tag_id, &keep, CHUNK_MAX) {
                sqlx::query(
                    "INSERT INTO history_chunks (tag_id, start_us, end_us, n, valued, lo, hi, total, worst, data) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(k.tag_id)
                .bind(k.start_us)
                .bind(k.end_us)
                .bind(k.n)
                .bind(k.valued)
                .bind(k.lo)
                .bind(k.hi)
                .bind(k.total)
                .bind(k.worst)
                .bind(k.data)
                .execute(&mut *tx)
                .await
                .map_err(history_error("rewriting history after retention"))?;
            }
        }
        tx.commit()
            .await
            .map_err(history_error("committing history retention"))?;
        Ok(u64::try_from(deleted).unwrap_or_default())
    }

    /// A tag's chunks overlapping `[from_us, to_us)` in time order, at most
    /// `page`, starting after `after` (a chunk start) when given.
    async fn chunks_in(
        &self,
        tag_id: i64,
        from_us: i64,
        to_us: i64,
        after: Option<i64>,
        page: i64,
    ) -> Result<Vec<Stored>, StoreError> {
        let what = TagRef(tag_id);
        let rows = match after {
            None => sqlx::query(
                "SELECT start_us, end_us, CAST(n AS BIGINT) AS n, lo, CAST(worst AS BIGINT) AS worst, data \
                 FROM history_chunks WHERE tag_id = $1 AND start_us < $3 AND end_us >= $2 AND start_us >= COALESCE(\
                 (SELECT MAX(start_us) FROM history_chunks WHERE tag_id = $1 AND start_us <= $2), $2) \
                 ORDER BY start_us LIMIT $4",
            )
            .bind(tag_id)
            .bind(from_us)
            .bind(to_us)
            .bind(page),
            Some(after) => sqlx::query(
                "SELECT start_us, end_us, CAST(n AS BIGINT) AS n, lo, CAST(worst AS BIGINT) AS worst, data \
                 FROM history_chunks WHERE tag_id = $1 AND start_us > $2 AND start_us < $3 \
                 ORDER BY start_us LIMIT $4",
            )
            .bind(tag_id)
            .bind(after)
            .bind(to_us)
            .bind(page),
        }
        .fetch_all(self.pool())
        .await
        .map_err(history_error(format!("reading history chunks of {what}")))?;
        rows.iter().map(|r| stored_any(r, &what)).collect()
    }
}

/// Plans a batch's write from the tags' tails: `tails` holds those known
/// (cached, or read just now); a tag without one has no chunks yet. Tags
/// whose samples reach into stored time are listed for a rewrite instead.
fn plan_appends(groups: &[Group], mut tails: HashMap<i64, Tail>) -> (Plan, Vec<usize>) {
    let mut plan = Plan::default();
    let mut rewrites = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        match tails.remove(&g.tag_id) {
            Some(t) if g.first_us() <= t.end_us => rewrites.push(i),
            t => plan.append(g, t),
        }
    }
    (plan, rewrites)
}

/// The ids of the groups' tags not in `tails`.
fn missing_ids(groups: &[Group], tails: &HashMap<i64, Tail>) -> Vec<i64> {
    groups
        .iter()
        .map(|g| g.tag_id)
        .filter(|id| !tails.contains_key(id))
        .collect()
}

/// Plans the write of a batch on SQLite, in its transaction.
async fn plan_sqlite(
    state: &HistoryState,
    tx: &mut AnyConnection,
    groups: &[Group],
) -> Result<(Plan, i64), StoreError> {
    let row = sqlx::query(NEXT_GENERATION_SQL)
        .fetch_one(&mut *tx)
        .await
        .map_err(history_error("counting history writes"))?;
    let generation: i64 = get(&row, "generation", &"history_meta")?;
    let mut tails = state.take_tails(generation, groups);
    let missing = missing_ids(groups, &tails);
    if !missing.is_empty() {
        let ids: Vec<String> = missing.iter().map(i64::to_string).collect();
        let rows = sqlx::query(
            "SELECT c.tag_id AS tag_id, c.start_us AS start_us, c.end_us AS end_us, c.n AS n, \
             c.lo AS lo, c.worst AS worst, CASE WHEN c.n < $2 THEN c.data END AS data \
             FROM json_each($1) AS j JOIN history_chunks AS c ON c.tag_id = j.value AND c.start_us = \
             (SELECT MAX(m.start_us) FROM history_chunks AS m WHERE m.tag_id = j.value)",
        )
        .bind(format!("[{}]", ids.join(",")))
        .bind(CHUNK_TARGET as i64)
        .fetch_all(&mut *tx)
        .await
        .map_err(history_error("reading the last history chunks"))?;
        for row in &rows {
            let tag_id: i64 = get(row, "tag_id", &"history_chunks")?;
            let tail = tail_of_stored(tag_id, &stored_any(row, &TagRef(tag_id))?)?;
            tails.insert(tag_id, tail);
        }
    }
    let (mut plan, rewrites) = plan_appends(groups, tails);
    for i in rewrites {
        let Some(g) = groups.get(i) else { continue };
        let rows = sqlx::query(OVERLAPPING_SQL)
            .bind(g.tag_id)
            .bind(g.first_us())
            .bind(g.last_us())
            .fetch_all(&mut *tx)
            .await
            .map_err(history_error("reading overlapping history chunks"))?;
        let overlapping = rows
            .iter()
            .map(|r| stored_any(r, &TagRef(g.tag_id)))
            .collect::<Result<Vec<_>, _>>()?;
        plan.rewrite(g, &overlapping)?;
    }
    Ok((plan, generation))
}

/// Plans the write of a batch on PostgreSQL, in its transaction.
async fn plan_postgres(
    state: &HistoryState,
    tx: &mut PgConnection,
    groups: &[Group],
) -> Result<(Plan, i64), StoreError> {
    let row = sqlx::query(NEXT_GENERATION_SQL)
        .fetch_one(&mut *tx)
        .await
        .map_err(history_error("counting history writes"))?;
    let generation: i64 = row
        .try_get("generation")
        .map_err(|e| StoreError::Corrupt(format!("history_meta: generation: {e}")))?;
    let mut tails = state.take_tails(generation, groups);
    let missing = missing_ids(groups, &tails);
    if !missing.is_empty() {
        let rows = sqlx::query(
            "SELECT c.tag_id::bigint AS tag_id, c.start_us, c.end_us, c.n::bigint AS n, c.lo, \
             c.worst::bigint AS worst, CASE WHEN c.n < $2 THEN c.data END AS data \
             FROM UNNEST($1::int[]) AS t(id) CROSS JOIN LATERAL \
             (SELECT * FROM history_chunks WHERE tag_id = t.id ORDER BY start_us DESC LIMIT 1) AS c",
        )
        .bind(missing.iter().map(|&id| id as i32).collect::<Vec<i32>>())
        .bind(CHUNK_TARGET as i32)
        .fetch_all(&mut *tx)
        .await
        .map_err(history_error("reading the last history chunks"))?;
        for row in &rows {
            let tag_id: i64 = row
                .try_get("tag_id")
                .map_err(|e| StoreError::Corrupt(format!("history_chunks: tag_id: {e}")))?;
            let tail = tail_of_stored(tag_id, &stored_pg(row, &TagRef(tag_id))?)?;
            tails.insert(tag_id, tail);
        }
    }
    let (mut plan, rewrites) = plan_appends(groups, tails);
    for i in rewrites {
        let Some(g) = groups.get(i) else { continue };
        let rows = sqlx::query(
            "SELECT start_us, end_us, n::bigint AS n, lo, worst::bigint AS worst, data \
             FROM history_chunks WHERE tag_id = $1 AND start_us <= $3 AND end_us >= $2 \
             AND start_us >= COALESCE((SELECT MAX(start_us) FROM history_chunks \
             WHERE tag_id = $1 AND start_us <= $2), $2) ORDER BY start_us",
        )
        .bind(g.tag_id as i32)
        .bind(g.first_us())
        .bind(g.last_us())
        .fetch_all(&mut *tx)
        .await
        .map_err(history_error("reading overlapping history chunks"))?;
        let overlapping = rows
            .iter()
            .map(|r| stored_pg(r, &TagRef(g.tag_id)))
            .collect::<Result<Vec<_>, _>>()?;
        plan.rewrite(g, &overlapping)?;
    }
    Ok((plan, generation))
}

fn quality_of(code: i64, what: &dyn fmt::Display) -> Result<SampleQuality, StoreError> {
    i16::try_from(code)
        .ok()
        .and_then(SampleQuality::from_code)
        .ok_or_else(|| StoreError::Corrupt(format!("{what}: quality code {code} is unknown")))
}

/// A bucket's running statistics.
#[derive(Debug, Clone, Copy)]
struct Acc {
    lo: Option<f64>,
    hi: Option<f64>,
    total: f64,
    valued: i64,
    n: i64,
    worst: i64,
}

impl Acc {
    const EMPTY: Acc = Acc {
        lo: None,
        hi: None,
        total: 0.0,
        valued: 0,
        n: 0,
        worst: 0,
    };

    fn add_point(&mut self, p: &Point) {
        self.n += 1;
        self.worst = self.worst.max(i64::from(p.quality));
        if let Some(v) = p.value {
            self.add_values(v, v, v, 1);
        }
    }

    fn add_values(&mut self, lo: f64, hi: f64, total: f64, valued: i64) {
        self.lo = Some(self.lo.map_or(lo, |m| m.min(lo)));
        self.hi = Some(self.hi.map_or(hi, |m| m.max(hi)));
        self.total += total;
        self.valued += valued;
    }
}

#[async_trait]
impl HistoryStore for Db {
    #[tracing::instrument(skip_all, fields(samples = samples.len()))]
    async fn append_samples(&self, samples: &[Sample]) -> Result<u64, StoreError> {
        if samples.is_empty() {
            return Ok(0);
        }
        let mut names: Vec<&TagName> = samples.iter().map(Sample::tag).collect();
        names.sort_unstable();
        names.dedup();
        let ids = self.tag_ids(&names).await?;
        let mut rows = Vec::with_capacity(samples.len());
        for s in samples {
            let tag_id = *ids.get(s.tag()).ok_or_else(|| {
                StoreError::Internal(format!("history tag {} has no id after interning", s.tag()))
            })?;
            rows.push((
                tag_id,
                Point {
                    at_us: micros(s.at()),
                    value: s.value(),
                    quality: s.quality().code(),
                },
            ));
        }
        let groups = groups_of(rows);
        match &self.history_state().pg {
            Some(pg) => self.append_postgres(pg, &groups).await,
            None => self.append_sqlite(&groups).await,
        }
    }

    #[tracing::instrument(skip(self), fields(tag = %tag))]
    async fn samples(
        &self,
        tag: &TagName,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Sample>, StoreError> {
        let Some(id) = self.known_tag_id(tag).await? else {
            return Ok(Vec::new());
        };
        let (from_us, to_us) = (micros(from), micros(to));
        let limit = limit as usize;
        let what = format!("history sample of {tag}");
        let mut out = Vec::new();
        let mut after = None;
        while out.len() < limit {
            let page = self.chunks_in(id, from_us, to_us, after, 64).await?;
            let Some(last) = page.last() else {
                break;
            };
            after = Some(last.start_us);
            for c in &page {
                for p in c.points(&what)? {
                    if p.at_us >= from_us && p.at_us < to_us && out.len() < limit {
                        let at = time_from_micros(p.at_us, &what)?;
                        let q = quality_of(i64::from(p.quality), &what)?;
                        out.push(Sample::new(tag.clone(), at, p.value, q));
                    }
                }
            }
        }
        Ok(out)
    }

    #[tracing::instrument(skip(self), fields(tag = %tag))]
    async fn downsample(
        &self,
        tag: &TagName,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        buckets: u32,
    ) -> Result<Vec<Bucket>, StoreError> {
        let Some(width) = bucket_width_us(from, to, buckets) else {
            return Ok(Vec::new());
        };
        let Some(id) = self.known_tag_id(tag).await? else {
            return Ok(Vec::new());
        };
        let (from_us, to_us) = (micros(from), micros(to));
        let what = format!("history bucket of {tag}");
        // Chunks wholly inside one bucket: their summaries, added up here.
        let inside = sqlx::query(
            "SELECT (start_us - $2) / $4 AS bucket, MIN(lo) AS lo, MAX(hi) AS hi, SUM(total) AS total, \
             CAST(SUM(valued) AS BIGINT) AS valued, CAST(SUM(n) AS BIGINT) AS n, \
             CAST(MAX(worst) AS BIGINT) AS worst FROM history_chunks \
             WHERE tag_id = $1 AND start_us >= $2 AND start_us < $3 AND end_us < $3 \
             AND (start_us - $2) / $4 = (end_us - $2) / $4 GROUP BY bucket",
        )
        .bind(id)
        .bind(from_us)
        .bind(to_us)
        .bind(width)
        .fetch_all(self.pool())
        .await
        .map_err(history_error(format!("downsampling history of {tag}")))?;
        let mut acc: BTreeMap<i64, Acc> = BTreeMap::new();
        for row in &inside {
            let bucket: i64 = get(row, "bucket", &what)?;
            let a = acc.entry(bucket).or_insert(Acc::EMPTY);
            a.n += get::<i64>(row, "n", &what)?;
            a.worst = a.worst.max(get(row, "worst", &what)?);
            let valued: Option<i64> = get(row, "valued", &what)?;
            let lo: Option<f64> = get(row, "lo", &what)?;
            let hi: Option<f64> = get(row, "hi", &what)?;
            let total: Option<f64> = get(row, "total", &what)?;
            if let (Some(lo), Some(hi), Some(total), Some(valued)) = (lo, hi, total, valued) {
                a.add_values(lo, hi, total, valued);
            }
        }
        // Chunks across a bucket edge or the range's ends: decoded.
        let edges = sqlx::query(
            "SELECT start_us, end_us, CAST(n AS BIGINT) AS n, lo, CAST(worst AS BIGINT) AS worst, data \
             FROM history_chunks WHERE tag_id = $1 AND start_us < $3 AND end_us >= $2 \
             AND start_us >= COALESCE((SELECT MAX(start_us) FROM history_chunks \
             WHERE tag_id = $1 AND start_us <= $2), $2) \
             AND NOT (start_us >= $2 AND end_us < $3 AND (start_us - $2) / $4 = (end_us - $2) / $4)",
        )
        .bind(id)
        .bind(from_us)
        .bind(to_us)
        .bind(width)
        .fetch_all(self.pool())
        .await
        .map_err(history_error(format!("downsampling history of {tag}")))?;
        for row in &edges {
            let c = stored_any(row, &what)?;
            for p in c.points(&what)? {
                if p.at_us >= from_us && p.at_us < to_us {
                    acc.entry((p.at_us - from_us) / width)
                        .or_insert(Acc::EMPTY)
                        .add_point(&p);
                }
            }
        }
        acc.into_iter()
            .map(|(i, a)| {
                let start = from_us + i * width;
                Ok(Bucket {
                    start: time_from_micros(start, &what)?,
                    end: time_from_micros((start + width).min(to_us), &what)?,
                    min: a.lo,
                    max: a.hi,
                    mean: (a.valued > 0).then(|| a.total / a.valued as f64),
                    count: u64::try_from(a.n).unwrap_or_default(),
                    worst: quality_of(a.worst, &what)?,
                })
            })
            .collect()
    }

    #[tracing::instrument(skip(self), fields(tag = %tag))]
    async fn delete_samples_before(
        &self,
        tag: &TagName,
        before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let Some(id) = self.known_tag_id(tag).await? else {
            return Ok(0);
        };
        self.delete_before(id, micros(before)).await
    }

    #[tracing::instrument(skip(self))]
    async fn history_tags(&self) -> Result<Vec<TagName>, StoreError> {
        let rows = sqlx::query("SELECT name FROM history_tags ORDER BY name")
            .fetch_all(self.pool())
            .await
            .map_err(history_error("listing history tags"))?;
        rows.iter()
            .map(|row| {
                let name: String = get(row, "name", &"history_tags")?;
                TagName::parse(&name).map_err(|e| StoreError::Corrupt(format!("history_tags: {e}")))
            })
            .collect()
    }
}
