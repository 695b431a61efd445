//! The Modbus tag map: what parses, and how each mistake is reported (file, item, field).

use remine_domain::Access;
use remine_modbus::{DataType, ModbusConfig, ModbusError, Table, WordOrder};

const DEVICE: &str = "[[device]]\nname = \"plc\"\naddress = \"127.0.0.1:502\"\nunit_id = 1\n";

fn tag(fields: &str) -> String {
    format!(
        "[[tag]]\nname = \"Line/Unit/Signal\"\ndevice = \"plc\"\ntable = \"holding\"\naddress = 0\ntype = \"u16\"\n{fields}\n"
    )
}

/// Parses `toml` and expects an error whose message is exactly `expected`.
fn check(toml: &str, expected: &str) {
    match ModbusConfig::from_toml_str(toml, "plant.toml") {
        Ok(_) => panic!("accepted, expected: {expected}\n---\n{toml}"),
        Err(e) => assert_eq!(e.to_string(), expected, "\n---\n{toml}"),
    }
}

/// The tag-map text with a tag whose fields `tag(...)` leaves out replaced.
fn with(line: &str, replacement: &str) -> String {
    format!("{DEVICE}{}", tag("").replace(line, replacement))
}

#[test]
fn a_duplicate_tag_name_is_refused() {
    check(
        &format!(
            "{DEVICE}{}{}",
            tag(""),
            tag("").replace("address = 0", "address = 1")
        ),
        "plant.toml: tag 'Line/Unit/Signal': field 'name': duplicate tag name (first defined as tag #1)",
    );
}

#[test]
fn a_tag_on_an_unknown_device_is_refused() {
    check(
        &with("device = \"plc\"", "device = \"plc2\""),
        "plant.toml: tag 'Line/Unit/Signal': field 'device': unknown device 'plc2' (devices: plc)",
    );
}

#[test]
fn overlapping_registers_of_different_types_are_refused() {
    let a = tag("")
        .replace("type = \"u16\"", "type = \"f32\"")
        .replace("address = 0", "address = 10");
    let b = tag("")
        .replace("Signal", "Other")
        .replace("address = 0", "address = 11");
    check(
        &format!("{DEVICE}{a}{b}"),
        "plant.toml: tag 'Line/Unit/Other': field 'address': holding 11..=11 of device 'plc' overlaps \
         tag 'Line/Unit/Signal' (f32 at holding 10); tags may share registers only with the same type and address",
    );
}

#[test]
fn two_f32_that_overlap_by_one_register_are_refused() {
    let a = tag("").replace("type = \"u16\"", "type = \"f32\"");
    let b = a
        .replace("Signal", "Other")
        .replace("address = 0", "address = 1");
    let err = ModbusConfig::from_toml_str(&format!("{DEVICE}{a}{b}"), "plant.toml").unwrap_err();
    assert!(
        err.to_string().contains("overlaps tag 'Line/Unit/Signal'"),
        "{err}"
    );
}

#[test]
fn aliases_and_bits_of_one_register_may_share_it() {
    let bit = |n: &str, b: u8| {
        tag(&format!("bit = {b}"))
            .replace("Signal", n)
            .replace("type = \"u16\"", "type = \"bool\"")
    };
    let alias = tag("scale = 0.1").replace("Signal", "Alias");
    let toml = format!(
        "{DEVICE}{}{alias}{}{}",
        tag(""),
        bit("B0", 0).replace("address = 0", "address = 1"),
        bit("B1", 1).replace("address = 0", "address = 1")
    );
    let config = ModbusConfig::from_toml_str(&toml, "plant.toml").unwrap();
    assert_eq!(config.tags().len(), 4);
}

#[test]
fn the_same_address_in_another_table_or_device_is_no_overlap() {
    let other_device = DEVICE.replace("\"plc\"", "\"plc2\"");
    let toml = format!(
        "{DEVICE}{other_device}{}{}{}",
        tag(""),
        tag("")
            .replace("Signal", "Input")
            .replace("holding", "input")
            .replace("type = \"u16\"", "type = \"f32\""),
        tag("")
            .replace("Signal", "Other")
            .replace("device = \"plc\"", "device = \"plc2\"")
            .replace("type = \"u16\"", "type = \"i32\""),
    );
    assert!(ModbusConfig::from_toml_str(&toml, "plant.toml").is_ok());
}

#[test]
fn an_unknown_type_name_is_refused() {
    check(
        &with("type = \"u16\"", "type = \"u64\""),
        "plant.toml: tag 'Line/Unit/Signal': field 'type': unknown type 'u64' (expected u16, i16, u32, i32, f32 or bool)",
    );
}

