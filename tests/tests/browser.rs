//! The HMI in a real browser: `remine demo` on loopback, driven from
//! Debian's Chromium by the playwright-core scenarios of tests/browser/
//! (log in, see values change, time live values from a simulator change to
//! the DOM, acknowledge an alarm raised by a simulator fault, a one-year
//! trend, edit and submit a recipe as engineer and approve it as
//! supervisor, 20 pages against the plant scan, trace a product lot, the
//! recovery page). Every screen is saved as a PNG under
//! target/browser-artifacts/, and checked here: a non-empty PNG of the
//! viewport's size, from a page that showed live data.
//!
//! Without chromium or node this says SKIP loudly and passes, unless
//! REMINE_REQUIRE_BROWSER=1 (CI), where it fails.

#![allow(clippy::unwrap_used)]

use chrono::{Duration as Days, Utc};
use remine_domain::ports::HistoryStore;
use remine_domain::{Sample, SampleQuality, TagName};
use remine_system_tests::{password_of, start_demo};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The tag given a year of history for the one-year trend.
const TREND_TAG: &str = "Hydromet/Leach/Temperature";
/// One sample every this many seconds over the seeded year.
const SEED_PERIOD_S: i64 = 10;

fn workspace() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn skip_or_fail(why: &str) {
    let msg = format!("SKIP: {why}; the HMI browser tests were not run");
    assert!(
        std::env::var("REMINE_REQUIRE_BROWSER").ok().as_deref() != Some("1"),
        "{msg}, but REMINE_REQUIRE_BROWSER=1"
    );
    eprintln!("{msg}");
    println!("{msg}");
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.exists())
    })
}

/// Node with playwright-core installed in tests/browser (npm ci when the
/// modules are missing: scripts/test has normally done it).
fn playwright_ready(dir: &Path) -> Result<PathBuf, String> {
    let node = on_path("node").ok_or("no node on PATH (apt-get install nodejs npm)")?;
    if !dir.join("node_modules/playwright-core").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .status()
            .map_err(|e| format!("npm ci in {}: {e}", dir.display()))?;
        if !status.success() {
            return Err(format!("npm ci in {} failed: {status}", dir.display()));
        }
    }
    Ok(node)
}

/// A year of a 10 s tag, up to an hour ago, written into the database the
/// demo will run on (the demo records the live values after it).
async fn seed_year(url: &str) -> usize {
    let db = remine_store::Db::open(url)
        .await
        .expect("open seed database");
    let tag = TagName::parse(TREND_TAG).unwrap();
    let end = Utc::now() - Days::hours(1);
    let start = end - Days::days(365);
    let n = (365 * 86_400 / SEED_PERIOD_S) as usize;
    let mut batch = Vec::with_capacity(50_000);
    for i in 0..n {
        let at = start + Days::seconds(i as i64 * SEED_PERIOD_S);
        let day = i as f64 * SEED_PERIOD_S as f64 / 86_400.0;
        let value = 75.0 + 2.0 * (day * std::f64::consts::TAU).sin() + 4.0 * (day / 58.0).sin();
        batch.push(Sample::new(
            tag.clone(),
            at,
            Some(value),
            SampleQuality::Good,
        ));
        if batch.len() == 50_000 || i + 1 == n {
            db.append_samples(&batch).await.expect("seed history");
            batch.clear();
        }
    }
    db.close().await;
    n
}

