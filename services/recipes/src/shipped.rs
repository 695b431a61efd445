//! The default recipes and equipment catalogues that ship with remine,
//! compiled into the binary from the repository's `recipes/` directory (the
//! product never reads the repository at run time).

use crate::{parse_catalogue, parse_recipe};
use remine_domain::recipe::Recipe;
use remine_domain::recipe::rules::EquipmentCatalogue;

macro_rules! shipped {
    ($name:literal) => {
        ($name, include_str!(concat!("../../../recipes/", $name)))
    };
}

/// The shipped recipe files: name (under `recipes/`) and text.
pub const SHIPPED_RECIPE_FILES: [(&str, &str); 21] = [
    shipped!("discharge-nmc111.toml"),
    shipped!("discharge-nmc532.toml"),
    shipped!("discharge-nmc622.toml"),
    shipped!("discharge-nmc811.toml"),
    shipped!("discharge-nca.toml"),
    shipped!("discharge-lfp.toml"),
    shipped!("discharge-lmo.toml"),
    shipped!("mechanical-nmc111.toml"),
    shipped!("mechanical-nmc532.toml"),
    shipped!("mechanical-nmc622.toml"),
    shipped!("mechanical-nmc811.toml"),
    shipped!("mechanical-nca.toml"),
    shipped!("mechanical-lfp.toml"),
    shipped!("mechanical-lmo.toml"),
    shipped!("hydromet-nmc111.toml"),
    shipped!("hydromet-nmc532.toml"),
    shipped!("hydromet-nmc622.toml"),
    shipped!("hydromet-nmc811.toml"),
    shipped!("hydromet-nca.toml"),
    shipped!("hydromet-lfp.toml"),
    shipped!("hydromet-lmo.toml"),
];

/// The shipped equipment catalogue files: name (under `recipes/`) and text.
pub const SHIPPED_CATALOGUE_FILES: [(&str, &str); 3] = [
    shipped!("equipment/discharge.toml"),
    shipped!("equipment/mechanical.toml"),
    shipped!("equipment/hydromet.toml"),
];

/// The equipment catalogues of the three lines, as shipped. A file that
/// failed to parse would be left out (and logged); the crate's tests keep
/// every shipped file valid.
pub fn shipped_catalogues() -> Vec<EquipmentCatalogue> {
    SHIPPED_CATALOGUE_FILES
        .iter()
        .filter_map(|(name, text)| {
            parse_catalogue(text, &format!("recipes/{name}"))
                .inspect_err(|e| tracing::error!(error = %e, "shipped catalogue does not parse"))
                .ok()
        })
        .collect()
}

/// The 21 default recipes (every line and chemistry), with their file
/// names, as shipped. A file that failed to parse would be left out (and
/// logged); the crate's tests keep every shipped file valid.
pub fn shipped_recipes() -> Vec<(String, Recipe)> {
    SHIPPED_RECIPE_FILES
        .iter()
        .filter_map(|(name, text)| {
            parse_recipe(text, &format!("recipes/{name}"))
                .inspect_err(|e| tracing::error!(error = %e, "shipped recipe does not parse"))
                .ok()
                .map(|r| (name.to_string(), r))
        })
        .collect()
}
