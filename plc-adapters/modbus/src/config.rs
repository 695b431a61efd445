//! The Modbus tag map: its TOML form, and the checked types it is parsed into.
//!
//! The file has `[[device]]` tables (one per Modbus TCP server) and `[[tag]]`
//! tables (one per signal); plc-adapters/README.md documents every field.
//! Parsing checks everything that can be checked without a device: names,
//! ranges, type and table combinations, overlapping registers, write limits.
//! The resulting [`ModbusConfig`] cannot hold an invalid mapping.

use crate::ModbusError;
use remine_domain::{Access, TagInfo, TagName};
use remine_plc_common::TagMapError;
use remine_plc_common::tagmap::{self, Checker, Millis, Number, WriteLimits};
use serde::Deserialize;
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// The four Modbus data tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Holding registers (read/write, 16 bits each).
    Holding,
    /// Input registers (read-only, 16 bits each).
    Input,
    /// Coils (read/write bits).
    Coil,
    /// Discrete inputs (read-only bits).
    Discrete,
}

impl Table {
    fn parse(s: &str) -> Option<Table> {
        match s {
            "holding" => Some(Table::Holding),
            "input" => Some(Table::Input),
            "coil" => Some(Table::Coil),
            "discrete" => Some(Table::Discrete),
            _ => None,
        }
    }

    /// Whether the table holds 16-bit registers (rather than single bits).
    pub fn is_register(self) -> bool {
        matches!(self, Table::Holding | Table::Input)
    }

    /// Whether a Modbus master may write this table.
    pub fn is_writable(self) -> bool {
        matches!(self, Table::Holding | Table::Coil)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Table::Holding => "holding",
            Table::Input => "input",
            Table::Coil => "coil",
            Table::Discrete => "discrete",
        }
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the raw bits of a tag are interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    U16,
    I16,
    U32,
    I32,
    F32,
    /// A coil, a discrete input, or one bit of a register.
    Bool,
}

impl DataType {
    fn parse(s: &str) -> Option<DataType> {
        match s {
            "u16" => Some(DataType::U16),
            "i16" => Some(DataType::I16),
            "u32" => Some(DataType::U32),
            "i32" => Some(DataType::I32),
            "f32" => Some(DataType::F32),
            "bool" => Some(DataType::Bool),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DataType::U16 => "u16",
            DataType::I16 => "i16",
            DataType::U32 => "u32",
            DataType::I32 => "i32",
            DataType::F32 => "f32",
            DataType::Bool => "bool",
        }
    }

    /// Whether the type spans two registers.
    pub fn is_32_bit(self) -> bool {
        matches!(self, DataType::U32 | DataType::I32 | DataType::F32)
    }

