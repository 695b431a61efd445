//! Throwaway PostgreSQL clusters for tests.
//!
//! A cluster lives in a temporary directory, listens on a free port of
//! 127.0.0.1 only (socket directory inside the temporary directory), trusts
//! every local connection and runs with `fsync=off`: it is for tests, never
//! for data. `initdb` and `postgres` refuse to run as root, so when the tests
//! run as root the server commands go through `runuser -u postgres --` and the
//! directory is handed to the `postgres` user.
//!
//! Clean-up does not depend on destructors alone: every cluster has a small
//! watchdog shell that waits for end-of-file on a pipe only this process
//! holds, then stops the server (`pg_ctl -m immediate stop`) and removes the
//! directory. Dropping a [`TempPostgres`] closes the pipe and waits for the
//! watchdog; the per-binary [`TempPostgres::shared`] cluster, which lives in a
//! static and is never dropped, is cleaned up the same way when the test
//! process exits, however it exits.

use crate::{TestkitError, skip};
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// Attempts at finding a port nobody else takes between our probe and the
/// server's bind.
const START_ATTEMPTS: u32 = 5;

/// A running throwaway PostgreSQL cluster; dropping it stops the server and
/// removes its directory.
#[derive(Debug)]
pub struct TempPostgres {
    port: u16,
    dir: PathBuf,
    bin: PathBuf,
    watchdog: Option<Child>,
    databases: AtomicU32,
}

impl TempPostgres {
    /// Starts a cluster of its own. Returns `None` (after a loud `SKIP:`
    /// line) when no PostgreSQL server binaries are installed or the cluster
    /// cannot start; panics instead when `REMINE_REQUIRE_POSTGRES=1`.
    pub fn start() -> Option<TempPostgres> {
        TempPostgres::start_for("PostgreSQL tests")
    }

    /// [`TempPostgres::start`], naming in the skip line what is not run.
    pub fn start_for(what: &str) -> Option<TempPostgres> {
        match TempPostgres::try_start() {
            Ok(Some(pg)) => Some(pg),
            Ok(None) => {
                refuse_or_skip(&format!(
                    "no PostgreSQL server binaries found (install postgresql); {what} not run"
                ));
                None
            }
            Err(e) => {
                refuse_or_skip(&format!(
                    "PostgreSQL could not be started: {e}; {what} not run"
                ));
                None
            }
        }
    }

    /// One cluster per test binary, started on first use and removed when
    /// the process exits. Combine with [`TempPostgres::fresh_database`] so
    /// that each test has a database of its own. Skips (or panics) like
    /// [`TempPostgres::start`], once per caller.
    pub fn shared(what: &str) -> Option<&'static TempPostgres> {
        static SHARED: OnceLock<Result<Option<TempPostgres>, String>> = OnceLock::new();
        match SHARED.get_or_init(|| TempPostgres::try_start().map_err(|e| e.to_string())) {
            Ok(Some(pg)) => Some(pg),
            Ok(None) => {
                refuse_or_skip(&format!(
                    "no PostgreSQL server binaries found (install postgresql); {what} not run"
                ));
                None
            }
            Err(e) => {
                refuse_or_skip(&format!(
                    "PostgreSQL could not be started: {e}; {what} not run"
                ));
                None
            }
        }
    }

    /// Starts a cluster: `Ok(None)` when no server binaries are installed.
    pub fn try_start() -> Result<Option<TempPostgres>, TestkitError> {
        let Some(bin) = find_bin_dir() else {
            return Ok(None);
        };
        let as_root = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("remine-pg.")
            .tempdir()
            .map_err(TestkitError::TempDir)?
            .keep();
        // From here on the watchdog owns the directory: it removes it however
        // this function or the process ends.
        let watchdog = spawn_watchdog(&bin, &dir, as_root)?;
        let mut pg = TempPostgres {
            port: 0,
            dir,
            bin,
            watchdog: Some(watchdog),
            databases: AtomicU32::new(0),
        };
        if as_root {
            let mut chown = Command::new("chown");
            chown.arg("postgres").arg(&pg.dir);
            run(chown)?;
        }
        let mut initdb = pg.server_command("initdb", as_root);
        initdb
            .arg("-D")
            .arg(pg.dir.join("data"))
            .args(["-U", "postgres", "-A", "trust", "--no-sync"])
            .args(["-E", "UTF8", "--no-locale"]);
        run(initdb)?;
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port()?;
            match run(pg.start_command(port, as_root)) {
                Ok(()) => {
                    pg.port = port;
                    return Ok(Some(pg));
                }
                Err(e) => {
                    let log = pg.log_tail();
                    let port_taken =
                        log.contains("could not bind") || log.contains("already in use");
                    if !port_taken {
                        return Err(e);
                    }
                    if attempt == START_ATTEMPTS {
                        return Err(TestkitError::NoStart {
                            attempts: attempt,
                            log,
                        });
                    }
                }
            }
        }
        Err(TestkitError::NoStart {
            attempts: START_ATTEMPTS,
            log: pg.log_tail(),
        })
    }

    /// The URL of the cluster's `postgres` database, as the `postgres`
    /// superuser without password: `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates a new, empty database (`t1`, `t2`, ...) and returns its URL.
    pub fn fresh_database(&self) -> Result<String, TestkitError> {
        let n = self.databases.fetch_add(1, Ordering::Relaxed) + 1;
        let name = format!("t{n}");
        let mut createdb = Command::new(self.bin.join("createdb"));
        createdb
            .args(["-w", "-h", "127.0.0.1", "-U", "postgres", "-p"])
            .arg(self.port.to_string())
            .arg(&name);
        run(createdb)?;
        Ok(format!(
            "postgres://postgres@127.0.0.1:{}/{name}",
            self.port
        ))
    }

    /// Stops the server (`pg_ctl stop` in the given mode), keeping the
    /// cluster, its databases and its port for [`TempPostgres::start_again`].
    /// For tests of what clients do while the database is away.
    pub fn stop(&self, mode: StopMode) -> Result<(), TestkitError> {
        let mut ctl = self.server_command("pg_ctl", running_as_root());
        ctl.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-w", "-m", mode.as_arg()])
            .arg("stop");
        run(ctl)
    }

    /// Starts the stopped server again on the same port.
    pub fn start_again(&self) -> Result<(), TestkitError> {
        run(self.start_command(self.port, running_as_root()))
    }

    /// `pg_ctl start` of this cluster on `port`, waiting until it accepts.
    fn start_command(&self, port: u16, as_root: bool) -> Command {
        let mut ctl = self.server_command("pg_ctl", as_root);
        ctl.arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.log_path())
            .args(["-w", "-t", "60", "-o"])
            .arg(format!(
                "-p {port} -c listen_addresses=127.0.0.1 -k '{}' -c fsync=off",
                self.dir.display()
            ))
            .arg("start");
        ctl
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// A server binary, run as `postgres` when we are root, in its own
    /// process group (so a Ctrl-C at the terminal does not reach the server
    /// before the watchdog does), from the cluster directory (so a working
    /// directory the `postgres` user cannot enter draws no warning).
    fn server_command(&self, name: &str, as_root: bool) -> Command {
        let program = self.bin.join(name);
        let mut cmd = if as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        cmd.current_dir(&self.dir).process_group(0);
        cmd
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            // Closing the pipe is the watchdog's signal; waiting for it means
            // the directory is gone when drop returns.
            drop(watchdog.stdin.take());
            let _ = watchdog.wait();
        }
    }
}

