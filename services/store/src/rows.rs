//! Reading columns out of rows, with errors that name the table, key and
//! column when stored data does not fit.

use remine_domain::ports::StoreError;
use remine_domain::{DomainError, Element, ElementMasses, Kilograms};
use sqlx::any::AnyRow;
use sqlx::{Any, Decode, Row, Type};
use std::fmt;

/// Reads `column` of `row`; `what` names the row (`lot BM-001`) for the
/// error.
pub(crate) fn get<'r, T>(
    row: &'r AnyRow,
    column: &str,
    what: &dyn fmt::Display,
) -> Result<T, StoreError>
where
    T: Decode<'r, Any> + Type<Any>,
{
    row.try_get(column)
        .map_err(|e| StoreError::Corrupt(format!("{what}: column {column}: {e}")))
}

/// A domain constructor's refusal of stored data.
pub(crate) fn corrupt(what: &dyn fmt::Display, e: DomainError) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// A stored mass back in kilograms.
pub(crate) fn kilograms(kg: f64, what: &dyn fmt::Display) -> Result<Kilograms, StoreError> {
    Kilograms::new(kg).map_err(|e| corrupt(what, e))
}

/// Element masses from `(element, kg)` rows of a child table.
pub(crate) fn element_masses(
    rows: &[AnyRow],
    what: &dyn fmt::Display,
) -> Result<ElementMasses, StoreError> {
    rows.iter()
        .map(|row| {
            let symbol: String = get(row, "element", what)?;
            let element: Element = symbol.parse().map_err(|e| corrupt(what, e))?;
            let kg = kilograms(get(row, "kg", what)?, what)?;
            Ok((element, kg))
        })
        .collect()
}
