//! The control-room HMI: plain HTML, CSS and JavaScript, embedded in the
//! binary at compile time, so `remine` serves it with no build step and
//! nothing generated is committed.
//!
//! The pages talk to the API under `/api/v1` only: a session from
//! `POST /api/v1/session`, live values from the server-sent events of
//! `GET /api/v1/stream`.
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
        "app.js",
        include_bytes!("../assets/app.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "style.css",
        include_bytes!("../assets/style.css"),
        "text/css; charset=utf-8",
    ),
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
        for name in ["index.html", "app.js", "style.css"] {
            assert!(!super::asset(name).unwrap().bytes.is_empty(), "{name}");
        }
        assert!(super::asset("../Cargo.toml").is_none());
    }
}
