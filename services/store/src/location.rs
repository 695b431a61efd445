//! Database URLs: which backend and where, and how to print them without
//! their passwords.

use remine_domain::ports::StoreError;
use std::path::{Path, PathBuf};

/// Where a store lives, parsed from its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// `sqlite::memory:`: one connection's private database.
    SqliteMemory,
    /// `sqlite://PATH` or `sqlite:PATH`.
    SqliteFile(PathBuf),
    /// `postgres://...` or `postgresql://...`, kept as given.
    Postgres(String),
}

impl Location {
    pub(crate) fn parse(url: &str) -> Result<Location, StoreError> {
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            return Ok(Location::Postgres(url.to_string()));
        }
        if lower.starts_with("sqlite:") {
            let rest = url["sqlite:".len()..].trim_start_matches("//");
            if rest == ":memory:" {
                return Ok(Location::SqliteMemory);
            }
            if rest.contains('?') {
                return Err(StoreError::Unavailable(format!(
                    "database URL '{}' has query parameters, which remine does not use: \
                     use sqlite://PATH",
                    redact(url)
                )));
            }
            if rest.is_empty() {
                return Err(StoreError::Unavailable(format!(
                    "database URL '{url}' has no path: use sqlite://PATH or sqlite::memory:"
                )));
            }
            return Ok(Location::SqliteFile(PathBuf::from(rest)));
        }
        Err(StoreError::Unavailable(format!(
            "unsupported database URL '{}': use sqlite://PATH or postgres://...",
            redact(url)
        )))
    }
}

/// The URL with any password replaced by `***`: the one in the user-info
/// part (`user:secret@host`) and any `password=` query parameter. When in
/// doubt it hides more rather than less.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (main, query) = match rest.find(['?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    // The last '@' ends the user-info even when a password holds '@' or '/'.
    let main = match main.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => main.to_string(),
    };
    let query = redact_query(query);
    format!("{scheme}://{main}{query}")
}

fn redact_query(query: &str) -> String {
    let Some(params) = query.strip_prefix('?') else {
        return query.to_string();
    };
    let params: Vec<String> = params
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((key, _)) if key.to_ascii_lowercase().contains("password") => {
                format!("{key}=***")
            }
            _ => p.to_string(),
        })
        .collect();
    format!("?{}", params.join("&"))
}

/// The sqlx URL of an SQLite file: the path made absolute (a relative first
/// segment would be read as a host name and lower-cased) and percent-encoded
/// byte by byte, so spaces, `%`, `?` and `#` in names survive.
pub(crate) fn sqlite_file_url(path: &Path) -> Result<String, StoreError> {
    let absolute = std::path::absolute(path).map_err(|e| {
        StoreError::Unavailable(format!(
            "cannot open SQLite database {}: {e}",
            path.display()
        ))
    })?;
    let Some(text) = absolute.to_str() else {
        return Err(StoreError::Unavailable(format!(
            "cannot open SQLite database {}: the path is not valid UTF-8",
            path.display()
        )));
    };
    let mut encoded = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(format!("sqlite://{encoded}?mode=rwc"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_redact(url: &str, expected: &str) {
        assert_eq!(redact(url), expected, "{url}");
    }

    #[test]
    fn passwords_are_hidden_and_nothing_else() {
        check_redact(
            "postgres://remine:s3cret@db.plant:5432/mes",
            "postgres://remine:***@db.plant:5432/mes",
        );
        check_redact(
            "postgres://remine@db.plant/mes",
            "postgres://remine@db.plant/mes",
        );
        check_redact(
            "postgres://db.plant/mes?user=a&password=s3cret",
            "postgres://db.plant/mes?user=a&password=***",
        );
        check_redact("postgres://u:pa/ss@wd@host/db", "postgres://u:***@host/db");
        check_redact("mysql://root:hunter2@h/db", "mysql://root:***@h/db");
        check_redact("sqlite::memory:", "sqlite::memory:");
    }

    fn check_parse(url: &str, expected: Location) {
        assert_eq!(Location::parse(url).unwrap(), expected, "{url}");
    }

    #[test]
    fn urls_name_their_backend() {
        check_parse("sqlite::memory:", Location::SqliteMemory);
        check_parse("sqlite://:memory:", Location::SqliteMemory);
        check_parse(
            "sqlite:///var/lib/remine/remine.db",
            Location::SqliteFile("/var/lib/remine/remine.db".into()),
        );
        check_parse(
            "sqlite://data/remine.db",
            Location::SqliteFile("data/remine.db".into()),
        );
        check_parse("sqlite:remine.db", Location::SqliteFile("remine.db".into()));
        check_parse(
            "postgres://h/db",
            Location::Postgres("postgres://h/db".into()),
        );
        check_parse(
            "postgresql://h/db",
            Location::Postgres("postgresql://h/db".into()),
        );
    }

    #[test]
    fn sqlite_urls_survive_odd_file_names() {
        let url = sqlite_file_url(Path::new("/tmp/a b/50%#1?.db")).unwrap();
        assert_eq!(url, "sqlite:///tmp/a%20b/50%25%231%3F.db?mode=rwc");
    }
}