#[test]
fn an_unknown_table_is_refused() {
    check(
        &with("table = \"holding\"", "table = \"holdings\""),
        "plant.toml: tag 'Line/Unit/Signal': field 'table': unknown table 'holdings' (expected holding, input, coil or discrete)",
    );
}

#[test]
fn min_above_max_is_refused() {
    check(
        &format!(
            "{DEVICE}{}",
            tag("access = \"read_write\"\nmin = 10\nmax = 5")
        ),
        "plant.toml: tag 'Line/Unit/Signal': field 'min': min 10 is above max 5",
    );
}

#[test]
fn a_write_limit_on_a_read_only_tag_is_refused() {
    check(
        &format!("{DEVICE}{}", tag("min = 0\nmax = 5")),
        "plant.toml: tag 'Line/Unit/Signal': field 'min': a write limit on a read-only tag: \
         set access = \"read_write\" or remove min/max",
    );
}

#[test]
fn half_a_limit_is_refused() {
    check(
        &format!("{DEVICE}{}", tag("access = \"read_write\"\nmin = 0")),
        "plant.toml: tag 'Line/Unit/Signal': field 'max': 'min' is given without 'max'",
    );
}

#[test]
fn a_writable_input_register_is_refused() {
    check(
        &format!(
            "{DEVICE}{}",
            tag("access = \"read_write\"").replace("holding", "input")
        ),
        "plant.toml: tag 'Line/Unit/Signal': field 'access': the input table cannot be written: use access = \"read\"",
    );
}

#[test]
fn an_unknown_access_is_refused() {
    check(
        &format!("{DEVICE}{}", tag("access = \"write\"")),
        "plant.toml: tag 'Line/Unit/Signal': field 'access': unknown access 'write' (expected read or read_write)",
    );
}

#[test]
fn a_number_on_a_coil_is_refused() {
    check(
        &with("table = \"holding\"", "table = \"coil\""),
        "plant.toml: tag 'Line/Unit/Signal': field 'type': the coil table holds single bits: use type \"bool\", not \"u16\"",
    );
}

#[test]
fn a_bool_on_a_register_needs_a_bit() {
    check(
        &with("type = \"u16\"", "type = \"bool\""),
        "plant.toml: tag 'Line/Unit/Signal': field 'bit': a bool on the holding table needs the bit number (0-15)",
    );
    check(
        &format!(
            "{DEVICE}{}",
            tag("bit = 16").replace("type = \"u16\"", "type = \"bool\"")
        ),
        "plant.toml: tag 'Line/Unit/Signal': field 'bit': 16 is outside 0..=15",
    );
    check(
        &format!("{DEVICE}{}", tag("bit = 1")),
        "plant.toml: tag 'Line/Unit/Signal': field 'bit': only a bool has a bit number, not a u16",
    );
}

#[test]
fn a_word_order_only_fits_32_bit_types() {
    check(
        &format!("{DEVICE}{}", tag("word_order = \"little\"")),
        "plant.toml: tag 'Line/Unit/Signal': field 'word_order': a u16 is one register and has no word order",
    );
    check(
        &format!(
            "{DEVICE}{}",
            tag("word_order = \"middle\"").replace("u16", "f32")
        ),
        "plant.toml: tag 'Line/Unit/Signal': field 'word_order': unknown word order 'middle' (expected big or little)",
    );
}

#[test]
fn a_zero_scale_is_refused() {
    check(
        &format!("{DEVICE}{}", tag("scale = 0")),
        "plant.toml: tag 'Line/Unit/Signal': field 'scale': 0 is not a finite, non-zero number",
    );
}

#[test]
fn a_value_past_the_last_register_is_refused() {
    check(
        &with("address = 0", "address = 65535").replace("u16", "u32"),
        "plant.toml: tag 'Line/Unit/Signal': field 'address': a u32 at 65535 runs past address 65535",
    );
    check(
        &with("address = 0", "address = 70000"),
        "plant.toml: tag 'Line/Unit/Signal': field 'address': 70000 is outside 0..=65535",
    );
}

#[test]
fn a_malformed_tag_name_is_reported_by_position() {
    let err = ModbusConfig::from_toml_str(&with("Line/Unit/Signal", "Line/Signal"), "plant.toml")
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("plant.toml: tag #1: field 'name': tag name 'Line/Signal' is invalid"),
        "{err}"
    );
}

