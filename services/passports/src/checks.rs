//! Checks every form shares: unit masses and their plausibility, element
//! entries (CAS numbers, names, sums of one element declared in several
//! places), chemistry spellings, unit type from a product name, state of
//! health and the country of collection.

use crate::ImportError;
use crate::country;
use crate::read::Notes;
use remine_domain::{Chemistry, CountryCode, Element, ElementMasses, Kilograms, UnitType};
use std::path::Path;

/// The plant takes no battery unit heavier than this (a large bus or truck
/// pack weighs well under it); a heavier unit is a unit mistake.
pub(crate) const MAX_UNIT_KG: f64 = 2000.0;

/// An element value beyond this is implausible even as a unit mistake: read
/// a factor 1000 too large, the heaviest plausible unit still stays below.
/// Values between the battery mass and this are left to the domain, whose
/// message says "looks like grams".
const MAX_ELEMENT_KG: f64 = MAX_UNIT_KG * 1000.0;

/// A number as the document wrote it, short: `-412`, `471.3`, `1.6e38`.
pub(crate) fn show(v: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e9 || v.abs() < 1e-4) {
        format!("{v:.1e}")
    } else {
        format!("{v}")
    }
}

/// Checks a unit mass already converted to kilograms; `as_written` is the
/// value with the document's unit, for the message.
pub(crate) fn unit_mass(
    file: &Path,
    field: &str,
    kg: f64,
    as_written: &str,
) -> Result<Kilograms, ImportError> {
    if kg.is_nan() || kg <= 0.0 {
        return Err(ImportError::rejected(
            file,
            field,
            format!("{field} must be > 0 (got {as_written})"),
        ));
    }
    if kg > MAX_UNIT_KG {
        return Err(ImportError::rejected(
            file,
            field,
            format!(
                "implausible value {as_written} for {field} (the plant takes no unit above {MAX_UNIT_KG} kg)"
            ),
        ));
    }
    Kilograms::new(kg).map_err(|e| ImportError::rejected(file, field, format!("{field}: {e}")))
}

/// The element an entry names by CAS number and/or by name. `Ok(None)` for
/// a material the plant does not account for (an electrolyte salt...).
/// Refuses a malformed CAS number and a name that contradicts its number.
pub(crate) fn element_of(
    file: &Path,
    field: &str,
    cas: Option<&str>,
    name: Option<&str>,
) -> Result<Option<Element>, ImportError> {
    let by_cas = match cas.map(str::trim).filter(|c| !c.is_empty()) {
        Some(c) => {
            check_cas(c).map_err(|why| {
                ImportError::rejected(
                    file,
                    field,
                    format!("{field} '{c}' is not a valid CAS number: {why}"),
                )
            })?;
            Element::from_cas(c)
        }
        None => None,
    };
    let by_name = name.and_then(|n| n.parse::<Element>().ok());
    match (by_cas, by_name) {
        (Some(c), Some(n)) if c != n => Err(ImportError::rejected(
            file,
            field,
            format!(
                "{field}: CAS number {} is {c}, but the name says '{}'",
                cas.unwrap_or_default().trim(),
                name.unwrap_or_default()
            ),
        )),
        (Some(e), _) | (None, Some(e)) => Ok(Some(e)),
        (None, None) => Ok(None),
    }
}

/// A CAS registry number: 2-7 digits, 2 digits, a check digit that is the
/// weighted digit sum modulo 10.
fn check_cas(cas: &str) -> Result<(), String> {
    let parts: Vec<&str> = cas.split('-').collect();
    let shape_ok = parts.len() == 3
        && (2..=7).contains(&parts[0].len())
        && parts[1].len() == 2
        && parts[2].len() == 1
        && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_digit()));
    if !shape_ok {
        return Err("expected NNNNNNN-NN-N".into());
    }
    let body: Vec<u32> = parts[0]
        .chars()
        .chain(parts[1].chars())
        .filter_map(|c| c.to_digit(10))
        .collect();
    let sum: u32 = body
        .iter()
        .rev()
        .zip(1u32..)
        .map(|(d, weight)| d * weight)
        .sum();
    let check = parts[2].chars().next().and_then(|c| c.to_digit(10));
    if check == Some(sum % 10) {
        Ok(())
    } else {
        Err(format!("check digit should be {}", sum % 10))
    }
}

/// Element masses added up entry by entry (Al in the current collector and
/// in the housing, Cu in the foil and in the busbars), each entry checked
/// for sign and magnitude before it counts.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    masses: ElementMasses,
}

impl Tally {
    /// Adds `kg` of `element`; `as_written` is the entry's value in the
    /// document's unit, for messages.
    pub(crate) fn add(
        &mut self,
        file: &Path,
        field: &str,
        element: Element,
        kg: f64,
        as_written: &str,
    ) -> Result<(), ImportError> {
        if kg.is_nan() || kg < 0.0 {
            return Err(ImportError::rejected(
                file,
                field,
                format!("{field} must be >= 0 (got {as_written}) for {element}"),
            ));
        }
        if kg > MAX_ELEMENT_KG {
            return Err(ImportError::rejected(
                file,
                field,
                format!("implausible value {as_written} for {element} ({field})"),
            ));
        }
        let m = Kilograms::new(kg)
            .map_err(|e| ImportError::rejected(file, field, format!("{field}: {e}")))?;
        self.masses.add(element, m);
        Ok(())
    }

