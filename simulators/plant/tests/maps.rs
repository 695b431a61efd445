//! The register maps and the node list: the shipped files load and are
//! consistent, broken files are refused with messages that name the fault,
//! values convert to registers as documented, and simulators/README.md
//! shows exactly what the files say.

use remine_sim::lines::discharge::{DischargeSignal, StationSignal};
use remine_sim::lines::mechanical::MechanicalSignal;
use remine_sim::maps::{
    Access, DISCHARGE_MAP, DataType, MECHANICAL_MAP, NoBlock, Placed, RegisterMap, SignalRef,
    SignalSet, Table, decode, encode,
};
use remine_sim::nodes::{HYDROMET_NODES, NodeList, NodeType};

type Discharge = RegisterMap<DischargeSignal, StationSignal>;
type Mechanical = RegisterMap<MechanicalSignal, NoBlock>;

fn discharge(stations: u16) -> Discharge {
    Discharge::parse("maps/discharge.toml", DISCHARGE_MAP, stations).expect("the shipped map loads")
}

fn mechanical() -> Mechanical {
    Mechanical::parse("maps/mechanical.toml", MECHANICAL_MAP, 0).expect("the shipped map loads")
}

#[test]
fn the_shipped_maps_load_for_any_station_count() {
    for n in [1, 4, 64] {
        let map = discharge(n);
        let per_station = StationSignal::ALL.len() * usize::from(n);
        assert_eq!(
            map.signals().len(),
            DischargeSignal::ALL.len() + per_station
        );
    }
    assert_eq!(discharge(4).unit_id(), 1);
    assert_eq!(mechanical().unit_id(), 2);
    let nodes =
        NodeList::parse("maps/hydromet.toml", HYDROMET_NODES).expect("the shipped node list loads");
    assert_eq!(nodes.units.len(), 7);
}

fn check_address<L: SignalSet, B: SignalSet>(
    map: &RegisterMap<L, B>,
    signal: SignalRef<L, B>,
    table: Table,
    address: u16,
) {
    let p = map.find(signal).expect("placed");
    assert_eq!((p.table, p.address), (table, address), "{signal:?}");
}

#[test]
fn station_blocks_repeat_every_hundred_registers_from_100() {
    let map = discharge(4);
    check_address(
        &map,
        SignalRef::Block(1, StationSignal::State),
        Table::Input,
        100,
    );
    check_address(
        &map,
        SignalRef::Block(2, StationSignal::State),
        Table::Input,
        200,
    );
    check_address(
        &map,
        SignalRef::Block(4, StationSignal::PackVoltage),
        Table::Input,
        404,
    );
    check_address(
        &map,
        SignalRef::Block(3, StationSignal::Command),
        Table::Holding,
        300,
    );
    check_address(
        &map,
        SignalRef::Block(1, StationSignal::Chemistry),
        Table::Holding,
        102,
    );
    check_address(
        &map,
        SignalRef::Line(DischargeSignal::SimTime),
        Table::Input,
        0,
    );
}

/// The load block and the setpoints can each be written in one request.
#[test]
fn the_writable_blocks_are_contiguous() {
    let map = discharge(1);
    let holding: Vec<&Placed<_, _>> = map
        .signals()
        .iter()
        .filter(|p| p.table == Table::Holding)
        .collect();
    let load_to_setpoints: Vec<u16> = holding
        .iter()
        .filter(|p| p.address >= 102)
        .map(|p| p.address)
        .collect();
    let mut next = 102u32;
    for p in holding.iter().filter(|p| p.address >= 102) {
        assert_eq!(
            u32::from(p.address),
            next,
            "gap before {:?} ({load_to_setpoints:?})",
            p.signal
        );
        next = p.last_address() + 1;
    }
    let mech = mechanical();
    let charge: Vec<u16> = mech
        .signals()
        .iter()
        .filter(|p| p.table == Table::Holding && p.address < 10)
        .map(|p| p.address)
        .collect();
    assert_eq!(charge, vec![0, 1, 2]);
}

#[test]
fn thirty_two_bit_values_sit_at_even_addresses_and_rw_means_holding() {
    let d = discharge(4);
    let m = mechanical();
    let all = d
        .signals()
        .iter()
        .map(|p| {
            (
                format!("{:?}", p.signal),
                p.table,
                p.address,
                p.data_type,
                p.access,
            )
        })
        .chain(m.signals().iter().map(|p| {
            (
                format!("{:?}", p.signal),
                p.table,
                p.address,
                p.data_type,
                p.access,
            )
        }));
    for (name, table, address, ty, access) in all {
        if ty.words() == 2 {
            assert_eq!(address % 2, 0, "{name}");
        }
        if access == Access::RW {
            assert_eq!(table, Table::Holding, "{name}");
        }
    }
}

fn check_refused(text: &str, stations: u16, message: &str) {
    let err = Discharge::parse("maps/discharge.toml", text, stations).expect_err("refused");
    let got = err.to_string();
    assert!(got.starts_with("maps/discharge.toml: "), "{got}");
    assert!(got.contains(message), "expected '{message}' in: {got}");
}

