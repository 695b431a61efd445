//! Modbus register maps: the TOML files under `maps/`, checked at start-up,
//! placed for the configured number of stations, and the conversion of
//! engineering values to and from 16-bit registers.
//!
//! A map file names its line, its Modbus unit id, the line-level signals
//! (`[[signal]]`, each at an absolute `address`) and optionally one repeated
//! block (`[block]` with `first_address`, `stride` and `[[block.signal]]`
//! entries at an `offset`): block n (1-based) starts at
//! `first_address + (n - 1) * stride`. Every signal has a `table` (holding or
//! input), a `type` (u16, i16, u32, i32, f32; 32-bit types take two registers,
//! big-endian word order, high word first), a `scale` (engineering value =
//! raw value x scale), a `unit`, an `access` (R or RW), a `min` and `max`
//! (writes outside are refused), an optional `default` (written by the
//! simulator at start-up) and a `description`. simulators/README.md
//! documents the format and the three maps in full.

use crate::SimError;
use serde::Deserialize;
use std::collections::HashSet;
use std::fmt;

/// The discharge line's register map, as shipped.
pub const DISCHARGE_MAP: &str = include_str!("../maps/discharge.toml");
/// The mechanical line's register map, as shipped.
pub const MECHANICAL_MAP: &str = include_str!("../maps/mechanical.toml");

/// A Modbus data table this simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Table {
    /// Holding registers: read with function 3, written with 6 and 16.
    Holding,
    /// Input registers: read with function 4, read-only.
    Input,
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Table::Holding => "holding",
            Table::Input => "input",
        })
    }
}

/// How a value is laid out in registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataType {
    U16,
    I16,
    U32,
    I32,
    F32,
}

impl DataType {
    /// Registers (16-bit words) the type takes.
    pub fn words(self) -> u16 {
        match self {
            DataType::U16 | DataType::I16 => 1,
            DataType::U32 | DataType::I32 | DataType::F32 => 2,
        }
    }

    /// The raw values the type can hold.
    fn raw_range(self) -> (f64, f64) {
        match self {
            DataType::U16 => (0.0, f64::from(u16::MAX)),
            DataType::I16 => (f64::from(i16::MIN), f64::from(i16::MAX)),
            DataType::U32 => (0.0, f64::from(u32::MAX)),
            DataType::I32 => (f64::from(i32::MIN), f64::from(i32::MAX)),
            DataType::F32 => (f64::from(f32::MIN), f64::from(f32::MAX)),
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DataType::U16 => "u16",
            DataType::I16 => "i16",
            DataType::U32 => "u32",
            DataType::I32 => "i32",
            DataType::F32 => "f32",
        })
    }
}

/// Whether a client may write a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Access {
    R,
    RW,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::R => "R",
            Access::RW => "RW",
        })
    }
}

/// The signals a line's model knows: the map must place each exactly once,
/// with the access the model serves it with.
pub trait SignalSet: Copy + Eq + fmt::Debug + Send + Sync + 'static {
    const ALL: &'static [Self];
    fn name(self) -> &'static str;
    fn access(self) -> Access;
}

/// The signal set of a line without repeated blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoBlock {}

impl SignalSet for NoBlock {
    const ALL: &'static [Self] = &[];
    fn name(self) -> &'static str {
        match self {}
    }
    fn access(self) -> Access {
        match self {}
    }
}

/// One placed signal: a line-level signal, or a block signal of block
/// `index` (1-based, e.g. the station number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalRef<L, B> {
    Line(L),
    Block(u16, B),
}

impl<L: SignalSet, B: SignalSet> SignalRef<L, B> {
    fn describe(self, block_name: &str) -> String {
        match self {
            SignalRef::Line(s) => format!("'{}'", s.name()),
            SignalRef::Block(i, s) => format!("'{}' ({block_name} {i})", s.name()),
        }
    }
}

/// A signal at its final address, with everything a client needs to know.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed<L, B> {
    pub signal: SignalRef<L, B>,
    pub table: Table,
    pub address: u16,
    pub data_type: DataType,
    pub scale: f64,
    pub unit: String,
    pub access: Access,
    pub min: f64,
    pub max: f64,
    pub default: Option<f64>,
    pub description: String,
}

