//! Helpers for the adapters' integration tests (cargo feature `test-support`).
//!
//! Adapters fill their cache in the background, so a test waits for a tag to
//! reach a state rather than reading once. Nothing here panics: the tests
//! decide how to fail, and what to print with the last reading.

use chrono::Utc;
use remine_domain::ports::TagIo;
use remine_domain::{BadReason, Quality, TagName, TagReading};
use std::time::{Duration, Instant};

/// How often [`wait_for`] reads the cache.
const POLL: Duration = Duration::from_millis(10);

/// Reads `tag` through `io` until `ok` holds and returns that reading; when
/// `within` runs out first, `Err` holds the last reading.
pub async fn wait_for<I: TagIo + ?Sized>(
    io: &I,
    tag: &TagName,
    within: Duration,
    ok: impl Fn(&TagReading) -> bool,
) -> Result<TagReading, TagReading> {
    let deadline = Instant::now() + within;
    loop {
        let r = read_one(io, tag).await;
        if ok(&r) {
            return Ok(r);
        }
        if Instant::now() > deadline {
            return Err(r);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The reading of one tag; a port that breaks its promise of one reading
/// per tag gives a bad one that says so.
async fn read_one<I: TagIo + ?Sized>(io: &I, tag: &TagName) -> TagReading {
    io.read(std::slice::from_ref(tag))
        .await
        .into_iter()
        .next()
        .unwrap_or_else(|| TagReading {
            tag: tag.clone(),
            value: None,
            quality: Quality::Bad(BadReason::ConfigurationError(
                "the adapter returned no reading".into(),
            )),
            source_time: None,
            server_time: Utc::now(),
        })
}
