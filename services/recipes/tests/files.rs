//! The two file formats at their edges: equipment catalogues refused with
//! the field at fault, and the canonical recipe form reading back exactly.

#![allow(clippy::unwrap_used)]

use remine_domain::recipe::rules::Requirement;
use remine_recipes::{parse_catalogue, parse_recipe, read_recipe, render_recipe};

const CATALOGUE: &str = r#"line = "mechanical"
[parameters.dryer_temperature]
unit = "degC"
min = 90
max = 120
requirement = "always"
tag = "Mechanical/Dryer/TemperatureSetpoint"
description = "Vacuum dryer temperature"
"#;

fn catalogue_error(from: &str, to: &str) -> String {
    let text = CATALOGUE.replace(from, to);
    assert_ne!(text, CATALOGUE, "{from}");
    parse_catalogue(&text, "eq.toml").unwrap_err().to_string()
}

#[test]
fn a_catalogue_reads_limits_requirement_and_tag() {
    let c = parse_catalogue(CATALOGUE, "eq.toml").unwrap();
    let cap = c.capability("dryer_temperature").unwrap();
    assert_eq!(cap.min().to_string(), "90 degC");
    assert_eq!(cap.requirement(), Requirement::Always);
    assert_eq!(
        cap.tag_template(),
        Some("Mechanical/Dryer/TemperatureSetpoint")
    );
}

#[test]
fn a_catalogue_refuses_each_fault_at_its_field() {
    let cases = [
        (
            "unit = \"degC\"",
            "unit = \"furlong\"",
            "eq.toml:3: parameter dryer_temperature: unit 'furlong' is invalid",
        ),
        (
            "min = 90",
            "min = 130",
            "eq.toml:2: parameter dryer_temperature: min 130 degC is above max 120 degC",
        ),
        (
            "max = 120",
            "max = \"hot\"",
            "eq.toml:5: parameter dryer_temperature: max must be a number, got the string \"hot\"",
        ),
        (
            "requirement = \"always\"",
            "requirement = \"never\"",
            "eq.toml:6: parameter dryer_temperature: requirement 'never' is invalid",
        ),
        (
            "requirement = \"always\"\n",
            "",
            "eq.toml:2: parameter dryer_temperature: missing requirement",
        ),
        (
            "description = ",
            "colour = ",
            "eq.toml:8: parameter dryer_temperature: unknown key colour",
        ),
        (
            "tag = \"Mechanical/Dryer/TemperatureSetpoint\"",
            "tag = \"no tag here\"",
            "eq.toml:2: parameter dryer_temperature: tag no tag here",
        ),
        (
            "line = \"mechanical\"",
            "line = \"kitchen\"",
            "eq.toml:1: line 'kitchen' is invalid",
        ),
        (
            "line = \"mechanical\"",
            "lines = \"mechanical\"",
            "eq.toml:1: unexpected lines",
        ),
    ];
    for (from, to, expected) in cases {
        let e = catalogue_error(from, to);
        assert!(e.starts_with(expected), "{from} -> {to}: {e}");
    }
}

#[test]
fn the_canonical_form_keeps_descriptions_with_quotes_and_odd_numbers() {
    let text = r#"line = "discharge"
chemistry = "NMC811"
description = "A \"quoted\" word, a back\\slash, ünïcode and a\nnew line"
[discharge.discharge.run]
max_current = { value = 0.1, unit = "A", min = 1e-7, max = 1e20 }
end_voltage_per_cell = { value = -0.0, unit = "mV", min = -5.5, max = 1_000 }
ratio = { value = 1.5, unit = "x", min = 0x1, max = 2 }
"#;
    let r = parse_recipe(text, "odd.toml").unwrap();
    let rendered = render_recipe(&r);
    assert_eq!(parse_recipe(&rendered, "again").unwrap(), r, "{rendered}");
    assert!(
        rendered.contains("max_current = { value = 0.1, unit = \"A\", min = 1e-7, max = 1e20 }"),
        "{rendered}"
    );
    assert!(
        rendered.contains("unit = \"1\", min = 1, max = 2"),
        "{rendered}"
    );
}

#[test]
fn the_canonical_form_keeps_the_order_of_phases_and_parameters() {
    let text = "line = \"hydromet\"\nchemistry = \"LFP\"\n[z.z.z]\nb = { value = 1, unit = \"pH\", min = 0, max = 2 }\na = { value = 1, unit = \"pH\", min = 0, max = 2 }\n[a.a.a]\nc = { value = 1, unit = \"pH\", min = 0, max = 2 }\n";
    let r = parse_recipe(text, "order.toml").unwrap();
    let names: Vec<String> = r.parameters().map(|(_, p)| p.name().to_string()).collect();
    assert_eq!(names, ["b", "a", "c"]);
    let rendered = render_recipe(&r);
    assert!(
        rendered.find("[z.z.z]") < rendered.find("[a.a.a]"),
        "{rendered}"
    );
}

#[test]
fn read_recipe_names_the_path_of_a_file_it_cannot_read() {
    let e = read_recipe(std::path::Path::new("/nonexistent/hydromet-lfp.toml")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/hydromet-lfp.toml: cannot read"),
        "{e}"
    );
}

#[test]
fn a_recipe_without_line_or_chemistry_says_which_is_missing() {
    let e = parse_recipe(
        "chemistry = \"LFP\"\n[a.b.c]\nx = { value = 1, unit = \"pH\", min = 0, max = 2 }",
        "f.toml",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "f.toml:1: missing line = \"discharge\" | \"mechanical\" | \"hydromet\""
    );
    let e = parse_recipe("line = \"hydromet\"\nchemistry = \"NMC999\"", "f.toml").unwrap_err();
    assert!(e.to_string().starts_with("f.toml:2: chemistry"), "{e}");
}
