//! Helpers for the system tests: find the `remine` binary, pick free ports,
//! run a `remine` process and watch its output, and find a browser.
//!
//! The tests talk to remine only from outside: its command line, its HTTP
//! API, and the HMI in a real Chromium.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The `remine` binary: $REMINE_BIN, else target/debug/remine of this workspace.
pub fn remine_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("REMINE_BIN") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/debug/remine"
    ));
    assert!(
        p.exists(),
        "{} is missing: build it first (cargo build -p remine) or set REMINE_BIN",
        p.display()
    );
    p
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local addr").port()
}

/// Runs `remine` with `args` to completion; returns (exit code, stdout, stderr).
pub fn run(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(remine_bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("remine starts");
    if let (Some(mut input), Some(text)) = (child.stdin.take(), stdin) {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("remine runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A `remine` process in the background whose output lines are collected.
#[derive(Debug)]
pub struct Running {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Running {
    pub fn start(args: &[&str]) -> Running {
        let mut child = Command::new(remine_bin())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("remine starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    eprintln!("[remine] {line}");
                    lines.lock().expect("lines lock").push(line);
                }
            });
        }
        Running { child, lines }
    }

    pub fn output(&self) -> Vec<String> {
        self.lines.lock().expect("lines lock").clone()
    }

    /// Waits until a line contains `needle`; returns it, or None on timeout
    /// or when the process has exited.
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> Option<String> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Some(l) = self.output().into_iter().find(|l| l.contains(needle)) {
                return Some(l);
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                return self.output().into_iter().find(|l| l.contains(needle));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGINT (as Ctrl-C does) and waits for the exit code.
    pub fn interrupt(mut self, timeout: Duration) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Chromium and ChromeDriver, if installed. Without them, browser tests say
/// SKIP loudly and pass, unless REMINE_REQUIRE_BROWSER=1 (CI), where they fail.
pub fn browser() -> Option<(PathBuf, PathBuf)> {
    let find = |names: &[&str]| {
        names.iter().find_map(|n| {
            std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|d| d.join(n))
                    .find(|p| p.exists())
            })
        })
    };
    let chromium = find(&["chromium", "chromium-browser", "google-chrome"]);
    let driver = find(&["chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        _ => {
            let msg = "SKIP: no chromium/chromedriver found (apt-get install chromium chromium-driver); browser checks not run";
            assert!(
                std::env::var("REMINE_REQUIRE_BROWSER").ok().as_deref() != Some("1"),
                "{msg}, but REMINE_REQUIRE_BROWSER=1"
            );
            eprintln!("{msg}");
            println!("{msg}");
            None
        }
    }
}

/// A running ChromeDriver on a free port; killed on drop.
#[derive(Debug)]
pub struct Driver {
    child: Child,
    pub port: u16,
}

impl Driver {
    pub fn start(path: &PathBuf) -> Driver {
        let port = free_port();
        let child = Command::new(path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Driver { child, port }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The capabilities that run Debian's Chromium headless on this machine
/// (without the networking flags it floods the closed network).
pub fn chrome_capabilities(
    chromium: &std::path::Path,
    profile: &std::path::Path,
) -> serde_json::Map<String, serde_json::Value> {
    let args = [
        "--headless=new".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        format!("--user-data-dir={}", profile.display()),
    ];
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({ "binary": chromium, "args": args }),
    );
    caps
}

/// `remine demo` on free ports with its data in `data` (plus `extra`
/// arguments), stopped after `duration` at the latest, once it serves its
/// HMI; returns it with its HTTP address (`127.0.0.1:PORT`). Panics with
/// the demo's output when it does not start within a minute.
pub fn start_demo(data: &std::path::Path, extra: &[&str], duration: &str) -> (Running, String) {
    let listen = format!("127.0.0.1:{}", free_port());
    let ports = [free_port(), free_port(), free_port()].map(|p| p.to_string());
    let data = data.to_str().expect("a UTF-8 data path");
    let mut args = vec!["demo", "--speed", "60", "--data", data];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "--listen",
        &listen,
        "--discharge-port",
        &ports[0],
        "--mechanical-port",
        &ports[1],
        "--hydromet-port",
        &ports[2],
        "--duration",
        duration,
    ]);
    let mut demo = Running::start(&args);
    assert!(
        demo.wait_for_line("HMI: http://", Duration::from_secs(60))
            .is_some(),
        "the demo did not start its HMI; output: {:#?}",
        demo.output()
    );
    (demo, listen)
}

/// The password `remine demo` printed for `user` in its output `lines`.
pub fn password_of(lines: &[String], user: &str) -> String {
    let needle = format!("user {user} password ");
    lines
        .iter()
        .find_map(|l| l.split(&needle).nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the demo printed no password for {user}"))
        .to_string()
}
