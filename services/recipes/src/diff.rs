//! A recipe diff for people: one line per changed parameter, with units.

use remine_domain::recipe::units::{Measure, Unit};
use remine_domain::recipe::{ParamChange, Parameter};

/// Renders the domain's [`diff`](remine_domain::recipe::diff) one line per
/// parameter: `+` added, `-` removed, `~` changed, naming only what
/// changed (value, min, max, phase), each with its unit. An empty diff
/// renders as "no differences".
///
/// ```text
/// ~ leach_temperature (leach.dissolve.leach): value 75 degC -> 80 degC
/// + reductant_ratio (leach.dissolve.leach): 1.75 x [1.5 x ..= 2 x]
/// ```
pub fn render_diff(changes: &[ParamChange]) -> String {
    if changes.is_empty() {
        return "no differences\n".to_string();
    }
    let mut out = String::new();
    for c in changes {
        let line = match c {
            ParamChange::Added(path, p) => format!("+ {} ({path}): {}", p.name(), whole(p)),
            ParamChange::Removed(path, p) => format!("- {} ({path}): {}", p.name(), whole(p)),
            ParamChange::Changed {
                old_path,
                old,
                new_path,
                new,
            } => {
                let mut parts = Vec::new();
                for (what, a, b) in [
                    ("value", old.value(), new.value()),
                    ("min", old.min(), new.min()),
                    ("max", old.max(), new.max()),
                ] {
                    if !same(a, b) {
                        parts.push(format!("{what} {} -> {}", show(a), show(b)));
                    }
                }
                if old_path != new_path {
                    parts.push(format!("moved {old_path} -> {new_path}"));
                }
                format!("~ {} ({new_path}): {}", new.name(), parts.join(", "))
            }
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn whole(p: &Parameter) -> String {
    format!(
        "{} [{} ..= {}]",
        show(p.value()),
        show(p.min()),
        show(p.max())
    )
}

/// A measure with its unit; a bare ratio without one ("1.5", not "1.5 1").
fn show(m: Measure) -> String {
    if m.unit() == Unit::One {
        format!("{}", m.value())
    } else {
        m.to_string()
    }
}

/// The same quantity, as the domain's diff compares them.
fn same(a: Measure, b: Measure) -> bool {
    a.dimension() == b.dimension()
        && (a.canonical() - b.canonical()).abs()
            <= 1e-9 * a.canonical().abs().max(b.canonical().abs()).max(1.0)
}
