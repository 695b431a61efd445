//! The CSV for spreadsheets and the self-contained HTML page.
// Test helpers unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use remine_reporting::*;

fn report() -> RecoveryReport {
    compute(&common::input()).unwrap()
}

#[test]
fn the_csv_header_is_the_published_column_list() {
    let csv = to_csv(&report()).unwrap();
    let header = csv.lines().next().unwrap();
    assert_eq!(header, CSV_COLUMNS.join(","));
}

#[test]
fn the_csv_rows_read_back_unchanged() {
    let r = report();
    let back = read_csv(&to_csv(&r).unwrap()).unwrap();
    assert_eq!(back, csv_rows(&r));
    // The stream's total, then DE and FR: one rRE row and six elements each.
    assert_eq!(back.len(), 3 * 7);
    let ni = back
        .iter()
        .find(|x| x.member_state == "all" && x.element == "Ni")
        .unwrap();
    let row = r.total_row("lithium-based", "Ni").unwrap();
    assert_eq!(ni.rate_pct, row.r_rm);
    assert_eq!((ni.met_2027, ni.target_2031_pct), (Some(false), Some(95.0)));
    let mn = back
        .iter()
        .find(|x| x.member_state == "FR" && x.element == "Mn")
        .unwrap();
    assert_eq!((mn.rate_pct, mn.target_2027_pct), (None, None));
}

#[test]
fn a_csv_with_other_columns_is_refused_at_line_one() {
    let csv = to_csv(&report()).unwrap().replacen("rate_pct", "rate", 1);
    let e = read_csv(&csv).unwrap_err();
    assert!(matches!(e, ReportError::Csv { line: 1, .. }), "{e:?}");
}

#[test]
fn the_warnings_have_their_own_csv() {
    let csv = warnings_csv(&report()).unwrap();
    let lines: Vec<_> = csv.lines().collect();
    assert_eq!(lines[0], "code,lot,field,message");
    assert!(
        lines[1].starts_with("output-after-x-plus-2,LI2,,"),
        "{}",
        lines[1]
    );
}

#[test]
fn the_html_loads_nothing_from_elsewhere() {
    let html = to_html(&report());
    for bad in [
        "http://", "https://", "<script", "<link", "<img", "@import", "url(",
    ] {
        assert!(!html.contains(bad), "the page holds {bad}");
    }
    assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</html>"));
    assert!(html.contains("<style>") && html.contains("@media print"));
}

#[test]
fn the_html_shows_the_rates_targets_and_black_mass_label() {
    let r = report();
    let html = to_html(&r);
    for el in ["Co", "Cu", "Li", "Ni"] {
        let rate = r.total_row("lithium-based", el).unwrap().r_rm.unwrap();
        assert!(
            html.contains(&format!("<b>{rate:.1}</b>")),
            "{el} {rate:.1}"
        );
    }
    assert!(html.contains("badge pass") && html.contains("badge fail"));
    assert!(html.contains("black mass-NMC"));
    assert!(html.contains("Output, made outside the EU"));
}

#[test]
fn the_html_draws_a_sankey_per_element_with_every_flow() {
    let r = report();
    let html = to_html(&r);
    assert_eq!(html.matches("<svg").count(), 4);
    let li_flows = r.element_flows.iter().filter(|f| f.element == "Li").count();
    let li_svg = html
        .split("<figcaption>Li</figcaption>")
        .nth(1)
        .unwrap()
        .split("</svg>")
        .next()
        .unwrap();
    assert_eq!(li_svg.matches("<path").count(), li_flows);
    assert!(li_svg.contains("Residues, losses, other"));
}

#[test]
fn text_from_documents_is_escaped_in_the_html() {
    let mut i = common::input();
    let json = common::smelter_json().replace("Nordic Smelter AS", "Nordic <b>Smelter</b> & Co");
    i.downstream = vec![import_downstream(&json, "smelter.json").unwrap()];
    let html = to_html(&compute(&i).unwrap());
    assert!(html.contains("Nordic &lt;b&gt;Smelter&lt;/b&gt; &amp; Co"));
    assert!(!html.contains("<b>Smelter</b>"));
}

#[test]
fn a_long_run_of_one_warning_is_cut_short_in_the_html_but_kept_in_the_json() {
    let mut i = common::input();
    i.assays.clear();
    let mut r = compute(&i).unwrap();
    let one = r
        .warnings_of("output-lot-without-assays")
        .next()
        .unwrap()
        .clone();
    for n in 0..20 {
        let mut w = one.clone();
        w.message = format!("warning number {n}");
        r.warnings.push(w);
    }
    let html = to_html(&r);
    assert!(html.contains("output-lot-without-assays</code> and 14 more like these"));
    assert!(r.to_json().unwrap().contains("warning number 19"));
}
