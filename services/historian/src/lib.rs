//! The historian: every tag's values with time and quality, kept by policy,
//! written in batches, and never lost while the database is away.
//!
//! Readings come in through [`Historian::record`] (or a [`spawn_poller`]
//! that reads a [`TagIo`] at a period, as the HMI's live values do). A
//! [`Recorder`] keeps what each tag's [`HistoryPolicy`] asks for (deadband,
//! maximum interval, every quality change); the kept samples are batched
//! (by size or time) and written through the [`HistoryStore`] port. This
//! crate writes no SQL.
//!
//! When a write fails, the batch goes to a spool on local disk (append-only
//! segment files, one checksummed record per batch, fsynced; see
//! [`spool`](crate) in the source) and every later batch follows it there,
//! so the order is kept. A drainer retries with capped exponential backoff
//! and, once the database answers, writes the spooled batches oldest first,
//! deleting a segment only after all of it is stored. The store's append is
//! idempotent on (tag, time), so a batch replayed after a crash between the
//! write and the delete does no harm. A damaged record (bad checksum, a torn
//! write at the end of a file) is reported in the stats and the log and
//! skipped. A retention job deletes each tag's samples older than its
//! policy's retention.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn remine_domain::ports::HistoryStore>) -> Result<(), remine_historian::HistorianError> {
//! use remine_historian::{Historian, HistorianConfig};
//! let historian = Historian::start(store, "/var/lib/remine/spool".as_ref(), HistorianConfig::default())?;
//! // historian.record(&readings).await;
//! historian.flush().await;
//! println!("{:?}", historian.stats());
//! # Ok(()) }
//! ```

mod spool;

use chrono::Utc;
use remine_domain::ports::{HistoryStore, TagIo};
use remine_domain::{HistoryPolicy, Recorder, Sample, TagName, TagReading};
use spool::Spool;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;