#[test]
fn device_mistakes_name_the_device_and_field() {
    let dev =
        |line: &str, replacement: &str| format!("{}{}", DEVICE.replace(line, replacement), tag(""));
    check(
        &dev("address = \"127.0.0.1:502\"", "address = \"127.0.0.1\""),
        "plant.toml: device 'plc': field 'address': '127.0.0.1' is not host:port",
    );
    check(
        &dev("address = \"127.0.0.1:502\"", "address = \"127.0.0.1:0\""),
        "plant.toml: device 'plc': field 'address': '127.0.0.1:0' has no port between 1 and 65535",
    );
    check(
        &dev("unit_id = 1", "unit_id = 300"),
        "plant.toml: device 'plc': field 'unit_id': 300 is outside 0..=255",
    );
    check(
        &dev("unit_id = 1", "unit_id = 1\npoll_interval_ms = 0"),
        "plant.toml: device 'plc': field 'poll_interval_ms': 0 is outside 10..=3600000",
    );
    check(
        &dev(
            "unit_id = 1",
            "unit_id = 1\nreconnect_min_ms = 5000\nreconnect_max_ms = 1000",
        ),
        "plant.toml: device 'plc': field 'reconnect_min_ms': 5000 is above reconnect_max_ms 1000",
    );
    check(
        &format!("{DEVICE}{DEVICE}"),
        "plant.toml: device 'plc': field 'name': duplicate device name",
    );
}

#[test]
fn unknown_fields_and_bad_toml_name_the_file() {
    let err = ModbusConfig::from_toml_str(&format!("{DEVICE}{}", tag("scael = 2")), "plant.toml")
        .unwrap_err();
    assert!(matches!(err, ModbusError::Syntax { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("plant.toml: ") && err.to_string().contains("scael"),
        "{err}"
    );
    let err = ModbusConfig::from_toml_str("[[device]\n", "plant.toml").unwrap_err();
    assert!(err.to_string().starts_with("plant.toml: "), "{err}");
}

#[test]
fn from_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("modbus.toml");
    let err = ModbusConfig::from_file(&path).unwrap_err();
    assert!(matches!(err, ModbusError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("modbus.toml"), "{err}");

    std::fs::write(&path, with("type = \"u16\"", "type = \"u8\"")).unwrap();
    let err = ModbusConfig::from_file(&path).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "{}: tag 'Line/Unit/Signal': field 'type'",
            path.display()
        )),
        "{err}"
    );
}

#[test]
fn defaults_fill_what_a_tag_leaves_out() {
    let config =
        ModbusConfig::from_toml_str(&format!("{DEVICE}{}", tag("")), "plant.toml").unwrap();
    let d = &config.devices()[0];
    assert_eq!(
        (d.host(), d.port(), d.unit_id(), d.max_gap()),
        ("127.0.0.1", 502, 1, 0)
    );
    assert_eq!(d.poll_interval().as_millis(), 1000);
    assert_eq!(d.request_timeout().as_millis(), 1000);
    let t = &config.tags()[0];
    assert_eq!(
        (t.table(), t.address(), t.data_type(), t.word_order()),
        (Table::Holding, 0, DataType::U16, WordOrder::Big)
    );
    assert_eq!(
        (t.scale(), t.offset(), t.unit(), t.access(), t.limits()),
        (1.0, 0.0, "", Access::Read, None)
    );
}

/// The complete example in plc-adapters/README.md parses.
#[test]
fn the_readme_example_parses() {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("<!-- modbus-example -->")
        .expect("README marks its Modbus example");
    let block = &readme[start..];
    let body = &block[block.find("```toml\n").unwrap() + 8..];
    let body = &body[..body.find("```").unwrap()];
    let config = ModbusConfig::from_toml_str(body, "README.md").unwrap();
    assert!(config.tags().len() >= 5);
}

// ---- poll groups, connections, word order ------------------------------------

const GROUPS: &str = "[[device.poll_group]]\nname = \"fast\"\ninterval_ms = 100\n\
                      [[device.poll_group]]\nname = \"slow\"\ninterval_ms = 60000\n";

#[test]
fn tags_name_a_poll_group_of_their_device_or_the_device_default() {
    let toml = format!(
        "{DEVICE}poll_interval_ms = 500\n{GROUPS}{}{}",
        tag("poll_group = \"slow\""),
        tag("")
            .replace("Signal", "Default")
            .replace("address = 0", "address = 1")
    );
    let config = ModbusConfig::from_toml_str(&toml, "plant.toml").unwrap();
    let device = &config.devices()[0];
    let groups: Vec<(&str, u128)> = device
        .poll_groups()
        .iter()
        .map(|g| (g.name(), g.interval().as_millis()))
        .collect();
    assert_eq!(groups, [("fast", 100), ("slow", 60_000)]);
    assert_eq!(device.poll_interval().as_millis(), 500);
    assert_eq!(config.tags()[0].poll_group_index(), Some(1));
    assert_eq!(config.tags()[1].poll_group_index(), None);
}