impl<L, B> Placed<L, B> {
    /// The last register the signal occupies.
    pub fn last_address(&self) -> u32 {
        u32::from(self.address) + u32::from(self.data_type.words()) - 1
    }
}

/// The repeated block of a map (the stations of the discharge line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockLayout {
    pub name: String,
    pub first_address: u16,
    pub stride: u16,
    pub count: u16,
}

impl BlockLayout {
    /// The first address of block `index` (1-based).
    pub fn base(&self, index: u16) -> u32 {
        u32::from(self.first_address) + u32::from(index.saturating_sub(1)) * u32::from(self.stride)
    }
}

/// A checked register map with every signal at its final address.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterMap<L, B> {
    file: String,
    line: String,
    unit_id: u8,
    block: Option<BlockLayout>,
    signals: Vec<Placed<L, B>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MapFile {
    line: String,
    unit_id: u8,
    #[serde(default)]
    signal: Vec<EntryFile>,
    block: Option<BlockFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BlockFile {
    name: String,
    first_address: u16,
    stride: u16,
    signal: Vec<EntryFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    name: String,
    table: Table,
    address: Option<u16>,
    offset: Option<u16>,
    #[serde(rename = "type")]
    data_type: DataType,
    #[serde(default = "one")]
    scale: f64,
    unit: String,
    access: Access,
    min: f64,
    max: f64,
    default: Option<f64>,
    description: String,
}

fn one() -> f64 {
    1.0
}

impl<L: SignalSet, B: SignalSet> RegisterMap<L, B> {
    /// Parse and check a map; `file` names it in errors, `blocks` is how many
    /// times the block repeats (the number of stations).
    pub fn parse(file: &str, text: &str, blocks: u16) -> Result<Self, SimError> {
        let err = |reason: String| SimError::map(file, reason);
        let raw: MapFile = toml::from_str(text).map_err(|e| err(format!("TOML: {e}")))?;
        if !(1..=247).contains(&raw.unit_id) {
            return Err(err(format!(
                "unit_id = {}: a Modbus unit id is between 1 and 247",
                raw.unit_id
            )));
        }
        let mut signals = Vec::new();
        let line_entries = resolve::<L>(file, "line", &raw.signal)?;
        for (sig, entry) in line_entries {
            let Some(address) = entry.address else {
                return Err(err(format!(
                    "signal '{}': a line signal needs an `address`",
                    entry.name
                )));
            };
            if entry.offset.is_some() {
                return Err(err(format!(
                    "signal '{}': `offset` is for block signals; use `address`",
                    entry.name
                )));
            }
            signals.push(place(SignalRef::Line(sig), entry, address));
        }
        let block = match &raw.block {
            None => {
                if !B::ALL.is_empty() {
                    return Err(err("a [block] section is missing".into()));
                }
                None
            }
            Some(b) => {
                if b.stride == 0 {
                    return Err(err(format!("block '{}': stride must be above 0", b.name)));
                }
                let entries = resolve::<B>(file, &b.name, &b.signal)?;
                for (_, entry) in &entries {
                    let Some(offset) = entry.offset else {
                        return Err(err(format!(
                            "{} signal '{}': a block signal needs an `offset`",
                            b.name, entry.name
                        )));
                    };
                    if entry.address.is_some() {
                        return Err(err(format!(
                            "{} signal '{}': `address` is for line signals; use `offset`",
                            b.name, entry.name
                        )));
                    }
                    if u32::from(offset) + u32::from(entry.data_type.words()) > u32::from(b.stride)
                    {
                        return Err(err(format!(
                            "{} signal '{}' at offset {offset} ({} words) does not fit in the stride of {}",
                            b.name,
                            entry.name,
                            entry.data_type.words(),
                            b.stride
                        )));
                    }
                }
                let layout = BlockLayout {
                    name: b.name.clone(),
                    first_address: b.first_address,
                    stride: b.stride,
                    count: blocks,
                };
                for index in 1..=blocks {
                    let base = layout.base(index);
                    for (sig, entry) in &entries {
                        let address = base + u32::from(entry.offset.unwrap_or(0));
                        let last = address + u32::from(entry.data_type.words()) - 1;
                        let Ok(address) = u16::try_from(address) else {
                            return Err(err(format!(
                                "{} {index}: '{}' would sit at register {address}, above 65535",
                                b.name, entry.name
                            )));
                        };
                        if last > u32::from(u16::MAX) {
                            return Err(err(format!(
                                "{} {index}: '{}' would end at register {last}, above 65535",
                                b.name, entry.name
                            )));
                        }
                        signals.push(place(SignalRef::Block(index, *sig), entry, address));
                    }
                }
                Some(layout)
            }
        };
        for p in &signals {
            if p.last_address() > u32::from(u16::MAX) {
                return Err(err(format!(
                    "{} ends at register {}, above 65535",
                    p.signal.describe(block_name(&block)),
                    p.last_address()
                )));
            }
        }
        check_overlaps(file, &block, &mut signals)?;
        Ok(RegisterMap {
            file: file.to_string(),
            line: raw.line,
            unit_id: raw.unit_id,
            block,
            signals,
        })
    }

    /// The file the map came from (as named in errors).
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The line's name, as it appears in messages.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// The Modbus unit id the line answers to.
    pub fn unit_id(&self) -> u8 {
        self.unit_id
    }

    pub fn block(&self) -> Option<&BlockLayout> {
        self.block.as_ref()
    }

    /// Every placed signal, sorted by table and address.
    pub fn signals(&self) -> &[Placed<L, B>] {
        &self.signals
    }

    /// Where a signal sits.
    pub fn find(&self, signal: SignalRef<L, B>) -> Option<&Placed<L, B>> {
        self.signals.iter().find(|p| p.signal == signal)
    }

    /// The signals of `table` that occupy any register in
    /// `start .. start + count`.
    pub fn overlapping(
        &self,
        table: Table,
        start: u16,
        count: u16,
    ) -> impl Iterator<Item = &Placed<L, B>> {
        let first = u32::from(start);
        let end = first + u32::from(count);
        self.signals.iter().filter(move |p| {
            p.table == table && u32::from(p.address) < end && p.last_address() >= first
        })
    }

    /// One past the highest register of `table` any signal occupies.
    pub fn extent(&self, table: Table) -> u32 {
        self.signals
            .iter()
            .filter(|p| p.table == table)
            .map(|p| p.last_address() + 1)
            .max()
            .unwrap_or(0)
    }
}

fn block_name(block: &Option<BlockLayout>) -> &str {
    block.as_ref().map(|b| b.name.as_str()).unwrap_or("block")
}

/// Match the entries of one section against the signal set: unknown names,
/// duplicates, missing signals and access disagreements are errors.
fn resolve<'a, S: SignalSet>(
    file: &str,
    section: &str,
    entries: &'a [EntryFile],
) -> Result<Vec<(S, &'a EntryFile)>, SimError> {
    let err = |reason: String| SimError::map(file, reason);
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for entry in entries {
        let Some(sig) = S::ALL.iter().copied().find(|s| s.name() == entry.name) else {
            let known: Vec<&str> = S::ALL.iter().map(|s| s.name()).collect();
            return Err(err(format!(
                "unknown {section} signal '{}' (known: {})",
                entry.name,
                known.join(", ")
            )));
        };
        if !seen.insert(entry.name.as_str()) {
            return Err(err(format!(
                "{section} signal '{}' is listed twice",
                entry.name
            )));
        }
        if entry.access != sig.access() {
            return Err(err(format!(
                "{section} signal '{}': access {} but the simulator serves it as {}",
                entry.name,
                entry.access,
                sig.access()
            )));
        }
        if entry.table == Table::Input && entry.access == Access::RW {
            return Err(err(format!(
                "{section} signal '{}': input registers are read-only; use table = \"holding\"",
                entry.name
            )));
        }
        check_range(file, section, entry)?;
        out.push((sig, entry));
    }
    for sig in S::ALL {
        if !seen.contains(sig.name()) {
            return Err(err(format!("{section} signal '{}' is missing", sig.name())));
        }
    }
    Ok(out)
}

