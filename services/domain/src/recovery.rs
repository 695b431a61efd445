//! Recovery targets of Reg. (EU) 2023/1542 Annex XII part C.
//!
//! The rates themselves (rRM by Del. Reg. (EU) 2025/606, credited through
//! the genealogy, per input stream and Member State) are computed by
//! remine-reporting, the one place that counts output fractions.

use crate::Element;

/// A recovery target: the rate an element must reach by the end of a year.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    pub by_end_of: i32,
    pub pct: f64,
}

impl Target {
    /// The Annex XII part C targets for `e`, if it has any.
    pub fn for_element(e: Element) -> Vec<Target> {
        let (t27, t31) = match e {
            Element::Co | Element::Cu | Element::Ni => (90.0, 95.0),
            Element::Li => (50.0, 80.0),
            _ => return vec![],
        };
        vec![
            Target {
                by_end_of: 2027,
                pct: t27,
            },
            Target {
                by_end_of: 2031,
                pct: t31,
            },
        ]
    }
}