fn edit(from: &str, to: &str) -> String {
    assert!(DISCHARGE_MAP.contains(from), "{from}");
    DISCHARGE_MAP.replacen(from, to, 1)
}

#[test]
fn broken_maps_are_refused_with_the_fault_named() {
    check_refused(
        &edit(
            "name = \"cell_voltage\"\ntable = \"input\"\noffset = 6",
            "name = \"cell_voltage\"\ntable = \"input\"\noffset = 5",
        ),
        1,
        "'cell_voltage' (station 1) at input register 105 overlaps 'pack_voltage' (station 1) at input register 104..=105",
    );
    check_refused(
        &edit("name = \"alarms\"", "name = \"alarm\""),
        1,
        "unknown station signal 'alarm'",
    );
    check_refused(
        &edit("name = \"alarms\"", "name = \"state\""),
        1,
        "station signal 'state' is listed twice",
    );
    check_refused(
        &edit(
            "name = \"station_count\"\ntable = \"input\"\naddress = 2\ntype = \"u16\"\nscale = 1.0\nunit = \"\"\naccess = \"R\"",
            "name = \"station_count\"\ntable = \"input\"\naddress = 2\ntype = \"u16\"\nscale = 1.0\nunit = \"\"\naccess = \"RW\"",
        ),
        1,
        "line signal 'station_count': access RW but the simulator serves it as R",
    );
    check_refused(
        &edit("stride = 100", "stride = 10"),
        1,
        "does not fit in the stride of 10",
    );
    check_refused(DISCHARGE_MAP, 700, "above 65535");
    check_refused(
        &edit("unit_id = 1", "unit_id = 0"),
        1,
        "unit_id = 0: a Modbus unit id is between 1 and 247",
    );
    check_refused(
        &edit("default = 300.0", "default = 900.0"),
        1,
        "default = 900 is outside 1 ..= 600",
    );
    check_refused(&edit("type = \"u32\"", "type = \"u64\""), 1, "TOML");
    let without_hold = {
        let start = DISCHARGE_MAP
            .find("[[block.signal]]\nname = \"hold_time\"")
            .expect("hold_time");
        DISCHARGE_MAP[..start].to_string()
    };
    check_refused(&without_hold, 1, "station signal 'hold_time' is missing");
}

fn check_encoding(ty: DataType, value: f64, words: &[u16]) {
    assert_eq!(encode(ty, 1.0, value), words, "{ty} {value}");
    assert_eq!(decode(ty, 1.0, words), Some(value), "{ty} {words:?}");
}

#[test]
fn values_convert_to_registers_with_the_high_word_first() {
    check_encoding(DataType::F32, 1.0, &[0x3F80, 0x0000]);
    check_encoding(DataType::F32, -2.5, &[0xC020, 0x0000]);
    check_encoding(DataType::U32, 70_000.0, &[0x0001, 0x1170]);
    check_encoding(DataType::I32, -2.0, &[0xFFFF, 0xFFFE]);
    check_encoding(DataType::I16, -1.0, &[0xFFFF]);
    check_encoding(DataType::U16, 42.0, &[42]);
}

#[test]
fn integers_round_and_saturate_and_scale_applies_both_ways() {
    assert_eq!(encode(DataType::U16, 1.0, 70_000.0), vec![u16::MAX]);
    assert_eq!(encode(DataType::U16, 1.0, -3.0), vec![0]);
    assert_eq!(encode(DataType::U16, 0.1, 12.34), vec![123]);
    assert_eq!(decode(DataType::U16, 0.1, &[123]), Some(12.3));
    assert_eq!(
        decode(DataType::F32, 1.0, &[0x7FC0, 0]),
        None,
        "NaN is no value"
    );
    assert_eq!(decode(DataType::F32, 1.0, &[0x3F80]), None, "half a float");
}

fn check_nodes_refused(from: &str, to: &str, message: &str) {
    assert!(HYDROMET_NODES.contains(from), "{from}");
    let text = HYDROMET_NODES.replacen(from, to, 1);
    let err = NodeList::parse("maps/hydromet.toml", &text)
        .expect_err("refused")
        .to_string();
    assert!(err.contains(message), "expected '{message}' in: {err}");
}

#[test]
fn broken_node_lists_are_refused_with_the_fault_named() {
    check_nodes_refused(
        "urn:remine:sim:hydromet",
        "urn:other",
        "the simulator serves \"urn:remine:sim:hydromet\"",
    );
    check_nodes_refused(
        "name = \"Extraction\"",
        "name = \"Yield\"",
        "Leach: unknown variable 'Yield'",
    );
    check_nodes_refused("name = \"CoSX\"", "name = \"CuSX\"", "unknown unit 'CuSX'");
    check_nodes_refused(
        "methods = [\"Start\", \"Hold\", \"Stop\"]",
        "methods = [\"Start\", \"Hold\"]",
        "methods must list",
    );
    check_nodes_refused(
        "name = \"State\"\ntype = \"UInt16\"",
        "name = \"State\"\ntype = \"Double\"",
        "common: variable 'State': type Double but the simulator serves UInt16",
    );
    check_nodes_refused(
        "default = 75.0",
        "default = 175.0",
        "default = 175 is outside 40 ..= 95",
    );
}

