//! `remine report recovery` from outside, on a generated plant year in a
//! SQLite database: JSON that validates against the published schema,
//! CSV with its header, a self-contained HTML page that headless Chromium
//! renders (the screenshot is checked: the rate table and its pass/fail
//! badges are drawn), and clear refusals that write nothing.

#![allow(clippy::unwrap_used)]

use remine_system_tests::run;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn facility() -> String {
    repo("services/remine/demo/facility.toml")
        .display()
        .to_string()
}

/// A 200-unit plant year (2025) in a fresh data directory.
fn plant_year() -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    let d = data.path().to_str().unwrap();
    let (code, out, err) = run(
        &["synth", "--packs", "200", "--seed", "5", "--data", d],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    data
}

fn report(data: &tempfile::TempDir, extra: &[&str]) -> (i32, String, String) {
    let d = data.path().to_str().unwrap();
    let f = facility();
    let mut args = vec!["report", "recovery", "--facility", &f, "--data", d];
    args.extend_from_slice(extra);
    run(&args, None)
}

#[test]
fn the_json_report_of_a_plant_year_validates_against_the_published_schema() {
    let data = plant_year();
    let (code, out, err) = report(&data, &["--year", "2025"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("report: reconciling the year's balance"),
        "{err}"
    );
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo("schemas/recycling-report.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let problems: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    let text = out.to_string();
    for element in ["\"Ni\"", "\"Co\"", "\"Li\"", "\"Cu\""] {
        assert!(text.contains(element), "no {element} in the report");
    }
}

#[test]
fn the_csv_report_has_its_header_and_a_row_per_element() {
    let data = plant_year();
    let (code, out, err) = report(&data, &["--year", "2025", "--format", "csv"]);
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    let header = lines.next().unwrap();
    assert!(header.contains("element"), "{header}");
    for e in ["Ni", "Co", "Li", "Cu"] {
        assert!(
            lines.clone().any(|l| l.split(',').any(|c| c == e)),
            "no {e} row in:\n{out}"
        );
    }
}

/// Decodes a PNG: (width, height, RGBA pixels).
fn decode(path: &Path) -> (u32, u32, Vec<[u8; 4]>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let bytes = &buf[..info.buffer_size()];
    let pixels = match info.color_type {
        png::ColorType::Rgba => bytes
            .chunks_exact(4)
            .map(|c| [c[0], c[1], c[2], c[3]])
            .collect(),
        png::ColorType::Rgb => bytes
            .chunks_exact(3)
            .map(|c| [c[0], c[1], c[2], 255])
            .collect(),
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    (info.width, info.height, pixels)
}

#[test]
fn the_html_report_renders_in_headless_chromium() {
    let data = plant_year();
    let html = data.path().join("report.html");
    let (code, _, err) = report(
        &data,
        &[
            "--year",
            "2025",
            "--format",
            "html",
            "--out",
            html.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "not self-contained"
    );
    let Some(chromium) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
    else {
        assert!(
            std::env::var("REMINE_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "chromium is not installed (REMINE_REQUIRE_BROWSER=1)"
        );
        remine_testkit::skip(
            "chromium not installed, the_html_report_renders_in_headless_chromium not run",
        );
        return;
    };
    let shot = data.path().join("report.png");
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1280,1600",
        ])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (w, h, pixels) = decode(&shot);
    assert_eq!((w, h), (1280, 1600));
    let ink = pixels
        .iter()
        .filter(|p| p[0] < 128 && p[1] < 128 && p[2] < 128)
        .count();
    assert!(
        ink > pixels.len() / 200,
        "the page looks blank: {ink} dark pixels"
    );
    // The badges: red for a target missed, green for one met (the year's
    // Li passes 50 %, its Ni misses 90 %).
    let red = pixels
        .iter()
        .filter(|p| p[0] > 150 && p[1] < 90 && p[2] < 90)
        .count();
    let green = pixels
        .iter()
        .filter(|p| p[1] > 100 && p[0] < 90 && p[2] < 120)
        .count();
    assert!(
        red > 50 && green > 50,
        "no pass/fail badges drawn: red {red}, green {green}"
    );
    // Kept beside the test's other artifacts for a person to look at.
    let artifacts = repo("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::copy(&shot, artifacts.join("recovery-report.png")).unwrap();
}

#[test]
fn a_year_without_data_or_a_missing_facility_file_is_refused_and_nothing_is_written() {
    let data = plant_year();
    let out_file = data.path().join("r.json");
    let (code, _, err) = report(
        &data,
        &["--year", "2019", "--out", out_file.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("error: no data for 2019: no input unit was received in that calendar year"),
        "{err}"
    );
    assert!(!out_file.exists());
    let d = data.path().to_str().unwrap();
    let (code, _, err) = run(&["report", "recovery", "--year", "2025", "--data", d], None);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("facility.toml does not exist (give --facility FILE"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
