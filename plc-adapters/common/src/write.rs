//! What a value written to a tag means, before any protocol: a bool or a number.
//!
//! Both adapters accept the same kinds: a bool tag takes `Bool`, or `Int` 0
//! and 1; a numeric tag takes `Float` or `Int`. Anything else is refused
//! with `TagError::Failed` before the wire. Limits and the raw type's range
//! are the adapters' own business (Modbus checks them after scaling).

use remine_domain::TagName;
use remine_domain::TagValue;
use remine_domain::ports::TagError;
use std::fmt::Display;

/// The bool a write to a bool tag means.
pub fn write_bool(tag: &TagName, value: TagValue) -> Result<bool, TagError> {
    match value {
        TagValue::Bool(b) => Ok(b),
        TagValue::Int(0) => Ok(false),
        TagValue::Int(1) => Ok(true),
        other => Err(TagError::Failed {
            tag: tag.clone(),
            why: format!("{other} is not a bool"),
        }),
    }
}

/// The number a write to a numeric tag of type `data_type` means.
pub fn write_number(
    tag: &TagName,
    value: TagValue,
    data_type: impl Display,
) -> Result<f64, TagError> {
    match value {
        TagValue::Float(f) => Ok(f),
        TagValue::Int(i) => Ok(i as f64),
        TagValue::Bool(b) => Err(TagError::Failed {
            tag: tag.clone(),
            why: format!("{b} is not a number, and {tag} is a {data_type}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag() -> TagName {
        TagName::parse("L/U/S").expect("tag name")
    }

    fn failed(why: &str) -> TagError {
        TagError::Failed {
            tag: tag(),
            why: why.into(),
        }
    }

    fn check_bool(value: TagValue, expected: Result<bool, TagError>) {
        assert_eq!(write_bool(&tag(), value), expected, "{value}");
    }

    fn check_number(value: TagValue, expected: Result<f64, TagError>) {
        assert_eq!(write_number(&tag(), value, "u16"), expected, "{value}");
    }

    #[test]
    fn a_bool_tag_takes_bools_and_zero_or_one() {
        check_bool(TagValue::Bool(true), Ok(true));
        check_bool(TagValue::Bool(false), Ok(false));
        check_bool(TagValue::Int(1), Ok(true));
        check_bool(TagValue::Int(0), Ok(false));
    }

    #[test]
    fn a_bool_tag_refuses_other_numbers() {
        check_bool(TagValue::Int(2), Err(failed("2 is not a bool")));
        check_bool(TagValue::Float(0.5), Err(failed("0.5 is not a bool")));
    }

    #[test]
    fn a_numeric_tag_takes_floats_and_integers() {
        check_number(TagValue::Float(2.5), Ok(2.5));
        check_number(TagValue::Int(-3), Ok(-3.0));
    }

    #[test]
    fn a_numeric_tag_refuses_a_bool_naming_its_type() {
        check_number(
            TagValue::Bool(true),
            Err(failed("true is not a number, and L/U/S is a u16")),
        );
    }
}
