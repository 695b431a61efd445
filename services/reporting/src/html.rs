//! The report as one self-contained HTML page: inline CSS, inline SVG
//! Sankey diagrams of the element flows (input, process steps, outputs
//! made in and outside the EU, stock credited for later years, residues
//! and losses), the table of rates against the targets with pass or fail,
//! and the warnings at the top. It loads nothing (no scripts, no fonts, no
//! images), so it opens offline, and it prints on A4.

use crate::model::{ElementFlow, RecoveryReport, ResultBlock};
use std::collections::BTreeMap;
use std::fmt::Write;

const CSS: &str = r#"
*{box-sizing:border-box}
body{font-family:"DejaVu Sans",Arial,Helvetica,sans-serif;color:#1b1f24;margin:0;padding:24px 32px;max-width:1100px;font-size:14px;line-height:1.4}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 8px;border-bottom:2px solid #1f5f8b;padding-bottom:3px}
h3{font-size:14px;margin:16px 0 6px}
.sub{color:#4a5560;margin:0 0 2px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:bold;font-size:12px;border:1px solid}
.pass{color:#0b6e2e;background:#e3f5e8;border-color:#0b6e2e}
.fail{color:#a3141c;background:#fbe7e8;border-color:#a3141c}
.na{color:#555;background:#eee;border-color:#999}
.status{color:#1f5f8b;background:#e6f0f7;border-color:#1f5f8b}
table{border-collapse:collapse;width:100%;margin:6px 0 10px;font-size:13px}
th,td{border:1px solid #c7ced6;padding:3px 6px;text-align:right;vertical-align:top}
th{background:#eef2f5;font-weight:bold}
td.l,th.l{text-align:left}
.warnings{border:2px solid #b36b00;background:#fff6e5;padding:8px 14px;margin:14px 0}
.warnings h2{border:none;margin:0 0 4px;color:#8a5200}
.warnings li{margin:2px 0}
.ok{border:1px solid #0b6e2e;background:#eef9f1;padding:6px 14px;margin:14px 0}
code{font-family:"DejaVu Sans Mono",monospace;font-size:12px}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:14px}
figure{margin:0;border:1px solid #c7ced6;padding:6px}
figcaption{font-weight:bold;margin-bottom:4px}
svg text{font-size:10px;fill:#1b1f24;paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}
.note{color:#4a5560;font-size:12px}
footer{margin-top:30px;color:#4a5560;font-size:12px;border-top:1px solid #c7ced6;padding-top:6px}
@media print{
 body{padding:0;max-width:none;font-size:11px}
 @page{size:A4;margin:14mm}
 h2{break-after:avoid}
 figure,table,.warnings{break-inside:avoid}
 .grid{grid-template-columns:1fr 1fr}
}
"#;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn t(v: f64) -> String {
    format!("{v:.3}")
}

fn pct(v: Option<f64>) -> String {
    v.map_or("&ndash;".into(), |v| format!("{v:.1}"))
}

fn badge(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => r#"<span class="badge pass">pass</span>"#,
        Some(false) => r#"<span class="badge fail">fail</span>"#,
        None => r#"<span class="badge na">no target</span>"#,
    }
}

fn rates_table(out: &mut String, b: &ResultBlock) {
    out.push_str(
        "<table><thead><tr><th class=\"l\">Element</th><th>Input t</th><th>Output EU t</th>\
         <th>Output outside EU t</th><th>of which credited (x+1, x+2) t</th><th>rRM %</th>\
         <th>&plusmn; 1&sigma; (pp)</th><th class=\"l\">Target 2027</th><th class=\"l\">Target 2031</th></tr></thead><tbody>",
    );
    for r in &b.rows {
        let target = |y: i32| {
            r.targets
                .iter()
                .find(|x| x.by_end_of == y)
                .map_or(badge(None).to_string(), |x| {
                    format!("{} % {}", x.target_pct, badge(Some(x.met)))
                })
        };
        let _ = write!(
            out,
            "<tr><td class=\"l\"><b>{}</b></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><b>{}</b></td><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
            esc(&r.element),
            t(r.m_input_tonnes),
            t(r.m_output_eu_tonnes),
            t(r.m_output_non_eu_tonnes),
            t(r.m_output_credited_tonnes),
            pct(r.r_rm),
            r.r_rm_sigma.map_or("&ndash;".into(), |s| format!(
                "{s:.2} <span class=\"note\">({})</span>",
                esc(&r.uncertainty_basis)
            )),
            target(2027),
            target(2031),
        );
    }
    let _ = write!(
        out,
        "</tbody></table><p>Recycling efficiency rRE: <b>{} %</b> ({} t of output fractions from {} t of input, {} units).</p>",
        pct(b.r_re),
        t(b.m_output_tonnes),
        t(b.m_input_tonnes),
        b.input_units
    );
}

fn node_name(id: &str, steps: &BTreeMap<String, String>) -> String {
    match id {
        "input" => "Input fraction".into(),
        "output-eu" => "Output, made in the EU".into(),
        "output-non-eu" => "Output, made outside the EU".into(),
        "stock" => "In stock (credited x+1, x+2)".into(),
        "other" => "Residues, losses, other".into(),
        s => steps.get(s).map_or(s.to_string(), |n| format!("{s} {n}")),
    }
}

fn column(id: &str, last: usize) -> usize {
    match id {
        "input" => 0,
        "output-eu" | "output-non-eu" | "stock" | "other" => last,
        s => s
            .strip_prefix("N_")
            .and_then(|n| n.parse::<usize>().ok())
            .map_or(last, |n| n + 1),
    }
}

/// One Sankey diagram of an element's flows, as inline SVG.
fn sankey(element: &str, flows: &[&ElementFlow], steps: &BTreeMap<String, String>) -> String {
    const W: f64 = 520.0;
    const H: f64 = 300.0;
    const NODE_W: f64 = 10.0;
    const PAD: f64 = 16.0;
    const TOP: f64 = 16.0;
    if flows.is_empty() {
        return format!("<p class=\"note\">No {} flows.</p>", esc(element));
    }
    let last = steps.len() + 1;
    // Nodes in order of first appearance, per column.
    let mut nodes: Vec<(String, usize)> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for f in flows {
        for id in [&f.from, &f.to] {
            if !index.contains_key(id) {
                index.insert(id.clone(), nodes.len());
                nodes.push((id.clone(), column(id, last)));
            }
        }
    }
    // Steps in order, and the ends always in the same order.
    let rank = |id: &str| match id {
        "output-eu" => 1,
        "output-non-eu" => 2,
        "stock" => 3,
        "other" => 4,
        _ => 0,
    };
    nodes.sort_by(|a, b| (a.1, rank(&a.0), &a.0).cmp(&(b.1, rank(&b.0), &b.0)));
    let index: BTreeMap<String, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (id.clone(), i))
        .collect();
    let mut inflow = vec![0.0; nodes.len()];
    let mut outflow = vec![0.0; nodes.len()];
    for f in flows {
        outflow[index[&f.from]] += f.tonnes;
        inflow[index[&f.to]] += f.tonnes;
    }
    let value: Vec<f64> = inflow
        .iter()
        .zip(&outflow)
        .map(|(a, b)| a.max(*b))
        .collect();
    let columns = last + 1;
    let mut col_total = vec![0.0; columns];
    let mut col_count = vec![0usize; columns];
    for (i, (_, c)) in nodes.iter().enumerate() {
        col_total[*c] += value[i];
        col_count[*c] += 1;
    }
    let scale = (0..columns)
        .filter(|c| col_count[*c] > 0)
        .map(|c| {
            (H - 2.0 * TOP - PAD * (col_count[c].saturating_sub(1)) as f64)
                / col_total[c].max(1e-12)
        })
        .fold(f64::INFINITY, f64::min);
    let scale = if scale.is_finite() && scale > 0.0 {
        scale
    } else {
        1.0
    };
    let x_of = |c: usize| 6.0 + (W - 12.0 - NODE_W) * c as f64 / (columns - 1).max(1) as f64;
    let mut y = vec![0.0; nodes.len()];
    let mut next_y = vec![TOP; columns];
    for (i, (_, c)) in nodes.iter().enumerate() {
        y[i] = next_y[*c];
        next_y[*c] += value[i] * scale + PAD;
    }
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg viewBox=\"0 0 {W} {H}\" width=\"100%\" role=\"img\" aria-label=\"{el} flows\"><title>{el}: element flows, tonnes</title>",
        el = esc(element)
    );
    let mut out_used = vec![0.0; nodes.len()];
    let mut in_used = vec![0.0; nodes.len()];
    for f in flows {
        let (a, b) = (index[&f.from], index[&f.to]);
        let th = f.tonnes * scale;
        let x0 = x_of(nodes[a].1) + NODE_W;
        let x1 = x_of(nodes[b].1);
        let y0 = y[a] + out_used[a];
        let y1 = y[b] + in_used[b];
        out_used[a] += th;
        in_used[b] += th;
        let xm = (x0 + x1) / 2.0;
        let colour = match f.to.as_str() {
            "output-eu" => "#2e9e55",
            "output-non-eu" => "#6c9e2e",
            "stock" => "#d99a1e",
            "other" => "#9aa3ab",
            _ => "#3b7fb6",
        };
        let _ = write!(
            svg,
            "<path d=\"M{x0:.1},{y0:.1} C{xm:.1},{y0:.1} {xm:.1},{y1:.1} {x1:.1},{y1:.1} L{x1:.1},{:.1} C{xm:.1},{:.1} {xm:.1},{:.1} {x0:.1},{:.1} Z\" fill=\"{colour}\" fill-opacity=\"0.45\"><title>{} &#8594; {}: {:.3} t</title></path>",
            y1 + th,
            y1 + th,
            y0 + th,
            y0 + th,
            esc(&node_name(&f.from, steps)),
            esc(&node_name(&f.to, steps)),
            f.tonnes
        );
    }
    for (i, (_, c)) in nodes.iter().enumerate() {
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{NODE_W}\" height=\"{:.1}\" fill=\"#1f3f5b\"/>",
            x_of(*c),
            y[i],
            (value[i] * scale).max(1.0)
        );
    }
    for (i, (id, c)) in nodes.iter().enumerate() {
        let x = x_of(*c);
        let h = (value[i] * scale).max(1.0);
        // Steps are named by id only: the legend under the diagrams names them.
        let name = if *c == 0 || *c == last {
            node_name(id, steps)
        } else {
            id.clone()
        };
        // The ends are labelled beside their node; steps above theirs, so
        // their labels stay clear of the next column's.
        let (tx, ty, anchor) = if *c == last {
            (x - 3.0, y[i] + h / 2.0, "end")
        } else if *c == 0 {
            (x + NODE_W + 3.0, y[i] + h / 2.0, "start")
        } else {
            (x, y[i] - 6.0, "start")
        };
        let _ = write!(
            svg,
            "<text x=\"{tx:.1}\" y=\"{ty:.1}\" text-anchor=\"{anchor}\" dominant-baseline=\"middle\">{} ({:.3} t)</text>",
            esc(&name),
            value[i]
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The report as a self-contained HTML page.
pub fn to_html(report: &RecoveryReport) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let f = &report.first_recycler;
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Recovery report {year} &ndash; {name}</title><style>{CSS}</style></head><body>",
        year = report.calendar_year,
        name = esc(&f.name)
    );
    let _ = write!(
        out,
        "<header><h1>Recycling efficiency and recovery of materials, {year}</h1>\
         <p class=\"sub\">{reg}, Annex XII; calculated by {meth} (section {sec}). \
         <span class=\"badge status\">{status}</span></p>\
         <p class=\"sub\">First recycler: <b>{name}</b>, {street}, {pc} {city}, {country}{bpnl}. \
         Member States of recycling: {states}. Treated: {chems}. Generated {at}.</p></header>",
        year = report.calendar_year,
        reg = esc(&report.legal_basis.regulation),
        meth = esc(&report.legal_basis.methodology),
        sec = esc(&report.legal_basis.annex_section),
        status = esc(&report.status),
        name = esc(&f.name),
        street = esc(f.street.as_deref().unwrap_or("")),
        pc = esc(f.postal_code.as_deref().unwrap_or("")),
        city = esc(f.city.as_deref().unwrap_or("")),
        country = esc(&f.country),
        bpnl = f
            .bpnl
            .as_deref()
            .map_or(String::new(), |b| format!(" ({})", esc(b))),
        states = esc(&report.member_states_of_recycling.join(", ")),
        chems = if report.main_treated_chemistries.is_empty() {
            "&ndash;".to_string()
        } else {
            esc(&report
                .main_treated_chemistries
                .iter()
                .map(|c| format!("black mass-{c}"))
                .collect::<Vec<_>>()
                .join(", "))
        },
        at = esc(&report.generated_at),
    );

    if report.warnings.is_empty() {
        out.push_str("<div class=\"ok\">No warnings: every output lot is assayed and every share sums to one.</div>");
    } else {
        let _ = write!(
            out,
            "<section class=\"warnings\"><h2>Warnings ({})</h2><ul>",
            report.warnings.len()
        );
        // A long run of one warning is cut short here; the JSON has all.
        const PER_CODE: usize = 10;
        let mut shown: BTreeMap<&str, usize> = BTreeMap::new();
        for w in &report.warnings {
            let n = shown.entry(w.code.as_str()).or_default();
            *n += 1;
            if *n <= PER_CODE {
                let _ = write!(
                    out,
                    "<li><code>{}</code> {}</li>",
                    esc(&w.code),
                    esc(&w.message)
                );
            }
        }
        for (code, n) in shown {
            if n > PER_CODE {
                let _ = write!(
                    out,
                    "<li><code>{}</code> and {} more like these, listed in the JSON report</li>",
                    esc(code),
                    n - PER_CODE
                );
            }
        }
        out.push_str("</ul></section>");
    }

    for s in &report.streams {
        let _ = write!(
            out,
            "<h2>Recovery of materials against the targets &ndash; {} batteries (EWC {})</h2>",
            esc(&s.battery_chemistry),
            esc(&s.ewc_code)
        );
        rates_table(&mut out, &s.total);
        out.push_str("<p class=\"note\">Targets of Annex XII part C: by end 2027 Co, Cu, Ni 90 %, Li 50 %; by end 2031 Co, Cu, Ni 95 %, Li 80 %. Mn and Al are reported without a target. Output counts at the recycled-material calculation point only; black mass is an intermediate; lithium in slag never counts.</p>");
        out.push_str("<h2>By Member State of collection</h2>");
        for b in &s.by_member_state {
            let _ = write!(
                out,
                "<h3>{}</h3>",
                esc(b.member_state_of_collection.as_deref().unwrap_or("unknown"))
            );
            rates_table(&mut out, b);
        }
    }

    let steps: BTreeMap<String, String> = report
        .steps
        .iter()
        .map(|s| (s.step_id.clone(), s.name.clone()))
        .collect();
    out.push_str("<h2>Element flows</h2><p class=\"note\">From the year's input through each process step to the outputs; widths in tonnes of the element.</p><div class=\"grid\">");
    for el in ["Co", "Cu", "Li", "Ni"] {
        let flows: Vec<&ElementFlow> = report
            .element_flows
            .iter()
            .filter(|f| f.element == el)
            .collect();
        let _ = write!(
            out,
            "<figure><figcaption>{el}</figcaption>{}</figure>",
            sankey(el, &flows, &steps)
        );
    }
    let legend: Vec<String> = report
        .steps
        .iter()
        .map(|s| {
            format!(
                "{} {} ({})",
                esc(&s.step_id),
                esc(&s.name),
                esc(&s.facility.country)
            )
        })
        .collect();
    let _ = write!(
        out,
        "</div><p class=\"note\">Steps: {}.</p>",
        legend.join("; ")
    );

    out.push_str("<h2>Process steps</h2>");
    for s in &report.steps {
        let _ = write!(
            out,
            "<h3>{} {} &ndash; {} ({})</h3>",
            esc(&s.step_id),
            esc(&s.name),
            esc(&s.facility.name),
            esc(&s.facility.country)
        );
        out.push_str("<table><thead><tr><th class=\"l\">Element</th><th>Input t</th><th>Output EU t</th><th>Output outside EU t</th><th>of which credited t</th><th>Passed on t</th><th>Residues, losses t</th><th>In stock t</th></tr></thead><tbody>");
        for r in &s.element_rows {
            let _ = write!(
                out,
                "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.element),
                t(r.m_input_tonnes),
                t(r.m_output_eu_tonnes),
                t(r.m_output_non_eu_tonnes),
                t(r.m_output_credited_tonnes),
                t(r.m_intermediate_tonnes),
                t(r.m_other_tonnes),
                t(r.m_stock_tonnes)
            );
        }
        out.push_str("</tbody></table>");
        let fractions: Vec<String> = s
            .intermediate_fractions
            .iter()
            .map(|x| {
                format!(
                    "{} {} t to {}",
                    esc(&x.type_label),
                    t(x.mass_tonnes),
                    esc(x.further_step.as_deref().unwrap_or("?"))
                )
            })
            .chain(
                s.output_fractions
                    .iter()
                    .map(|x| format!("{} {} t (output)", esc(&x.type_label), t(x.mass_tonnes))),
            )
            .collect();
        if !fractions.is_empty() {
            let _ = write!(
                out,
                "<p class=\"note\">Fractions: {}.</p>",
                fractions.join("; ")
            );
        }
    }

    let d = &report.deferred_output_allocation;
    let _ = write!(
        out,
        "<h2>Output of {} and {} credited to {}</h2><p class=\"note\">{}</p>",
        d.years.first().copied().unwrap_or_default(),
        d.years.get(1).copied().unwrap_or_default(),
        report.calendar_year,
        esc(&d.basis)
    );
    if d.credits.is_empty() {
        out.push_str("<p>None: no material of the year's input is in stock.</p>");
    } else {
        out.push_str("<table><thead><tr><th class=\"l\">Lots in stock</th><th class=\"l\">Element</th><th>Lots</th><th>In stock t</th><th>Efficiency</th><th>Credited t</th></tr></thead><tbody>");
        for c in &d.credits {
            let _ = write!(
                out,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&c.stage),
                esc(&c.element),
                c.lots,
                t(c.in_stock_tonnes),
                c.efficiency
                    .map_or("none".into(), |e| format!("{:.1} %", e * 100.0)),
                t(c.credited_tonnes)
            );
        }
        out.push_str("</tbody></table>");
    }

    const SHOWN: usize = 200;
    let _ = write!(out, "<h2>Output lots ({})</h2>", report.output_lots.len());
    out.push_str("<table><thead><tr><th class=\"l\">Lot</th><th class=\"l\">Fraction</th><th class=\"l\">Facility</th><th>Year</th><th class=\"l\">Made in</th><th>Mass t</th><th class=\"l\">Credited to the year (t)</th></tr></thead><tbody>");
    for o in report.output_lots.iter().take(SHOWN) {
        let credited: Vec<String> = o
            .credited_elements_tonnes
            .iter()
            .filter(|(_, v)| **v > 0.0)
            .map(|(e, v)| format!("{e} {v:.3}"))
            .collect();
        let _ = write!(
            out,
            "<tr><td class=\"l\"><code>{}</code></td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            esc(&o.lot_id),
            esc(&o.type_label),
            esc(&o.facility),
            o.produced_year,
            if o.made_in_eu { "EU" } else { "outside the EU" },
            t(o.mass_tonnes),
            esc(&credited.join(", "))
        );
    }
    out.push_str("</tbody></table>");
    if report.output_lots.len() > SHOWN {
        let _ = write!(
            out,
            "<p class=\"note\">{} more output lots are listed in the JSON report.</p>",
            report.output_lots.len() - SHOWN
        );
    }
    let _ = write!(
        out,
        "<footer>remine recovery report, schema {} ({}). Masses water-free, in tonnes. This page is self-contained and prints on A4.</footer></body></html>",
        esc(&report.schema_version),
        esc(&report.document_type)
    );
    out
}
