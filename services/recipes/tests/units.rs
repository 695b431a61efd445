//! Units in recipe files: a recipe written in K, kg/m3 and M is the same
//! recipe as its twin in degC, g/L and mol/L, validates the same, and
//! diffs empty; a real change shows with its units.

#![allow(clippy::unwrap_used)]

use remine_domain::recipe::diff;
use remine_recipes::{
    SHIPPED_RECIPE_FILES, check_recipe, parse_recipe, render_diff, shipped_catalogues,
};

fn shipped(name: &str) -> &'static str {
    SHIPPED_RECIPE_FILES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .unwrap()
}

/// Replaces one parameter's line in a recipe text.
fn with(text: &str, param: &str, new: &str) -> String {
    let prefix = format!("{param} = ");
    let mut found = false;
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with(&prefix) {
                found = true;
                format!("{prefix}{new}")
            } else {
                l.to_string()
            }
        })
        .collect();
    assert!(found, "{param}");
    out.join("\n")
}

/// The twin of hydromet-nmc622.toml in other units of the same quantities.
fn twin() -> String {
    let t = shipped("hydromet-nmc622.toml");
    let t = with(
        t,
        "leach_temperature",
        r#"{ value = 348.15, unit = "K", min = 343.15, max = 353.15 }"#,
    );
    let t = with(
        &t,
        "acid_concentration",
        r#"{ value = 2, unit = "M", min = 1.8, max = 2.2 }"#,
    );
    let t = with(
        &t,
        "solids_loading",
        r#"{ value = 120, unit = "kg/m3", min = 100, max = 150 }"#,
    );
    let t = with(
        &t,
        "end_free_acid",
        r#"{ value = 30, unit = "kg/m^3", min = 20, max = 40 }"#,
    );
    let t = with(
        &t,
        "leach_time",
        r#"{ value = 2, unit = "h", min = 1.5, max = 2.5 }"#,
    );
    let t = with(
        &t,
        "li2co3_temperature",
        r#"{ value = 92, unit = "°C", min = 90, max = 95 }"#,
    );
    with(
        &t,
        "li_feed_concentration",
        r#"{ value = 20, unit = "g/l", min = 15, max = 25 }"#,
    )
}

#[test]
fn a_recipe_in_kelvin_kg_per_m3_and_molar_validates_like_its_twin() {
    let text = twin();
    let r = parse_recipe(&text, "twin.toml").unwrap();
    assert_eq!(
        check_recipe(&r, "twin.toml", Some(&text), &shipped_catalogues()),
        vec![]
    );
}

#[test]
fn a_recipe_in_other_units_diffs_empty_against_its_twin() {
    let original = parse_recipe(shipped("hydromet-nmc622.toml"), "a").unwrap();
    let twin = parse_recipe(&twin(), "b").unwrap();
    assert_eq!(diff(&original, &twin), vec![]);
    assert_eq!(render_diff(&diff(&original, &twin)), "no differences\n");
}

#[test]
fn limits_beyond_the_capability_are_caught_whatever_the_unit() {
    // 368.15 K is 95 degC, above the leach tank's 90 degC.
    let text = with(
        shipped("hydromet-nmc622.toml"),
        "leach_temperature",
        r#"{ value = 368.15, unit = "K", min = 343.15, max = 368.15 }"#,
    );
    let r = parse_recipe(&text, "hot.toml").unwrap();
    let problems = check_recipe(&r, "hot.toml", Some(&text), &shipped_catalogues());
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0]
            .to_string()
            .contains("parameter leach_temperature: value 368.15 K is beyond the equipment's capability 60 degC ..= 90 degC"),
        "{}",
        problems[0]
    );
}

fn check_diff(param: &str, new: &str, expected: &str) {
    let old = parse_recipe(shipped("hydromet-nmc622.toml"), "a").unwrap();
    let new = parse_recipe(&with(shipped("hydromet-nmc622.toml"), param, new), "b").unwrap();
    assert_eq!(render_diff(&diff(&old, &new)), expected);
}

#[test]
fn a_diff_names_only_what_changed_with_units() {
    check_diff(
        "leach_temperature",
        r#"{ value = 78, unit = "degC", min = 70, max = 80 }"#,
        "~ leach_temperature (leach.dissolve.leach): value 75 degC -> 78 degC\n",
    );
    check_diff(
        "leach_temperature",
        r#"{ value = 348.15, unit = "K", min = 343.15, max = 358.15 }"#,
        "~ leach_temperature (leach.dissolve.leach): max 80 degC -> 358.15 K\n",
    );
    check_diff(
        "acid_concentration",
        r#"{ value = 2.1, unit = "M", min = 1.9, max = 2.2 }"#,
        "~ acid_concentration (leach.dissolve.leach): value 2 mol/L -> 2.1 mol/L, min 1.8 mol/L -> 1.9 mol/L\n",
    );
}

#[test]
fn a_diff_lists_added_and_removed_parameters_with_their_limits() {
    let nmc = parse_recipe(shipped("hydromet-nmc622.toml"), "a").unwrap();
    let nca = parse_recipe(shipped("hydromet-nca.toml"), "b").unwrap();
    let text = render_diff(&diff(&nmc, &nca));
    assert!(
        text.contains("- mn_sx_ph (solvent_extraction.mn_sx.extract): 3 pH [2.5 pH ..= 3.5 pH]\n"),
        "{text}"
    );
    let back = render_diff(&diff(&nca, &nmc));
    assert!(
        back.contains("+ mn_sx_oa_ratio (solvent_extraction.mn_sx.extract): 1 [0.8 ..= 1.2]\n"),
        "{back}"
    );
}
