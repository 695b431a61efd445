//! Test support for remine: throwaway PostgreSQL clusters, the shared
//! examples folder, temporary data directories, and loud skips.
//!
//! This crate is a dev-dependency only; the product never links it. It exists
//! so that store tests and system tests talk to *real* parts (a real
//! PostgreSQL server on 127.0.0.1, real files) instead of mocks, and so that a
//! test which cannot run here says so loudly instead of passing in silence.
//!
//! Main items:
//! - [`TempPostgres`]: a PostgreSQL cluster in a temporary directory on a free
//!   port, stopped and removed when dropped (or, for the per-binary
//!   [`TempPostgres::shared`] cluster, when the test process exits);
//!   [`TempPostgres::fresh_database`] gives each test its own database;
//!   [`TempPostgres::stop`] and [`TempPostgres::start_again`] take the server
//!   away and bring it back on the same port;
//! - [`shared_dir`]: the `../shared` folder beside the workspace, if present;
//! - [`skip`]: the `SKIP: ...` line a test prints when it cannot run;
//! - [`temp_dir`]: a temporary data directory removed on drop;
//! - [`bench`]: process CPU time and medians, for benchmarks;
//! - [`lots`]: small lot graphs written through the store's ports;
//! - [`python`]: the Python protocol peers (pymodbus, asyncua) as child
//!   processes, and the loud skip without their venv.
//!
//! When no PostgreSQL server binaries are installed, [`TempPostgres::start`]
//! prints a `SKIP:` line and returns `None`; with `REMINE_REQUIRE_POSTGRES=1`
//! (CI sets it) it panics instead, so CI can never skip silently.
//!
//! ```no_run
//! use remine_testkit::TempPostgres;
//! if let Some(pg) = TempPostgres::shared("my_test") {
//!     let url = pg.fresh_database().expect("a fresh database");
//!     assert!(url.starts_with("postgres://postgres@127.0.0.1:"));
//! }
//! ```

pub mod bench;
pub mod lots;
mod postgres;
pub mod python;

pub use postgres::{StopMode, TempPostgres};

use std::path::{Path, PathBuf};

/// Why a piece of test support could not be set up. Each message names the
/// command, file or directory at fault.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    #[error("cannot create a temporary directory: {0}")]
    TempDir(std::io::Error),
    #[error("cannot run {command}: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("{command} failed ({status}): {output}")]
    Command {
        command: String,
        status: String,
        output: String,
    },
    #[error("cannot find a free TCP port on 127.0.0.1: {0}")]
    Port(std::io::Error),
    #[error("PostgreSQL did not start after {attempts} attempts; last log lines:\n{log}")]
    NoStart { attempts: u32, log: String },
}

/// The workspace's root folder (where the top Cargo.toml is).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `shared` folder beside the workspace root (`/work/shared` when the
/// workspace is `/work/main`), if it exists. Tests that need it call
/// [`skip`] and pass when it is absent.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    let dir = dir.canonicalize().ok()?;
    dir.is_dir().then_some(dir)
}

/// Prints a loud `SKIP: <what>` line on stderr and stdout, for a test that
/// cannot run here (for example `"../shared not found, import_examples not run"`).
pub fn skip(what: &str) {
    eprintln!("SKIP: {what}");
    println!("SKIP: {what}");
}

/// A temporary directory (prefix `remine-test.`), removed when dropped.
pub fn temp_dir() -> Result<tempfile::TempDir, TestkitError> {
    tempfile::Builder::new()
        .prefix("remine-test.")
        .tempdir()
        .map_err(TestkitError::TempDir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_dir_is_beside_the_workspace_when_present() {
        match shared_dir() {
            Some(dir) => assert!(dir.ends_with("shared"), "{}", dir.display()),
            None => skip(
                "../shared not found, the_shared_dir_is_beside_the_workspace_when_present not run",
            ),
        }
    }

    #[test]
    fn a_temp_dir_disappears_when_dropped() {
        let dir = temp_dir().unwrap();
        let path = dir.path().to_path_buf();
        assert!(path.is_dir());
        drop(dir);
        assert!(!path.exists());
    }
}