fn png_size(path: &Path) -> Result<(u32, u32), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() < 1000 || &bytes[..8] != b"\x89PNG\r\n\x1a\n" || &bytes[12..16] != b"IHDR" {
        return Err(format!(
            "{} is not a PNG with content ({} bytes)",
            path.display(),
            bytes.len()
        ));
    }
    let be = |k: usize| u32::from_be_bytes([bytes[k], bytes[k + 1], bytes[k + 2], bytes[k + 3]]);
    Ok((be(16), be(20)))
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let k = ((values.len() as f64 - 1.0) * p).round() as usize;
    values[k]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hmi_works_in_a_real_browser_with_live_data() {
    let Some(chromium) = on_path("chromium") else {
        skip_or_fail("no chromium on PATH (apt-get install chromium)");
        return;
    };
    let scenarios = workspace().join("tests/browser");
    let node = match playwright_ready(&scenarios) {
        Ok(n) => n,
        Err(why) => {
            skip_or_fail(&why);
            return;
        }
    };
    let artifacts = workspace().join("target/browser-artifacts");
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts).unwrap();

    let data = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", data.path().join("hmi.db").display());
    let seeded_at = Instant::now();
    let seeded = seed_year(&url).await;
    eprintln!(
        "seeded {seeded} samples of {TREND_TAG} in {:?}",
        seeded_at.elapsed()
    );

    let (demo, listen) = start_demo(data.path(), &["--db", &url], "900s");
    let lines = demo.output();
    let mut run = Command::new(node);
    run.arg("run.mjs")
        .current_dir(&scenarios)
        .env("REMINE_URL", format!("http://{listen}"))
        .env("REMINE_ARTIFACTS", &artifacts)
        .env("REMINE_CHROMIUM", &chromium)
        .env("REMINE_TREND_TAG", TREND_TAG);
    for user in ["operator", "engineer", "supervisor"] {
        run.env(
            format!("REMINE_PW_{}", user.to_uppercase()),
            password_of(&lines, user),
        );
    }
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || run.status())
        .await
        .unwrap()
        .expect("node runs");
    eprintln!("browser scenarios took {:?}", started.elapsed());
    let results: Value = serde_json::from_str(
        &std::fs::read_to_string(artifacts.join("results.json")).expect("results.json written"),
    )
    .expect("results.json is JSON");
    assert!(
        status.success() && results["ok"] == true,
        "the browser scenarios failed at {}: {}",
        results["failedStep"],
        results["error"]
    );

    // Every screen: a PNG of the viewport's size.
    let shots = results["screenshots"].as_array().unwrap();
    assert!(shots.len() >= 20, "too few screenshots: {}", shots.len());
    for s in shots {
        let (w, h) = png_size(Path::new(s["file"].as_str().unwrap())).unwrap();
        assert_eq!(
            (w, h),
            (
                s["width"].as_u64().unwrap() as u32,
                s["height"].as_u64().unwrap() as u32
            ),
            "{}",
            s["name"]
        );
    }
    // Live data: the mimic changed at the start and at the end.
    assert!(results["valuesChanged"].as_u64().unwrap() >= 3, "{results}");
    assert!(
        results["valuesChangedAtEnd"].as_u64().unwrap() >= 1,
        "{results}"
    );

    // The quality figures of issue 9, printed for BENCHMARKS.md. The
    // targets (250 ms, 1 s, 1 s, no slower scan) hold on a quiet machine;
    // the test suite shares two cores with this test, so what is asserted
    // here are bounds that only a real defect breaks.
    let mut latency: Vec<f64> = results["latencyMs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let median = percentile(&mut latency, 0.5);
    let p95 = percentile(&mut latency, 0.95);
    eprintln!(
        "FIGURE live value to DOM: median {median:.0} ms, p95 {p95:.0} ms (n={}; target p95 < 250 ms)",
        latency.len()
    );
    assert!(p95 < 1000.0, "live latency p95 {p95} ms: {latency:?}");

    for (page, ms) in results["pageLoadsMs"].as_object().unwrap() {
        let ms = ms.as_f64().unwrap();
        eprintln!("FIGURE page load {page}: {ms:.0} ms (target < 1000 ms)");
        assert!(ms < 5000.0, "{page} took {ms} ms to load");
    }

    let trend = &results["yearTrend"];
    let ms = trend["ms"].as_f64().unwrap();
    let runs: Vec<String> = results["yearTrendRuns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{:.0}", r["ms"].as_f64().unwrap_or(f64::NAN)))
        .collect();
    assert_eq!(runs.len(), 5, "{results}");
    let mut bare: Vec<f64> = results["yearTrendBareMs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let bare = percentile(&mut bare, 0.5);
    eprintln!(
        "FIGURE one-year trend anchor: the same GET /history from outside the page, median {bare:.0} ms (page/anchor {:.2})",
        ms / bare
    );
    eprintln!(
        "FIGURE one-year trend: median {ms:.0} ms in the page (runs {}), {} ms from the click, {} buckets (target < 1000 ms)",
        runs.join(", "),
        trend["wallMs"],
        trend["buckets"]
    );
    assert!(trend["buckets"].as_u64().unwrap() > 100, "{trend}");
    assert!(ms < 5000.0, "the one-year trend took {ms} ms");

    let scan = &results["scan"];
    eprintln!("FIGURE scan with 0 and 20 pages: {scan}");
    for (device, idle) in scan["idle"].as_object().unwrap() {
        let loaded = &scan["loaded"][device];
        let (a, b) = (
            idle["requestsPerS"].as_f64().unwrap(),
            loaded["requestsPerS"].as_f64().unwrap(),
        );
        // The polled links (Modbus); OPC UA publishes only on change.
        if a < 10.0 {
            continue;
        }
        eprintln!(
            "FIGURE scan {device}: {a:.1} requests/s idle, {b:.1} with 20 pages (ratio {:.2})",
            b / a
        );
        assert!(
            b >= 0.5 * a,
            "{device}: {b:.1} requests/s with 20 pages against {a:.1} without"
        );
    }

    // Eight tabs of one browser share one stream: every one stays live.
    eprintln!(
        "FIGURE eight tabs of one browser live: {} (in {} ms)",
        results["tabsLive"], results["tabsMs"]
    );
    assert_eq!(results["tabsLive"], 8, "{results}");

    // WCAG AA contrast of the HTML text on the screens checked.
    let contrast = results["contrast"].as_object().unwrap();
    let checked: u64 = contrast
        .values()
        .map(|c| c["checked"].as_u64().unwrap())
        .sum();
    eprintln!(
        "FIGURE contrast: {checked} texts on {} screens checked",
        contrast.len()
    );
    assert!(contrast.len() >= 9 && checked > 200, "{results}");
    for (screen, c) in contrast {
        assert_eq!(
            c["failures"],
            serde_json::json!([]),
            "{screen}: text below WCAG AA contrast"
        );
    }
    // Keyboard: from the top, Tab reaches the skip link first.
    let trail = results["keyboardFocusTrail"].as_array().unwrap();
    assert!(
        trail[0].as_str().unwrap().contains("Skip"),
        "the first Tab stop is not the skip link: {trail:?}"
    );
    // 1024 px wide: nothing scrolls sideways.
    assert!(
        results["narrowOverflow"].as_i64().unwrap() <= 0,
        "the page is wider than 1024 px by {}",
        results["narrowOverflow"]
    );

    // Recovery by chemistry: the demo's units name their chemistries.
    let chemistries = results["recoveryChemistries"].as_array().unwrap();
    assert!(!chemistries.is_empty(), "{results}");
    assert!(
        results["recoveryCohorts"].as_u64().unwrap() >= 1,
        "{results}"
    );

    // The scenarios' own checks, restated.
    assert!(results["traceSources"].as_u64().unwrap() >= 1, "{results}");
    assert!(
        results["genealogyNodes"].as_u64().unwrap() >= 2,
        "{results}"
    );
    assert!(
        results["passportSearch"].as_u64().unwrap() >= 1,
        "{results}"
    );
    // The delivery panel shows the deliveries, or says they are not available.
    let deliveries = results["deliveries"].as_str().unwrap();
    assert!(
        deliveries.contains("not available") || deliveries.contains("deliver"),
        "{deliveries}"
    );
    assert_eq!(results["loggedOut"], true);
    assert_eq!(
        demo.interrupt(Duration::from_secs(30)),
        Some(0),
        "the demo did not stop cleanly"
    );
}