#[test]
fn an_unknown_poll_group_names_the_tag_and_the_groups_there_are() {
    check(
        &format!("{DEVICE}{GROUPS}{}", tag("poll_group = \"medium\"")),
        "plant.toml: tag 'Line/Unit/Signal': field 'poll_group': unknown poll group 'medium' of \
         device 'plc' (poll groups: fast, slow)",
    );
    check(
        &format!("{DEVICE}{}", tag("poll_group = \"fast\"")),
        "plant.toml: tag 'Line/Unit/Signal': field 'poll_group': unknown poll group 'fast' of \
         device 'plc' (it has none: add a [[device.poll_group]] or remove 'poll_group')",
    );
}

#[test]
fn a_poll_group_defined_twice_is_refused() {
    check(
        &format!("{DEVICE}{GROUPS}[[device.poll_group]]\nname = \"fast\"\ninterval_ms = 200\n"),
        "plant.toml: device 'plc' poll group 'fast': field 'name': duplicate poll group name on device 'plc'",
    );
}

#[test]
fn a_poll_group_needs_a_usable_name_and_an_interval_in_range() {
    let group = |name: &str, ms: i64| {
        format!("{DEVICE}[[device.poll_group]]\nname = \"{name}\"\ninterval_ms = {ms}\n")
    };
    check(
        &group("fast", 5),
        "plant.toml: device 'plc' poll group 'fast': field 'interval_ms': 5 is outside 10..=3600000",
    );
    check(
        &group("fast", 3_600_001),
        "plant.toml: device 'plc' poll group 'fast': field 'interval_ms': 3600001 is outside 10..=3600000",
    );
    check(
        &group("very fast", 100),
        "plant.toml: device 'plc' poll group 'very fast': field 'name': a poll group name is letters, \
         digits, '_', '-' and '.', not empty",
    );
    let missing = format!("{DEVICE}[[device.poll_group]]\nname = \"fast\"\n");
    let err = ModbusConfig::from_toml_str(&missing, "plant.toml").unwrap_err();
    assert!(
        err.to_string().contains("missing field `interval_ms`"),
        "{err}"
    );
}

#[test]
fn connections_are_one_by_default_and_at_most_eight() {
    let config = ModbusConfig::from_toml_str(DEVICE, "plant.toml").unwrap();
    assert_eq!(config.devices()[0].connections(), 1);
    let config =
        ModbusConfig::from_toml_str(&format!("{DEVICE}connections = 8\n"), "plant.toml").unwrap();
    assert_eq!(config.devices()[0].connections(), 8);
    for n in [0, 9] {
        check(
            &format!("{DEVICE}connections = {n}\n"),
            &format!("plant.toml: device 'plc': field 'connections': {n} is outside 1..=8"),
        );
    }
}

#[test]
fn the_comms_alarm_delay_is_zero_by_default_and_at_most_an_hour() {
    let config = ModbusConfig::from_toml_str(DEVICE, "plant.toml").unwrap();
    assert!(config.devices()[0].comms_alarm_delay().is_zero());
    check(
        &format!("{DEVICE}comms_alarm_delay_ms = 3600001\n"),
        "plant.toml: device 'plc': field 'comms_alarm_delay_ms': 3600001 is outside 0..=3600000",
    );
}

#[test]
fn one_value_read_with_two_word_orders_is_refused_with_both_names() {
    let a = tag("").replace("type = \"u16\"", "type = \"f32\"");
    let b = tag("word_order = \"little\"")
        .replace("Signal", "Swapped")
        .replace("type = \"u16\"", "type = \"f32\"");
    check(
        &format!("{DEVICE}{a}{b}"),
        "plant.toml: tag 'Line/Unit/Swapped': field 'word_order': f32 at holding 0 of device 'plc' is \
         also tag 'Line/Unit/Signal' with word order big: one register pair has one word order",
    );
}

#[test]
fn overlapping_tags_in_different_poll_groups_are_still_refused() {
    let a = tag("").replace("type = \"u16\"", "type = \"u32\"");
    let b = tag("poll_group = \"fast\"").replace("Signal", "Other");
    check(
        &format!("{DEVICE}{GROUPS}{a}{b}"),
        "plant.toml: tag 'Line/Unit/Other': field 'address': holding 0..=0 of device 'plc' overlaps \
         tag 'Line/Unit/Signal' (u32 at holding 0); tags may share registers only with the same type and address",
    );
}