fn check_range(file: &str, section: &str, e: &EntryFile) -> Result<(), SimError> {
    let err =
        |reason: String| SimError::map(file, format!("{section} signal '{}': {reason}", e.name));
    if !e.scale.is_finite() || e.scale == 0.0 {
        return Err(err(format!("scale = {} must be finite and not 0", e.scale)));
    }
    if !(e.min.is_finite() && e.max.is_finite()) || e.min > e.max {
        return Err(err(format!(
            "min = {} and max = {} are not a range",
            e.min, e.max
        )));
    }
    let (lo, hi) = e.data_type.raw_range();
    let raw = [e.min / e.scale, e.max / e.scale];
    if raw.iter().any(|r| *r < lo || *r > hi) {
        return Err(err(format!(
            "range {} ..= {} does not fit in a {} with scale {}",
            e.min, e.max, e.data_type, e.scale
        )));
    }
    if let Some(d) = e.default {
        if e.access == Access::R {
            return Err(err("a default is only for RW signals".into()));
        }
        if !(e.min..=e.max).contains(&d) {
            return Err(err(format!(
                "default = {d} is outside {} ..= {}",
                e.min, e.max
            )));
        }
    }
    Ok(())
}

fn place<L, B>(signal: SignalRef<L, B>, e: &EntryFile, address: u16) -> Placed<L, B> {
    Placed {
        signal,
        table: e.table,
        address,
        data_type: e.data_type,
        scale: e.scale,
        unit: e.unit.clone(),
        access: e.access,
        min: e.min,
        max: e.max,
        default: e.default,
        description: e.description.clone(),
    }
}