/// Why the historian could not start or spool.
#[derive(Debug, thiserror::Error)]
pub enum HistorianError {
    #[error("spool {path}: {source}")]
    Spool {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How the historian batches and retries; the per-tag policies.
#[derive(Debug, Clone)]
pub struct HistorianConfig {
    /// The policy of every tag not listed in `policies`.
    pub default_policy: HistoryPolicy,
    pub policies: HashMap<TagName, HistoryPolicy>,
    /// A batch is written when it holds this many samples...
    pub batch_size: usize,
    /// ...or when its oldest sample has waited this long.
    pub batch_interval: Duration,
    /// The first retry after a failed write; doubles up to `retry_max`.
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// The longest one write to the store may take; a write that takes
    /// longer counts as failed (its batch is spooled; a late success is
    /// harmless, the store ignores the replay).
    pub write_timeout: Duration,
    /// How often the retention job runs (it also runs at start).
    pub retention_every: Duration,
}

impl Default for HistorianConfig {
    /// Every change kept, one sample a minute at least, a year of
    /// retention; batches of 100,000 samples or 500 ms; retries from 100 ms
    /// to 5 s; writes time out after 5 s; retention hourly.
    ///
    /// The store keeps each tag's samples in chunks, so a batch that holds
    /// several samples per tag is written with one chunk per tag instead of
    /// one row per sample: under a burst (a backlog, a fast poll) batches
    /// fill to the size limit and the store writes far fewer, larger rows.
    /// The interval bounds what a crash of the process can lose, as before.
    fn default() -> HistorianConfig {
        HistorianConfig {
            default_policy: HistoryPolicy::default(),
            policies: HashMap::new(),
            batch_size: 100_000,
            batch_interval: Duration::from_millis(500),
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
            retention_every: Duration::from_secs(3600),
        }
    }
}

/// What the historian has done since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistorianStats {
    /// Readings offered.
    pub received: u64,
    /// Samples the policies kept.
    pub kept: u64,
    /// Samples the store took (new rows; replays of stored ones not counted).
    pub written: u64,
    /// Samples put into the spool.
    pub spooled: u64,
    /// Bytes waiting in the spool.
    pub spool_bytes: u64,
    /// Spool records skipped as damaged.
    pub damaged_records: u64,
    /// Batches the store refused, directly or from the spool.
    pub failed_writes: u64,
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    kept: AtomicU64,
    written: AtomicU64,
    spooled: AtomicU64,
    spool_bytes: AtomicU64,
    damaged: AtomicU64,
    failed: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Counters {
    fn error(&self, e: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    }
}

enum Msg {
    Samples(Vec<Sample>),
    Flush(oneshot::Sender<()>),
}

struct Shared {
    recorder: Mutex<Recorder>,
    store: Arc<dyn HistoryStore>,
    spool: Mutex<Spool>,
    counters: Counters,
    /// Wakes the drainer: something was spooled.
    spooled: Notify,
    /// Wakes waiters of [`Historian::wait_drained`].
    drained: Notify,
    /// Segments whose damage was counted already (a retry reads them again).
    damage_reported: Mutex<std::collections::HashSet<PathBuf>>,
    config: HistorianConfig,
}

/// The running historian. Cloning is cheap; the tasks stop when every
/// handle is dropped (what is still spooled stays on disk for next time).
#[derive(Clone)]
pub struct Historian {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Msg>,
}

impl std::fmt::Debug for Historian {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Historian")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Historian {
    /// Opens the spool in `spool_dir` (creating it; batches left there by an
    /// earlier run are written first) and starts the batching, draining and
    /// retention tasks. Needs a tokio runtime.
    pub fn start(
        store: Arc<dyn HistoryStore>,
        spool_dir: &Path,
        config: HistorianConfig,
    ) -> Result<Historian, HistorianError> {
        let spool = Spool::open(spool_dir)?;
        let counters = Counters::default();
        counters.spool_bytes.store(spool.bytes(), Ordering::Relaxed);
        let pending = !spool.is_empty();
        let shared = Arc::new(Shared {
            recorder: Mutex::new(Recorder::new(
                config.default_policy,
                config.policies.clone(),
            )),
            store,
            spool: Mutex::new(spool),
            counters,
            spooled: Notify::new(),
            drained: Notify::new(),
            damage_reported: Mutex::default(),
            config,
        });
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(batcher(Arc::clone(&shared), rx));
        let weak = Arc::downgrade(&shared);
        tokio::spawn(drainer(weak.clone()));
        tokio::spawn(retention(weak));
        if pending {
            shared.spooled.notify_one();
        }
        Ok(Historian { shared, tx })
    }

    /// Offers readings; the kept samples are queued for the next batch.
    /// Waits only when the queue is full (the writer is far behind).
    pub async fn record(&self, readings: &[TagReading]) {
        let kept: Vec<Sample> = {
            let mut r = self.lock_recorder();
            readings.iter().filter_map(|x| r.offer(x)).collect()
        };
        self.queue(readings.len(), kept).await;
    }

    /// [`Historian::record`] for samples already built (imports, tests).
    pub async fn record_samples(&self, samples: Vec<Sample>) {
        let n = samples.len();
        let kept: Vec<Sample> = {
            let mut r = self.lock_recorder();
            samples
                .into_iter()
                .filter_map(|s| r.offer_sample(s))
                .collect()
        };
        self.queue(n, kept).await;
    }

    fn lock_recorder(&self) -> std::sync::MutexGuard<'_, Recorder> {
        self.shared
            .recorder
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    async fn queue(&self, received: usize, kept: Vec<Sample>) {
        let c = &self.shared.counters;
        c.received.fetch_add(received as u64, Ordering::Relaxed);
        c.kept.fetch_add(kept.len() as u64, Ordering::Relaxed);
        if !kept.is_empty() && self.tx.send(Msg::Samples(kept)).await.is_err() {
            tracing::error!("the historian's batcher has stopped; samples dropped");
        }
    }

    /// Writes (or spools) the batch being gathered now, and returns when it
    /// is stored or spooled.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Waits until the spool is empty (everything written), at most
    /// `timeout`; tells whether it is.
    pub async fn wait_drained(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let waiting = self.shared.drained.notified();
            if self.spool_is_empty() {
                return true;
            }
            if tokio::time::timeout_at(deadline, waiting).await.is_err() {
                return self.spool_is_empty();
            }
        }
    }

    fn spool_is_empty(&self) -> bool {
        self.shared
            .spool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// Deletes, for every stored tag, the samples older than its policy's
    /// retention; returns how many were deleted.
    pub async fn run_retention(&self) -> Result<u64, remine_domain::ports::StoreError> {
        run_retention(&self.shared).await
    }

    pub fn stats(&self) -> HistorianStats {
        let c = &self.shared.counters;
        HistorianStats {
            received: c.received.load(Ordering::Relaxed),
            kept: c.kept.load(Ordering::Relaxed),
            written: c.written.load(Ordering::Relaxed),
            spooled: c.spooled.load(Ordering::Relaxed),
            spool_bytes: c.spool_bytes.load(Ordering::Relaxed),
            damaged_records: c.damaged.load(Ordering::Relaxed),
            failed_writes: c.failed.load(Ordering::Relaxed),
            last_error: c
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}

/// Gathers samples into batches and writes each, or spools it when the
/// store fails or older batches are spooled still.
async fn batcher(shared: Arc<Shared>, mut rx: mpsc::Receiver<Msg>) {
    let size = shared.config.batch_size.max(1);
    let mut batch: Vec<Sample> = Vec::with_capacity(size);
    let mut deadline: Option<Instant> = None;
    loop {
        let msg = match deadline {
            Some(d) => match tokio::time::timeout_at(d, rx.recv()).await {
                Ok(m) => m,
                Err(_) => {
                    write_or_spool(&shared, std::mem::take(&mut batch)).await;
                    deadline = None;
                    continue;
                }
            },
            None => rx.recv().await,
        };
        match msg {
            Some(Msg::Samples(samples)) => {
                if batch.is_empty() {
                    deadline = Some(Instant::now() + shared.config.batch_interval);
                }
                batch.extend(samples);
                if batch.len() >= size {
                    write_or_spool(&shared, std::mem::take(&mut batch)).await;
                    deadline = None;
                }
            }
            Some(Msg::Flush(done)) => {
                write_or_spool(&shared, std::mem::take(&mut batch)).await;
                deadline = None;
                let _ = done.send(());
            }
            None => {
                write_or_spool(&shared, std::mem::take(&mut batch)).await;
                return;
            }
        }
    }
}

/// One write to the store, bounded by the configured timeout.
async fn write(shared: &Shared, batch: &[Sample]) -> Result<u64, String> {
    let limit = shared.config.write_timeout;
    match tokio::time::timeout(limit, shared.store.append_samples(batch)).await {
        Ok(Ok(n)) => Ok(n),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("history write timed out after {limit:?}")),
    }
}

#[tracing::instrument(skip_all, fields(samples = batch.len()))]
async fn write_or_spool(shared: &Arc<Shared>, batch: Vec<Sample>) {
    if batch.is_empty() {
        return;
    }
    let behind = !shared
        .spool
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .is_empty();
    if !behind {
        match write(shared, &batch).await {
            Ok(n) => {
                shared.counters.written.fetch_add(n, Ordering::Relaxed);
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "history write failed; spooling");
                shared.counters.error(e.to_string());
            }
        }
    }
    spool_batch(shared, &batch);
}

fn spool_batch(shared: &Shared, batch: &[Sample]) {
    let mut spool = shared.spool.lock().unwrap_or_else(|p| p.into_inner());
    match spool.append(batch) {
        Ok(_) => {
            let c = &shared.counters;
            c.spooled.fetch_add(batch.len() as u64, Ordering::Relaxed);
            c.spool_bytes.store(spool.bytes(), Ordering::Relaxed);
            shared.spooled.notify_one();
        }
        Err(e) => {
            // Nothing else can keep these samples: say so loudly.
            tracing::error!(error = %e, samples = batch.len(), "cannot spool history samples; they are lost");
            shared.counters.error(e.to_string());
        }
    }
}

/// Writes spooled batches, oldest first, retrying with capped backoff.
async fn drainer(weak: std::sync::Weak<Shared>) {
    let mut backoff: Option<Duration> = None;
    loop {
        let Some(shared) = weak.upgrade() else {
            return;
        };
        match drain_once(&shared).await {
            Ok(()) => {
                backoff = None;
                shared.drained.notify_waiters();
                // A batch spooled meanwhile left a permit, so this returns
                // at once; the timeout notices that every handle is gone.
                let _ =
                    tokio::time::timeout(Duration::from_secs(1), shared.spooled.notified()).await;
            }
            Err(()) => {
                let (min, max) = (shared.config.retry_min, shared.config.retry_max);
                let wait = backoff.map_or(min, |b| (b * 2).min(max));
                backoff = Some(wait);
                drop(shared);
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Drains the spool until it is empty (`Ok`) or the store fails (`Err`).
async fn drain_once(shared: &Arc<Shared>) -> Result<(), ()> {
    loop {
        let oldest = shared
            .spool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .oldest();
        let Some(path) = oldest else {
            return Ok(());
        };
        let segment = match tokio::task::spawn_blocking({
            let path = path.clone();
            move || spool::read_segment(&path)
        })
        .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                shared.counters.error(e.to_string());
                return Err(());
            }
            Err(e) => {
                shared
                    .counters
                    .error(format!("reading {}: {e}", path.display()));
                return Err(());
            }
        };
        let first_reading = shared
            .damage_reported
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(path.clone());
        for why in segment.damage.iter().filter(|_| first_reading) {
            tracing::error!(segment = %segment.path.display(), "damaged spool record: {why}");
            shared.counters.damaged.fetch_add(1, Ordering::Relaxed);
            shared.counters.error(why.clone());
        }
        for batch in &segment.batches {
            match write(shared, batch).await {
                Ok(n) => {
                    shared.counters.written.fetch_add(n, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "spooled history write failed; will retry");
                    shared.counters.error(e.to_string());
                    // The whole segment is replayed next time; the store
                    // ignores the samples already written.
                    return Err(());
                }
            }
        }
        let mut spool = shared.spool.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = spool.remove(&path) {
            shared.counters.error(e.to_string());
            return Err(());
        }
        shared
            .counters
            .spool_bytes
            .store(spool.bytes(), Ordering::Relaxed);
        tracing::info!(segment = %path.display(), bytes = segment.bytes, "spool segment written and removed");
    }
}

async fn retention(weak: std::sync::Weak<Shared>) {
    loop {
        let Some(shared) = weak.upgrade() else {
            return;
        };
        if let Err(e) = run_retention(&shared).await {
            tracing::warn!(error = %e, "history retention failed");
        }
        let every = shared.config.retention_every;
        drop(shared);
        tokio::time::sleep(every).await;
    }
}

#[tracing::instrument(skip_all)]
async fn run_retention(shared: &Shared) -> Result<u64, remine_domain::ports::StoreError> {
    let now = Utc::now();
    let mut deleted = 0;
    for tag in shared.store.history_tags().await? {
        let cutoff = {
            let r = shared.recorder.lock().unwrap_or_else(|p| p.into_inner());
            r.policy(&tag).retention_cutoff(now)
        };
        deleted += shared.store.delete_samples_before(&tag, cutoff).await?;
    }
    Ok(deleted)
}

/// Reads `tags` from `io` every `period` and records them; stops when the
/// returned handle is aborted or the historian's tasks are gone.
pub fn spawn_poller(
    historian: Historian,
    io: Arc<dyn TagIo>,
    tags: Vec<TagName>,
    period: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            let readings = io.read(&tags).await;
            historian.record(&readings).await;
            if historian.tx.is_closed() {
                return;
            }
        }
    })
}