    /// Registers (or bits, for bool) the type occupies.
    pub fn width(self) -> u16 {
        if self.is_32_bit() { 2 } else { 1 }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which register of a 32-bit value comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WordOrder {
    /// High word at the lower address (Modbus convention, "ABCD").
    #[default]
    Big,
    /// Low word at the lower address ("CDAB", common on some PLCs).
    Little,
}

impl WordOrder {
    fn parse(s: &str) -> Option<WordOrder> {
        match s {
            "big" => Some(WordOrder::Big),
            "little" => Some(WordOrder::Little),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WordOrder::Big => "big",
            WordOrder::Little => "little",
        }
    }
}

/// A named set of a device's tags polled at its own rate.
#[derive(Debug, Clone, PartialEq)]
pub struct PollGroup {
    name: String,
    interval: Duration,
}

impl PollGroup {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Time between the group's poll cycles.
    pub fn interval(&self) -> Duration {
        self.interval
    }
}

/// One Modbus TCP server (a PLC, or a unit behind a gateway).
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceConfig {
    name: String,
    host: String,
    port: u16,
    unit_id: u8,
    poll_interval: Duration,
    request_timeout: Duration,
    max_gap: u16,
    reconnect_min: Duration,
    reconnect_max: Duration,
    comms_alarm_delay: Duration,
    connections: u8,
    poll_groups: Vec<PollGroup>,
}

impl DeviceConfig {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Host name or IP address, without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn unit_id(&self) -> u8 {
        self.unit_id
    }

    /// Time between poll cycles of the tags that name no poll group.
    pub fn poll_interval(&self) -> Duration {
        self.poll_interval
    }

    /// The named poll groups, in file order; tags name them by index.
    pub fn poll_groups(&self) -> &[PollGroup] {
        &self.poll_groups
    }

    /// TCP connections opened to the device (1 to 8); a poll cycle's
    /// requests are spread over them.
    pub fn connections(&self) -> u8 {
        self.connections
    }

    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// Unmapped registers (or bits) a read may bridge to merge two requests.
    pub fn max_gap(&self) -> u16 {
        self.max_gap
    }

    /// First delay before reconnecting; it doubles up to [`Self::reconnect_max`].
    pub fn reconnect_min(&self) -> Duration {
        self.reconnect_min
    }

    pub fn reconnect_max(&self) -> Duration {
        self.reconnect_max
    }

    /// How long the link must be down before the comms-loss alarm is raised
    /// (zero: at the first failure).
    pub fn comms_alarm_delay(&self) -> Duration {
        self.comms_alarm_delay
    }
}

/// One tag: where it lives on which device, how to convert it, and who may write it.
#[derive(Debug, Clone, PartialEq)]
pub struct TagConfig {
    name: TagName,
    device: usize,
    table: Table,
    address: u16,
    data_type: DataType,
    word_order: WordOrder,
    bit: Option<u8>,
    scale: f64,
    offset: f64,
    unit: String,
    access: Access,
    limits: Option<WriteLimits>,
    poll_group: Option<usize>,
}

impl TagConfig {
    pub fn name(&self) -> &TagName {
        &self.name
    }

    /// Index of the tag's device in [`ModbusConfig::devices`].
    pub fn device_index(&self) -> usize {
        self.device
    }

    /// Index of the tag's group in its device's [`DeviceConfig::poll_groups`];
    /// `None`: polled every `poll_interval_ms` of the device.
    pub fn poll_group_index(&self) -> Option<usize> {
        self.poll_group
    }

    pub fn table(&self) -> Table {
        self.table
    }

    /// 0-based address of the first register or bit.
    pub fn address(&self) -> u16 {
        self.address
    }

    pub fn data_type(&self) -> DataType {
        self.data_type
    }

    pub fn word_order(&self) -> WordOrder {
        self.word_order
    }

    /// The bit (0 = least significant) of a bool mapped onto a register.
    pub fn bit(&self) -> Option<u8> {
        self.bit
    }

    /// engineering = raw * scale + offset
    pub fn scale(&self) -> f64 {
        self.scale
    }

    pub fn offset(&self) -> f64 {
        self.offset
    }

    pub fn unit(&self) -> &str {
        &self.unit
    }

    pub fn access(&self) -> Access {
        self.access
    }

    pub fn limits(&self) -> Option<WriteLimits> {
        self.limits
    }

    /// Registers (or bits) the tag occupies.
    pub fn width(&self) -> u16 {
        if self.bit.is_some() {
            1
        } else {
            self.data_type.width()
        }
    }

    /// What the services see of this tag.
    pub fn info(&self) -> TagInfo {
        TagInfo {
            name: self.name.clone(),
            unit: self.unit.clone(),
            access: self.access,
            write_limits: self.limits.map(|l| (l.min(), l.max())),
        }
    }
}

/// A checked Modbus tag map: devices and the tags mapped onto them.
#[derive(Debug, Clone, PartialEq)]
pub struct ModbusConfig {
    devices: Vec<DeviceConfig>,
    tags: Vec<TagConfig>,
}

impl ModbusConfig {
    /// Parses a tag map; `source` names the text in error messages (usually its path).
    pub fn from_toml_str(text: &str, source: &str) -> Result<ModbusConfig, ModbusError> {
        let raw: RawFile = tagmap::parse_toml(text, source)?;
        Ok(check(&Checker::new(source, "device"), raw)?)
    }

    /// Reads and parses a tag-map file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<ModbusConfig, ModbusError> {
        let path = path.as_ref();
        let text = tagmap::read_file(path)?;
        ModbusConfig::from_toml_str(&text, &path.display().to_string())
    }

    pub fn devices(&self) -> &[DeviceConfig] {
        &self.devices
    }

    pub fn tags(&self) -> &[TagConfig] {
        &self.tags
    }

    /// The tags as the services see them.
    pub fn catalogue(&self) -> Vec<TagInfo> {
        self.tags.iter().map(TagConfig::info).collect()
    }
}

// ---- the TOML form -------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    device: Vec<RawDevice>,
    #[serde(default)]
    tag: Vec<RawTag>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    name: String,
    address: String,
    unit_id: i64,
    poll_interval_ms: Option<i64>,
    request_timeout_ms: Option<i64>,
    max_gap: Option<i64>,
    reconnect_min_ms: Option<i64>,
    reconnect_max_ms: Option<i64>,
    comms_alarm_delay_ms: Option<i64>,
    connections: Option<i64>,
    #[serde(default)]
    poll_group: Vec<RawPollGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPollGroup {
    name: String,
    interval_ms: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTag {
    name: String,
    device: String,
    table: String,
    address: i64,
    #[serde(rename = "type")]
    data_type: String,
    word_order: Option<String>,
    bit: Option<i64>,
    scale: Option<Number>,
    offset: Option<Number>,
    unit: Option<String>,
    access: Option<String>,
    min: Option<Number>,
    max: Option<Number>,
    poll_group: Option<String>,
}

/// `poll_interval_ms`: the time between poll cycles.
const POLL_MS: Millis = Millis::new(1000, 10..=3_600_000);
/// `interval_ms` of a poll group: as `poll_interval_ms`, and required.
const GROUP_MS: Millis = Millis::new(1000, 10..=3_600_000);
/// `connections`: TCP connections per device.
const MAX_CONNECTIONS: i64 = 8;
/// `request_timeout_ms`: the limit for connecting and for every request.
const TIMEOUT_MS: Millis = Millis::new(1000, 10..=60_000);
/// A read of more than 125 registers does not fit one Modbus PDU.
pub(crate) const MAX_READ_REGISTERS: u16 = 125;
/// A read of more than 2000 bits does not fit one Modbus PDU.
pub(crate) const MAX_READ_BITS: u16 = 2000;

// ---- checking ---------------------------------------------------------------
// Names, access, write limits and reconnect delays are checked as in every
// tag map (remine_plc_common::tagmap); tables, types, bits, word order,
// scaling and overlapping registers are Modbus's own.

fn check(c: &Checker<'_>, raw: RawFile) -> Result<ModbusConfig, TagMapError> {
    let devices = c.links(raw.device, |d| device(c, d), DeviceConfig::name)?;
    let tags = c.tags(raw.tag, |n, t| tag(c, n, t, &devices), TagConfig::name)?;
    overlaps(c, &devices, &tags)?;
    Ok(ModbusConfig { devices, tags })
}

fn device(c: &Checker<'_>, d: RawDevice) -> Result<DeviceConfig, TagMapError> {
    let item = c.link_item(&d.name)?;
    let item = item.as_str();
    let (host, port) = host_port(c, item, &d.address)?;
    let unit_id = c.int_in(item, "unit_id", d.unit_id, 0, 255)? as u8;
    let poll_interval = c.millis(item, "poll_interval_ms", d.poll_interval_ms, POLL_MS)?;
    let request_timeout = c.millis(item, "request_timeout_ms", d.request_timeout_ms, TIMEOUT_MS)?;
    let max_gap = c.int_in(
        item,
        "max_gap",
        d.max_gap.unwrap_or(0),
        0,
        i64::from(MAX_READ_REGISTERS) - 1,
    )? as u16;
    let (reconnect_min, reconnect_max) =
        c.reconnect(item, d.reconnect_min_ms, d.reconnect_max_ms)?;
    let comms_alarm_delay = c.comms_alarm_delay(item, d.comms_alarm_delay_ms)?;
    let connections = c.int_in(
        item,
        "connections",
        d.connections.unwrap_or(1),
        1,
        MAX_CONNECTIONS,
    )? as u8;
    let mut poll_groups: Vec<PollGroup> = Vec::with_capacity(d.poll_group.len());
    for g in d.poll_group {
        let group_item = format!("{item} poll group '{}'", g.name);
        if !tagmap::is_link_name(&g.name) {
            return Err(c.err(
                &group_item,
                "name",
                "a poll group name is letters, digits, '_', '-' and '.', not empty",
            ));
        }
        if poll_groups.iter().any(|known| known.name == g.name) {
            return Err(c.err(
                &group_item,
                "name",
                format!("duplicate poll group name on {item}"),
            ));
        }
        let interval = c.millis(&group_item, "interval_ms", Some(g.interval_ms), GROUP_MS)?;
        poll_groups.push(PollGroup {
            name: g.name,
            interval,
        });
    }
    Ok(DeviceConfig {
        name: d.name,
        host,
        port,
        unit_id,
        poll_interval,
        request_timeout,
        max_gap,
        reconnect_min,
        reconnect_max,
        comms_alarm_delay,
        connections,
        poll_groups,
    })
}

fn host_port(c: &Checker<'_>, item: &str, address: &str) -> Result<(String, u16), TagMapError> {
    let bad = |why: &str| c.err(item, "address", format!("'{address}' {why}"));
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err(bad("is not host:port"));
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(bad("has no usable host"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok((host.to_string(), p)),
        _ => Err(bad("has no port between 1 and 65535")),
    }
}

fn tag(
    c: &Checker<'_>,
    number: usize,
    t: RawTag,
    devices: &[DeviceConfig],
) -> Result<TagConfig, TagMapError> {
    let (name, item) = c.tag_name(number, &t.name)?;
    let item = item.as_str();
    let device = c.link_of(item, &t.device, devices.iter().map(DeviceConfig::name))?;
    let poll_group = match (&t.poll_group, devices.get(device)) {
        (None, _) | (_, None) => None,
        (Some(wanted), Some(d)) => Some(
            d.poll_groups
                .iter()
                .position(|g| g.name == *wanted)
                .ok_or_else(|| {
                    let known: Vec<&str> = d.poll_groups.iter().map(PollGroup::name).collect();
                    c.err(
                        item,
                        "poll_group",
                        format!(
                            "unknown poll group '{wanted}' of device '{}' ({})",
                            d.name,
                            if known.is_empty() {
                                "it has none: add a [[device.poll_group]] or remove 'poll_group'"
                                    .to_string()
                            } else {
                                format!("poll groups: {}", known.join(", "))
                            }
                        ),
                    )
                })?,
        ),
    };
    let table = Table::parse(&t.table).ok_or_else(|| {
        c.err(
            item,
            "table",
            format!(
                "unknown table '{}' (expected holding, input, coil or discrete)",
                t.table
            ),
        )
    })?;
    let address = c.int_in(item, "address", t.address, 0, 65535)? as u16;
    let data_type = DataType::parse(&t.data_type).ok_or_else(|| {
        c.err(
            item,
            "type",
            format!(
                "unknown type '{}' (expected u16, i16, u32, i32, f32 or bool)",
                t.data_type
            ),
        )
    })?;

    let bit = match (data_type, table.is_register(), t.bit) {
        (DataType::Bool, true, Some(b)) => Some(c.int_in(item, "bit", b, 0, 15)? as u8),
        (DataType::Bool, true, None) => {
            return Err(c.err(
                item,
                "bit",
                format!("a bool on the {table} table needs the bit number (0-15)"),
            ));
        }
        (DataType::Bool, false, Some(_)) => {
            return Err(c.err(
                item,
                "bit",
                format!("the {table} table holds single bits: remove 'bit'"),
            ));
        }
        (DataType::Bool, false, None) => None,
        (_, false, _) => {
            return Err(c.err(
                item,
                "type",
                format!(
                    "the {table} table holds single bits: use type \"bool\", not \"{data_type}\""
                ),
            ));
        }
        (_, true, Some(_)) => {
            return Err(c.err(
                item,
                "bit",
                format!("only a bool has a bit number, not a {data_type}"),
            ));
        }
        (_, true, None) => None,
    };

    let word_order = match (&t.word_order, data_type.is_32_bit()) {
        (None, _) => WordOrder::Big,
        (Some(w), true) => WordOrder::parse(w).ok_or_else(|| {
            c.err(
                item,
                "word_order",
                format!("unknown word order '{w}' (expected big or little)"),
            )
        })?,
        (Some(_), false) => {
            return Err(c.err(
                item,
                "word_order",
                format!("a {data_type} is one register and has no word order"),
            ));
        }
    };
    let width = if bit.is_some() { 1 } else { data_type.width() };
    if u32::from(address) + u32::from(width) - 1 > 65535 {
        return Err(c.err(
            item,
            "address",
            format!("a {data_type} at {address} runs past address 65535"),
        ));
    }

    if data_type == DataType::Bool && (t.scale.is_some() || t.offset.is_some()) {
        return Err(c.err(item, "scale", "a bool has no scale or offset"));
    }
    let scale = t.scale.map_or(1.0, Number::get);
    if !scale.is_finite() || scale == 0.0 {
        return Err(c.err(
            item,
            "scale",
            format!("{scale} is not a finite, non-zero number"),
        ));
    }
    let offset = t.offset.map_or(0.0, Number::get);
    if !offset.is_finite() {
        return Err(c.err(item, "offset", format!("{offset} is not a finite number")));
    }

    let access = c.access(item, t.access.as_deref())?;
    if access == Access::ReadWrite && !table.is_writable() {
        return Err(c.err(
            item,
            "access",
            format!("the {table} table cannot be written: use access = \"read\""),
        ));
    }

    let limits = c.limits(item, t.min, t.max, access, data_type == DataType::Bool)?;
    Ok(TagConfig {
        name,
        device,
        table,
        address,
        data_type,
        word_order,
        bit,
        scale,
        offset,
        unit: t.unit.unwrap_or_default(),
        access,
        limits,
        poll_group,
    })
}

/// Two tags may share registers only as aliases: same type, same first
/// register, same word order (and so bits of one register, or one value
/// read twice with two scalings).
fn overlaps(
    c: &Checker<'_>,
    devices: &[DeviceConfig],
    tags: &[TagConfig],
) -> Result<(), TagMapError> {
    let mut spans: Vec<(usize, Table, u32, u32, usize)> = tags
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let start = u32::from(t.address);
            (t.device, t.table, start, start + u32::from(t.width()), i)
        })
        .collect();
    spans.sort_by_key(|&(device, table, start, _, i)| (device, table, start, i));
    for (k, &(device, table, _, end, i)) in spans.iter().enumerate() {
        for &(d2, t2, s2, _, j) in &spans[k + 1..] {
            if d2 != device || t2 != table || s2 >= end {
                break;
            }
            let (a, b) = (&tags[i], &tags[j]);
            let alias = a.address == b.address
                && a.data_type == b.data_type
                && a.word_order == b.word_order;
            if alias {
                continue;
            }
            let (first, later) = if i < j { (a, b) } else { (b, a) };
            if a.address == b.address && a.data_type == b.data_type {
                return Err(c.err(
                    &format!("tag '{}'", later.name),
                    "word_order",
                    format!(
                        "{} at {} {} of device '{}' is also tag '{}' with word order {}: \
                         one register pair has one word order",
                        later.data_type,
                        later.table,
                        later.address,
                        devices[device].name,
                        first.name,
                        first.word_order.as_str()
                    ),
                ));
            }
            return Err(c.err(
                &format!("tag '{}'", later.name),
                "address",
                format!(
                    "{} {}..={} of device '{}' overlaps tag '{}' ({} at {} {}); \
                         tags may share registers only with the same type and address",
                    later.table,
                    later.address,
                    u32::from(later.address) + u32::from(later.width()) - 1,
                    devices[device].name,
                    first.name,
                    first.data_type,
                    first.table,
                    first.address
                ),
            ));
        }
    }
    Ok(())
}
