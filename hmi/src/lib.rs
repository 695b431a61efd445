//! The control-room HMI: plain HTML, CSS and JavaScript, embedded in the
//! binary at compile time, so `remine` serves it with no build step and
//! nothing generated is committed.
//!
//! The pages talk to the API under `/api/v1` only: a session from
//! `POST /api/v1/session` (the cookie is HttpOnly; the page echoes the
//! session's CSRF token in `X-Remine-CSRF` on state-changing requests),
//! live values and alarm events from the server-sent events of
//! `GET /api/v1/stream?alarms=true`, held for all tabs of a browser by one
//! shared worker (`stream-worker.js`; a tab without shared workers opens
//! its own stream).
//!
//! The assets are ES modules, one per screen: `app.js` (login, idle
//! timeout, routing), `core.js` (API client, live values with quality and
//! staleness, dialogs), `overview.js` (the SVG mimic), `units.js` (line
//! detail, permissives, commands), `alarms.js` (table, acknowledge, shelve,
//! sound), `trends.js` (canvas trends from the historian), `lots.js`
//! (search, detail, genealogy graph, Sankey), `recovery.js`, `recipes.js`
//! (history, diff, editor, signatures), `audit.js` and `tags.js`. No chart
//! library and nothing from another origin: the plant network is offline.
//!
//! ```
//! let index = remine_hmi::asset("index.html").unwrap();
//! assert_eq!(index.content_type, "text/html; charset=utf-8");
//! ```

/// One embedded file.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    pub bytes: &'static [u8],
    pub content_type: &'static str,
}

const FILES: &[(&str, &[u8], &str)] = &[
    (
        "index.html",
        include_bytes!("../assets/index.html"),
        "text/html; charset=utf-8",
    ),
    (
        "style.css",
        include_bytes!("../assets/style.css"),
        "text/css; charset=utf-8",
    ),
    (
        "app.js",
        include_bytes!("../assets/app.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "core.js",
        include_bytes!("../assets/core.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "overview.js",
        include_bytes!("../assets/overview.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "units.js",
        include_bytes!("../assets/units.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "alarms.js",
        include_bytes!("../assets/alarms.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "trends.js",
        include_bytes!("../assets/trends.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "lots.js",
        include_bytes!("../assets/lots.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "recovery.js",
        include_bytes!("../assets/recovery.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "recipes.js",
        include_bytes!("../assets/recipes.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "audit.js",
        include_bytes!("../assets/audit.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "tags.js",
        include_bytes!("../assets/tags.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "stream-worker.js",
        include_bytes!("../assets/stream-worker.js"),
        "text/javascript; charset=utf-8",
    ),
];

/// The names of every asset.
pub const NAMES: [&str; 14] = [
    "index.html",
    "style.css",
    "app.js",
    "core.js",
    "overview.js",
    "units.js",
    "alarms.js",
    "trends.js",
    "lots.js",
    "recovery.js",
    "recipes.js",
    "audit.js",
    "tags.js",
    "stream-worker.js",
];

/// The asset called `name`, if there is one.
pub fn asset(name: &str) -> Option<Asset> {
    FILES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, bytes, content_type)| Asset {
            bytes,
            content_type,
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_asset_is_served_and_unknown_names_are_not() {
        for name in super::NAMES {
            assert!(!super::asset(name).unwrap().bytes.is_empty(), "{name}");
        }
        assert!(super::asset("../Cargo.toml").is_none());
    }

    #[test]
    fn every_module_the_pages_import_is_an_asset() {
        for name in super::NAMES.iter().filter(|n| n.ends_with(".js")) {
            let text = std::str::from_utf8(super::asset(name).unwrap().bytes).unwrap();
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let module = line.split("\"./").nth(1).and_then(|r| r.split('"').next());
                let module = module.unwrap_or_else(|| panic!("{name}: import without ./: {line}"));
                assert!(
                    super::asset(module).is_some(),
                    "{name} imports {module}, which is not embedded"
                );
            }
        }
    }

    #[test]
    fn the_pages_load_nothing_from_another_origin() {
        for name in super::NAMES {
            let text = std::str::from_utf8(super::asset(name).unwrap().bytes).unwrap();
            for needle in ["http://", "https://", "//cdn"] {
                let found = text
                    .lines()
                    .any(|l| l.contains(needle) && !l.contains("http://www.w3.org/2000/svg"));
                assert!(!found, "{name} refers to another origin ({needle})");
            }
        }
    }
}
