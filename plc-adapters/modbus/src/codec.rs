//! Conversion between raw Modbus registers or bits and engineering values.
//!
//! engineering = raw * scale + offset. Integer types with the identity scaling
//! read as [`TagValue::Int`], everything else numeric as [`TagValue::Float`].
//! 32-bit values span two registers, ordered by the tag's [`WordOrder`]; each
//! register is big-endian on the wire, as Modbus says.

use crate::config::{DataType, TagConfig, WordOrder};
use remine_domain::TagValue;
use remine_domain::ports::TagError;
use remine_plc_common::{write_bool, write_number};

/// What a write puts on the wire.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Raw {
    /// A coil.
    Bit(bool),
    /// One bit of a holding register (read-modify-write).
    RegisterBit(bool),
    /// One or two holding registers.
    Words(Vec<u16>),
}

/// The value of a register-mapped tag, from its registers (`words` starts at
/// the tag's first register). `None` when fewer registers than needed came back.
pub(crate) fn decode_registers(tag: &TagConfig, words: &[u16]) -> Option<TagValue> {
    if let Some(bit) = tag.bit() {
        let w = *words.first()?;
        return Some(TagValue::Bool(w & (1 << bit) != 0));
    }
    let identity = tag.scale() == 1.0 && tag.offset() == 0.0;
    let int = |raw: i64| {
        if identity {
            TagValue::Int(raw)
        } else {
            TagValue::Float(raw as f64 * tag.scale() + tag.offset())
        }
    };
    let value = match tag.data_type() {
        DataType::U16 => int(i64::from(*words.first()?)),
        DataType::I16 => int(i64::from(*words.first()? as i16)),
        DataType::U32 => int(i64::from(join(tag.word_order(), words)?)),
        DataType::I32 => int(i64::from(join(tag.word_order(), words)? as i32)),
        DataType::F32 => {
            let raw = f64::from(f32::from_bits(join(tag.word_order(), words)?));
            TagValue::Float(raw * tag.scale() + tag.offset())
        }
        DataType::Bool => TagValue::Bool(*words.first()? != 0),
    };
    Some(value)
}

fn join(order: WordOrder, words: &[u16]) -> Option<u32> {
    let (a, b) = (u32::from(*words.first()?), u32::from(*words.get(1)?));
    Some(match order {
        WordOrder::Big => (a << 16) | b,
        WordOrder::Little => (b << 16) | a,
    })
}

fn split(order: WordOrder, v: u32) -> Vec<u16> {
    let (hi, lo) = ((v >> 16) as u16, (v & 0xFFFF) as u16);
    match order {
        WordOrder::Big => vec![hi, lo],
        WordOrder::Little => vec![lo, hi],
    }
}

/// Converts an engineering value into what goes on the wire, refusing values
/// outside the tag's write limits or its type's range, and values of the
/// wrong kind.
pub(crate) fn encode(tag: &TagConfig, value: TagValue) -> Result<Raw, TagError> {
    if tag.data_type() == DataType::Bool {
        let b = write_bool(tag.name(), value)?;
        return Ok(if tag.bit().is_some() {
            Raw::RegisterBit(b)
        } else {
            Raw::Bit(b)
        });
    }
    let eng = write_number(tag.name(), value, tag.data_type())?;
    let (type_min, type_max) = engineering_range(tag);
    let (min, max) = tag
        .limits()
        .map_or((type_min, type_max), |l| (l.min(), l.max()));
    let refuse = |min: f64, max: f64| TagError::OutOfLimits {
        tag: tag.name().clone(),
        value: eng,
        min,
        max,
    };
    if !eng.is_finite() || eng < min || eng > max {
        return Err(refuse(min, max));
    }
    let raw = (eng - tag.offset()) / tag.scale();
    let order = tag.word_order();
    let words = match tag.data_type() {
        DataType::U16 => vec![
            int_in(raw, 0.0, f64::from(u16::MAX)).ok_or_else(|| refuse(type_min, type_max))? as u16,
        ],
        DataType::I16 => {
            let r = int_in(raw, f64::from(i16::MIN), f64::from(i16::MAX))
                .ok_or_else(|| refuse(type_min, type_max))?;
            vec![r as i16 as u16]
        }
        DataType::U32 => {
            let r =
                int_in(raw, 0.0, f64::from(u32::MAX)).ok_or_else(|| refuse(type_min, type_max))?;
            split(order, r as u32)
        }
        DataType::I32 => {
            let r = int_in(raw, f64::from(i32::MIN), f64::from(i32::MAX))
                .ok_or_else(|| refuse(type_min, type_max))?;
            split(order, r as i32 as u32)
        }
        DataType::F32 => {
            if raw.abs() > f64::from(f32::MAX) {
                return Err(refuse(type_min, type_max));
            }
            split(order, (raw as f32).to_bits())
        }
        // Bools returned above; this arm only keeps the match total.
        DataType::Bool => return Err(refuse(type_min, type_max)),
    };
    Ok(Raw::Words(words))
}

fn int_in(raw: f64, lo: f64, hi: f64) -> Option<i64> {
    let r = raw.round();
    (r >= lo && r <= hi).then_some(r as i64)
}

/// The engineering values the tag's raw type can represent.
fn engineering_range(tag: &TagConfig) -> (f64, f64) {
    let (lo, hi) = match tag.data_type() {
        DataType::U16 => (0.0, f64::from(u16::MAX)),
        DataType::I16 => (f64::from(i16::MIN), f64::from(i16::MAX)),
        DataType::U32 => (0.0, f64::from(u32::MAX)),
        DataType::I32 => (f64::from(i32::MIN), f64::from(i32::MAX)),
        DataType::F32 => (-f64::from(f32::MAX), f64::from(f32::MAX)),
        DataType::Bool => (0.0, 1.0),
    };
    let (a, b) = (
        lo * tag.scale() + tag.offset(),
        hi * tag.scale() + tag.offset(),
    );
    if a <= b { (a, b) } else { (b, a) }
}
