//! The independent Python protocol peers (pymodbus, asyncua) that check
//! remine's protocol work: finding the venv scripts/test builds, skipping
//! loudly without it, and running a peer script as a child process that
//! answers line commands on stdin.
//!
//! A peer script prints `READY <port>` once it listens, then answers each
//! command line with one reply line. Dropping a [`ScriptPeer`] kills it.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// How long a script may take to start listening (imports included).
pub const READY_LIMIT: Duration = Duration::from_secs(30);
/// How long one command to a script may take.
pub const REPLY_LIMIT: Duration = Duration::from_secs(5);

/// The venv's python: `$REMINE_VENV/bin/python`, else
/// `<workspace>/target/venv/bin/python`; `None` when neither is there.
pub fn venv_python() -> Option<PathBuf> {
    let from_env = std::env::var_os("REMINE_VENV").map(|v| PathBuf::from(v).join("bin/python"));
    let in_target = crate::workspace_root().join("target/venv/bin/python");
    [from_env, Some(in_target)]
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
}

/// The python to run peers with; `None` (after a loud SKIP line) when there
/// is none. With `REMINE_REQUIRE_PEERS=1` (CI) a missing venv fails the test.
pub fn python_or_skip(test: &str) -> Option<PathBuf> {
    let python = venv_python();
    if python.is_none() {
        let message = format!(
            "SKIP: python venv with pymodbus/asyncua not found (run scripts/test), {test} not run"
        );
        assert!(
            std::env::var("REMINE_REQUIRE_PEERS").as_deref() != Ok("1"),
            "{message} (REMINE_REQUIRE_PEERS=1)"
        );
        eprintln!("{message}");
        println!("{message}");
    }
    python
}

impl std::fmt::Debug for ScriptPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptPeer")
            .field("name", &self.name)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// A peer script running as a child process: its port, its stdin for
/// commands and its stdout for replies. Every failure panics with what the
/// script wrote to stderr.
pub struct ScriptPeer {
    name: String,
    port: u16,
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<String>>,
}

impl ScriptPeer {
    /// Runs `python -u script args...` and waits for its `READY <port>`
    /// line. `name` names the peer in failures ("pymodbus peer").
    pub async fn start<I, S>(python: &Path, script: &Path, args: I, name: &str) -> ScriptPeer
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut child = Command::new(python)
            .arg("-u")
            .arg(script)
            .args(args)
            // No __pycache__ left in the source tree.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {} {}: {e}", python.display(), script.display())
            });
        let (Some(stdin), Some(stdout), Some(mut err)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            panic!("{name}: the child's pipes are missing");
        };
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        let mut peer = ScriptPeer {
            name: name.to_string(),
            port: 0,
            child,
            stdin,
            stdout: BufReader::new(stdout).lines(),
            stderr,
        };
        let ready = peer.line(READY_LIMIT, "READY").await;
        peer.port = ready
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| peer.fail(&format!("expected READY <port>, got {ready:?}")));
        peer
    }

    /// The port the script listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Fails the test with `why` and everything the script wrote to stderr.
    pub fn fail(&self, why: &str) -> ! {
        let stderr = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
        panic!("{}: {why}\n--- its stderr\n{stderr}", self.name)
    }

    /// The next line the script writes, within `within`.
    pub async fn line(&mut self, within: Duration, waiting_for: &str) -> String {
        match tokio::time::timeout(within, self.stdout.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => {
                let status = self.child.try_wait();
                self.fail(&format!(
                    "exited ({status:?}) while we waited for {waiting_for}"
                ))
            }
            Ok(Err(e)) => self.fail(&format!("cannot read its stdout: {e}")),
            Err(_) => self.fail(&format!("no {waiting_for} within {within:?}")),
        }
    }

    /// Sends one command and returns the reply without its `expect` prefix.
    pub async fn ask(&mut self, command: &str, expect: &str) -> String {
        self.ask_within(command, expect, REPLY_LIMIT).await
    }

    /// [`ScriptPeer::ask`] with a longer or shorter wait.
    pub async fn ask_within(&mut self, command: &str, expect: &str, within: Duration) -> String {
        if let Err(e) = self
            .stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
        {
            self.fail(&format!("cannot send {command:?}: {e}"));
        }
        let reply = self
            .line(within, &format!("the reply to {command:?}"))
            .await;
        match reply.strip_prefix(expect) {
            Some(rest) => rest.trim().to_string(),
            None => self.fail(&format!("{command:?} answered {reply:?}")),
        }
    }

    /// Closes the script's stdin and waits (5 s at most) for it to leave.
    pub async fn stop(mut self) {
        drop(self.stdin);
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}