#[test]
fn every_unit_has_state_command_and_rejection_status_and_analog_values_have_units() {
    let nodes = NodeList::parse("maps/hydromet.toml", HYDROMET_NODES).expect("loads");
    for u in &nodes.units {
        let names: Vec<&str> = u.variables.iter().map(|v| v.var.name()).collect();
        assert_eq!(
            &names[..3],
            ["State", "Command", "CommandRejected"],
            "{}",
            u.unit.name()
        );
        for v in &u.variables {
            if v.data_type == NodeType::Double {
                assert!(
                    !v.unece.is_empty(),
                    "{}.{} has no unit",
                    u.unit.name(),
                    v.var.name()
                );
            }
        }
    }
}

// --- simulators/README.md shows the files exactly ----------------------------

fn fmt(v: f64) -> String {
    format!("{v}")
}

fn modbus_row<L: SignalSet, B: SignalSet>(p: &Placed<L, B>, name: &str, place: String) -> String {
    let range = format!("{} ..= {}", fmt(p.min), fmt(p.max));
    let default = p.default.map(fmt).unwrap_or_default();
    let unit = if p.unit.is_empty() {
        "-".to_string()
    } else {
        p.unit.clone()
    };
    format!(
        "| `{name}` | {} | {place} | {} | {} | {unit} | {} | {range} | {default} | {} |",
        p.table,
        p.data_type,
        fmt(p.scale),
        p.access,
        p.description
    )
}

const MODBUS_HEADER: &str = "| Signal | Table | Address | Type | Scale | Unit | Access | Range | Default | Description |\n|---|---|---|---|---|---|---|---|---|---|";

fn discharge_tables() -> String {
    let map = discharge(1);
    let mut line = vec![MODBUS_HEADER.to_string()];
    let mut station = vec![MODBUS_HEADER.replace("| Address |", "| Offset (station 1) |")];
    for p in map.signals() {
        match p.signal {
            SignalRef::Line(s) => line.push(modbus_row(p, s.name(), p.address.to_string())),
            SignalRef::Block(_, s) => {
                let offset = p.address - 100;
                station.push(modbus_row(
                    p,
                    s.name(),
                    format!("+{offset} ({})", p.address),
                ))
            }
        }
    }
    format!(
        "{}\n\nStation block:\n\n{}",
        line.join("\n"),
        station.join("\n")
    )
}

fn mechanical_table() -> String {
    let map = mechanical();
    let mut rows = vec![MODBUS_HEADER.to_string()];
    for p in map.signals() {
        if let SignalRef::Line(s) = p.signal {
            rows.push(modbus_row(p, s.name(), p.address.to_string()));
        }
    }
    rows.join("\n")
}

fn hydromet_table() -> String {
    let nodes = NodeList::parse("maps/hydromet.toml", HYDROMET_NODES).expect("loads");
    let mut rows = vec![
        "| Node id (s=) | Browse path under Objects | Type | Access | EU (UNECE) | EURange | Default | Description |"
            .to_string(),
        "|---|---|---|---|---|---|---|---|".to_string(),
    ];
    for u in &nodes.units {
        let unit = u.unit.name();
        for v in &u.variables {
            let eu = if v.unece.is_empty() {
                "-".to_string()
            } else {
                format!("{} ({})", v.eu, v.unece)
            };
            rows.push(format!(
                "| `{unit}.{name}` | `{unit}/{name}` | {:?} | {} | {eu} | {} ..= {} | {} | {} |",
                v.data_type,
                v.access,
                fmt(v.low),
                fmt(v.high),
                v.default.map(fmt).unwrap_or_default(),
                v.description,
                name = v.var.name(),
            ));
        }
        for m in &nodes.methods {
            rows.push(format!(
                "| `{unit}.{name}` | `{unit}/{name}` | Method | call | - | - | | Same as writing Command = {code}. |",
                name = m.name(),
                code = m.code()
            ));
        }
    }
    rows.join("\n")
}

fn readme() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    std::fs::read_to_string(path).expect("simulators/README.md")
}

fn check_readme_section(marker: &str, expected: &str) {
    let text = readme();
    let open = format!("<!-- {marker}: generated by tests/maps.rs, keep in step -->\n");
    let close = format!("\n<!-- /{marker} -->");
    let start = text.find(&open).map(|i| i + open.len());
    let got = start.and_then(|s| text[s..].find(&close).map(|len| &text[s..s + len]));
    let Some(got) = got else {
        panic!("README has no {marker} section; it should read:\n{open}{expected}{close}");
    };
    assert!(
        got == expected,
        "README {marker} section is stale; it should read:\n{expected}\n(end)"
    );
}

#[test]
fn the_readme_shows_the_discharge_map_exactly() {
    check_readme_section("discharge-map", &discharge_tables());
}

#[test]
fn the_readme_shows_the_mechanical_map_exactly() {
    check_readme_section("mechanical-map", &mechanical_table());
}

#[test]
fn the_readme_shows_the_hydromet_nodes_exactly() {
    check_readme_section("hydromet-nodes", &hydromet_table());
}