fn check_overlaps<L: SignalSet, B: SignalSet>(
    file: &str,
    block: &Option<BlockLayout>,
    signals: &mut [Placed<L, B>],
) -> Result<(), SimError> {
    signals.sort_by_key(|p| (p.table, p.address));
    for pair in signals.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.table == b.table && u32::from(b.address) <= a.last_address() {
            let name = block_name(block);
            return Err(SimError::map(
                file,
                format!(
                    "{} at {} register {} overlaps {} at {} register {}..={}",
                    b.signal.describe(name),
                    b.table,
                    b.address,
                    a.signal.describe(name),
                    a.table,
                    a.address,
                    a.last_address()
                ),
            ));
        }
    }
    Ok(())
}

/// The registers that carry `value` (an engineering value) as `data_type`
/// with `scale`. Integers round and saturate; NaN becomes 0. 32-bit types
/// are big-endian word order: the high word comes first.
pub fn encode(data_type: DataType, scale: f64, value: f64) -> Vec<u16> {
    let raw = value / scale;
    let raw = if raw.is_nan() { 0.0 } else { raw };
    match data_type {
        DataType::U16 => vec![raw.round().clamp(0.0, f64::from(u16::MAX)) as u16],
        DataType::I16 => {
            let v = raw.round().clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16;
            vec![u16::from_be_bytes(v.to_be_bytes())]
        }
        DataType::U32 => split(raw.round().clamp(0.0, f64::from(u32::MAX)) as u32),
        DataType::I32 => {
            let v = raw.round().clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32;
            split(u32::from_be_bytes(v.to_be_bytes()))
        }
        DataType::F32 => split((raw as f32).to_bits()),
    }
}

/// The engineering value `words` carry; `None` when `words` is not exactly
/// the size of `data_type` or a float is not finite.
pub fn decode(data_type: DataType, scale: f64, words: &[u16]) -> Option<f64> {
    if words.len() != usize::from(data_type.words()) {
        return None;
    }
    let joined = || (u32::from(words[0]) << 16) | u32::from(words[1]);
    let raw = match data_type {
        DataType::U16 => f64::from(words[0]),
        DataType::I16 => f64::from(i16::from_be_bytes(words[0].to_be_bytes())),
        DataType::U32 => f64::from(joined()),
        DataType::I32 => f64::from(i32::from_be_bytes(joined().to_be_bytes())),
        DataType::F32 => {
            let f = f32::from_bits(joined());
            if !f.is_finite() {
                return None;
            }
            f64::from(f)
        }
    };
    Some(raw * scale)
}

fn split(v: u32) -> Vec<u16> {
    vec![(v >> 16) as u16, (v & 0xFFFF) as u16]
}