/// How [`TempPostgres::stop`] shuts the server down (`pg_ctl -m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Disconnects clients, writes a checkpoint, stops cleanly.
    Fast,
    /// Kills the server at once; it recovers from its WAL on the next start.
    Immediate,
}

impl StopMode {
    fn as_arg(self) -> &'static str {
        match self {
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        }
    }
}

/// Panics when CI requires PostgreSQL, else prints the skip line.
fn refuse_or_skip(message: &str) {
    if std::env::var("REMINE_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
        panic!("REMINE_REQUIRE_POSTGRES=1 but {message}");
    }
    skip(message);
}

/// The directory with `initdb`, `pg_ctl` and `postgres`: the one an `initdb`
/// on PATH really lives in, else the newest `/usr/lib/postgresql/*/bin`.
fn find_bin_dir() -> Option<PathBuf> {
    let complete = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    for dir in on_path {
        let Ok(real) = dir.join("initdb").canonicalize() else {
            continue;
        };
        if let Some(parent) = real.parent()
            && complete(parent)
        {
            return Some(parent.to_path_buf());
        }
    }
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let version = name
                .split('.')
                .map(str::parse)
                .collect::<Result<Vec<u32>, _>>()
                .ok()?;
            let bin = entry.path().join("bin");
            complete(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// Whether this process runs as root (the owner of `/proc/self` is the
/// effective user).
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn free_port() -> Result<u16, TestkitError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(TestkitError::Port)?;
    Ok(listener.local_addr().map_err(TestkitError::Port)?.port())
}

/// The watchdog: waits for end-of-file on its stdin, then stops the server
/// (if one was started) and removes the directory.
fn spawn_watchdog(bin: &Path, dir: &Path, as_root: bool) -> Result<Child, TestkitError> {
    const SCRIPT: &str = r#"cat >/dev/null
if [ -f "$3/data/postmaster.pid" ]; then
  if [ "$1" = root ]; then runuser -u postgres -- "$2" -D "$3/data" -m immediate stop
  else "$2" -D "$3/data" -m immediate stop; fi
fi
rm -rf "$3""#;
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(SCRIPT)
        .arg("remine-pg-watchdog")
        .arg(if as_root { "root" } else { "user" })
        .arg(bin.join("pg_ctl"))
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    cmd.spawn().map_err(|source| TestkitError::Spawn {
        command: "sh (PostgreSQL watchdog)".into(),
        source,
    })
}

/// Runs a command to completion; a failure carries its output.
fn run(mut cmd: Command) -> Result<(), TestkitError> {
    let command = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| TestkitError::Spawn {
            command: command.clone(),
            source,
        })?;
    if out.status.success() {
        return Ok(());
    }
    Err(TestkitError::Command {
        command,
        status: out.status.to_string(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_starts_accepts_databases_and_is_removed_on_drop() {
        let Some(pg) =
            TempPostgres::start_for("a_cluster_starts_accepts_databases_and_is_removed_on_drop")
        else {
            return;
        };
        let dir = pg.dir.clone();
        assert!(pg.url().ends_with("/postgres"));
        let a = pg.fresh_database().unwrap();
        let b = pg.fresh_database().unwrap();
        assert_ne!(a, b);
        assert!(std::net::TcpStream::connect(("127.0.0.1", pg.port())).is_ok());
        let port = pg.port();
        pg.stop(StopMode::Immediate).unwrap();
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
        pg.start_again().unwrap();
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        assert!(
            pg.fresh_database().is_ok(),
            "the restarted server takes work"
        );
        drop(pg);
        assert!(!dir.exists(), "{} still exists", dir.display());
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    }

    #[test]
    fn the_newest_installed_server_is_found() {
        match find_bin_dir() {
            Some(bin) => assert!(bin.join("pg_ctl").is_file()),
            None => skip(
                "no PostgreSQL server binaries found (install postgresql); the_newest_installed_server_is_found not run",
            ),
        }
    }
}