    /// The declared masses, `None` when nothing was declared.
    pub(crate) fn finish(self) -> Option<ElementMasses> {
        (!self.masses.is_empty()).then_some(self.masses)
    }
}

/// A chemistry from free text: the domain's parser first, then this
/// crate's normalisation for spellings it does not know. Catena-X writes
/// the anode after a slash ("LFP/graphite", "NMC (1:1:1) / graphite"); the
/// cathode is what counts.
pub(crate) fn chemistry(text: &str) -> Option<Chemistry> {
    if let Ok(c) = text.parse::<Chemistry>() {
        return Some(c);
    }
    let cathode = text.split('/').next().unwrap_or(text).trim();
    let cathode = cathode
        .trim_end_matches(|c: char| c == '-' || c.is_whitespace())
        .trim();
    if cathode != text {
        return cathode.parse::<Chemistry>().ok();
    }
    None
}

/// The chemistry a document names (short name first, then the clear name);
/// a missing or unknown chemistry is a warning, never a default.
pub(crate) fn named_chemistry(
    file: &Path,
    field: &str,
    names: &[Option<&str>],
    notes: &mut Notes,
) -> Option<Chemistry> {
    let written: Vec<&str> = names.iter().flatten().copied().collect();
    if written.is_empty() {
        notes.warn(file, format!("no {field}"));
        return None;
    }
    let found = written.iter().find_map(|t| chemistry(t));
    if found.is_none() {
        notes.warn(
            file,
            format!(
                "{field} '{}' is not a chemistry the plant knows",
                written.join("' / '")
            ),
        );
    }
    found
}

/// The unit type a product name states ("Traction battery pack 83 kWh",
/// "Battery module 8S"), when it names exactly one of pack, module, cell.
pub(crate) fn unit_type_from_name(name: &str) -> Option<UnitType> {
    let lower = name.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let found: Vec<UnitType> = [
        (UnitType::Pack, "pack"),
        (UnitType::Module, "module"),
        (UnitType::Cell, "cell"),
    ]
    .into_iter()
    .filter(|(_, w)| words.contains(w))
    .map(|(t, _)| t)
    .collect();
    match found.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// A state of health in percent, which must lie in 0-100.
pub(crate) fn state_of_health(file: &Path, field: &str, pct: f64) -> Result<f64, ImportError> {
    if (0.0..=100.0).contains(&pct) {
        Ok(pct)
    } else {
        Err(ImportError::rejected(
            file,
            field,
            format!("{field} must be between 0 and 100 % (got {})", show(pct)),
        ))
    }
}

/// A country of collection: an assigned ISO 3166-1 alpha-2 code.
pub(crate) fn country(file: &Path, field: &str, code: &str) -> Result<CountryCode, ImportError> {
    let parsed = CountryCode::parse(code)
        .map_err(|e| ImportError::rejected(file, field, format!("{field}: {e}")))?;
    if country::is_assigned(code) {
        Ok(parsed)
    } else {
        Err(ImportError::rejected(
            file,
            field,
            format!("{field} '{code}' is not an assigned ISO 3166-1 alpha-2 country code"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_chemistry(text: &str, expected: Option<Chemistry>) {
        assert_eq!(chemistry(text), expected, "{text}");
    }

    #[test]
    fn chemistries_are_read_with_the_anode_after_a_slash() {
        check_chemistry("LFP/graphite", Some(Chemistry::Lfp));
        check_chemistry("NMC (1:1:1) / graphite", Some(Chemistry::Nmc111));
        check_chemistry("LiNi0.8Co0.15Al0.05O2 / Si-C", Some(Chemistry::Nca));
        check_chemistry("NCM523", Some(Chemistry::Nmc532));
        check_chemistry("lead acid", None);
        check_chemistry("/graphite", None);
    }

    fn check_cas_number(cas: &str, ok: bool) {
        assert_eq!(check_cas(cas).is_ok(), ok, "{cas}");
    }

    #[test]
    fn cas_numbers_need_their_shape_and_check_digit() {
        for e in Element::ALL {
            check_cas_number(e.cas(), true);
        }
        check_cas_number("21324-40-3", true);
        check_cas_number("7440-02-1", false);
        check_cas_number("7440-2-0", false);
        check_cas_number("nickel", false);
    }

    fn check_name(name: &str, expected: Option<UnitType>) {
        assert_eq!(unit_type_from_name(name), expected, "{name}");
    }

    #[test]
    fn unit_types_come_from_one_word_of_the_product_name() {
        check_name("Traction battery pack 83 kWh NMC622", Some(UnitType::Pack));
        check_name("Battery module 8S 5.95 kWh", Some(UnitType::Module));
        check_name("Prismatic Cell 156 Ah", Some(UnitType::Cell));
        check_name("Cell module", None);
        check_name("Packaging", None);
    }

    #[test]
    fn numbers_are_shown_short() {
        assert_eq!(show(-412.0), "-412");
        assert_eq!(show(471.3), "471.3");
        assert_eq!(show(1.6111172e38), "1.6e38");
    }
}
