//! Two figures of the Modbus adapter, each beside its anchor in the same
//! run, against one tokio-modbus server running in a separate process (this
//! binary re-executed with REMINE_BENCH_SERVER=1), so the CPU figures are
//! the client's alone.
//!
//! 1. **Read rate.** A device of 62,500 contiguous u16 tags: each poll cycle
//!    is 500 sequential 125-register reads, decoded into the cache. The
//!    adapter polls back to back (its 10 ms interval is shorter than a
//!    cycle); the figure is the server's count of answered reads per second.
//!    Anchor: a bare tokio-modbus client reading the same 500 blocks in a
//!    loop on one connection (with TCP_NODELAY, as the adapter connects). Target: at least 0.9 of the anchor.
//! 2. **CPU at 10,000 tags every 100 ms.** 10,000 u16 tags (80 reads a
//!    cycle) polled every 100 ms; the figure is this process's CPU time
//!    (user + system, /proc/self/stat) per wall second, as a share of one
//!    core. Anchor: a bare tokio-modbus client reading the same 80 blocks
//!    every 100 ms. Target: under 20 % of one core.
//!
//! Run: `cargo bench -p remine-modbus --bench modbus_adapter` (optional
//! arguments: window seconds (default 5), repeats (default 3)).

use remine_domain::ports::TagIo;
use remine_domain::{Quality, TagName};
use remine_modbus::{ModbusAdapter, ModbusConfig};
use remine_testkit::bench::{cpu_seconds, median};
use std::future::{Ready, ready};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_modbus::client::{Reader, tcp};
use tokio_modbus::prelude::{ExceptionCode, Request, Response, Slave, SlaveRequest};
use tokio_modbus::server::Service;
use tokio_modbus::server::tcp::{Server, accept_tcp_connection};

const BLOCK: u16 = 125;

// ---- the server process ------------------------------------------------------

/// Answers reads of holding registers 0..65535 (register i holds i) and
/// counts them; prints `PORT <p>` and then, on every line read from stdin,
/// `COUNT <n>`; exits when stdin closes.
#[derive(Clone)]
struct Bank {
    reads: Arc<AtomicU64>,
    registers: Arc<AtomicU64>,
}

impl Service for Bank {
    type Request = SlaveRequest<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = Ready<Result<Response, ExceptionCode>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        ready(match req.request {
            Request::ReadHoldingRegisters(addr, n) if n <= BLOCK => {
                self.reads.fetch_add(1, Ordering::Relaxed);
                self.registers.fetch_add(u64::from(n), Ordering::Relaxed);
                Ok(Response::ReadHoldingRegisters(
                    (0..n).map(|i| addr.wrapping_add(i)).collect(),
                ))
            }
            Request::ReadHoldingRegisters(..) => Err(ExceptionCode::IllegalDataValue),
            _ => Err(ExceptionCode::IllegalFunction),
        })
    }
}

fn serve() -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        println!("PORT {port}");
        std::io::stdout().flush().map_err(|e| e.to_string())?;
        let bank = Bank {
            reads: Arc::new(AtomicU64::new(0)),
            registers: Arc::new(AtomicU64::new(0)),
        };
        let (reads, registers) = (Arc::clone(&bank.reads), Arc::clone(&bank.registers));
        let server = Server::new(listener);
        let on_connected = move |stream, peer: SocketAddr| {
            let bank = bank.clone();
            async move { accept_tcp_connection(stream, peer, move |_| Ok(Some(bank.clone()))) }
        };
        let stdin_closed = async move {
            let mut lines =
                tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(tokio::io::stdin()));
            while let Ok(Some(_)) = lines.next_line().await {
                println!(
                    "COUNT {} {}",
                    reads.load(Ordering::Relaxed),
                    registers.load(Ordering::Relaxed)
                );
                let _ = std::io::stdout().flush();
            }
        };
        server
            .serve_until(&on_connected, |_| {}, stdin_closed)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// The server process, seen from the bench.
struct Peer {
    child: Child,
    port: u16,
    out: BufReader<std::process::ChildStdout>,
}

impl Peer {
    fn start() -> Peer {
        let exe = std::env::current_exe().expect("this bench's path");
        let mut child = Command::new(exe)
            .env("REMINE_BENCH_SERVER", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("server process");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("PORT line");
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .expect("PORT <p>");
        Peer { child, port, out }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Reads the server has answered so far.
    fn reads(&mut self) -> u64 {
        self.counts().0
    }

    /// Reads and registers the server has answered so far.
    fn counts(&mut self) -> (u64, u64) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "count").expect("ask");
        stdin.flush().expect("flush");
        let mut line = String::new();
        self.out.read_line(&mut line).expect("COUNT line");
        let n: Vec<u64> = line
            .trim()
            .strip_prefix("COUNT ")
            .map(|n| n.split(' ').filter_map(|x| x.parse().ok()).collect())
            .unwrap_or_default();
        match n[..] {
            [reads, registers] => (reads, registers),
            _ => panic!("COUNT <reads> <registers>, got {line:?}"),
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

// ---- measuring ----------------------------------------------------------------

fn tag_map(addr: SocketAddr, tags: u32, poll_ms: u32) -> ModbusConfig {
    let mut toml = format!(
        "[[device]]\nname = \"bench\"\naddress = \"{addr}\"\nunit_id = 1\npoll_interval_ms = {poll_ms}\nrequest_timeout_ms = 2000\n"
    );
    for i in 0..tags {
        toml.push_str(&format!(
            "[[tag]]\nname = \"Bench/Block{}/R{i}\"\ndevice = \"bench\"\ntable = \"holding\"\naddress = {i}\ntype = \"u16\"\n",
            i / u32::from(BLOCK)
        ));
    }
    ModbusConfig::from_toml_str(&toml, "bench.toml").expect("bench tag map")
}

async fn adapter_started(addr: SocketAddr, tags: u32, poll_ms: u32) -> ModbusAdapter {
    let adapter = ModbusAdapter::start(tag_map(addr, tags, poll_ms)).expect("adapter");
    let last = TagName::parse(&format!(
        "Bench/Block{}/R{}",
        (tags - 1) / u32::from(BLOCK),
        tags - 1
    ))
    .expect("tag");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = adapter.read(std::slice::from_ref(&last)).await.remove(0);
        if r.quality == Quality::Good {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the adapter never read {last}: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    adapter
}

/// Reads per second the server answers over `window`; every read must
/// be a full 125-register block.
async fn rate(peer: &mut Peer, window: Duration) -> f64 {
    let (n0, r0) = peer.counts();
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let (n1, r1) = peer.counts();
    let (reads, registers) = (n1 - n0, r1 - r0);
    assert_eq!(
        registers,
        reads * u64::from(BLOCK),
        "reads of 125 registers only"
    );
    reads as f64 / t0.elapsed().as_secs_f64()
}

/// A bare tokio-modbus client reading `blocks` blocks of 125 registers
/// back to back (or one round every `every`), until `stop`.
async fn bare(addr: SocketAddr, blocks: u16, every: Option<Duration>, stop: Arc<AtomicU64>) {
    // Connected as the adapter connects: TCP_NODELAY, then the Modbus client.
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut ctx = tcp::attach_slave(stream, Slave(1));
    let mut tick = every.map(|d| {
        let mut i = tokio::time::interval(d);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    });
    while stop.load(Ordering::Relaxed) == 0 {
        if let Some(t) = tick.as_mut() {
            t.tick().await;
        }
        for b in 0..blocks {
            let words = ctx
                .read_holding_registers(b * BLOCK, BLOCK)
                .await
                .expect("transport")
                .expect("read");
            std::hint::black_box(words);
        }
    }
}

async fn with_bare<T>(
    addr: SocketAddr,
    blocks: u16,
    every: Option<Duration>,
    measure: impl AsyncFnOnce() -> T,
) -> T {
    let stop = Arc::new(AtomicU64::new(0));
    let flag = Arc::clone(&stop);
    // The bare loop at its best: its own thread and single-threaded runtime.
    let task = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(bare(addr, blocks, every, flag));
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let out = measure().await;
    stop.store(1, Ordering::Relaxed);
    let _ = task.join();
    out
}

fn main() {
    if std::env::var_os("REMINE_BENCH_SERVER").is_some() {
        if let Err(e) = serve() {
            eprintln!("bench server: {e}");
            std::process::exit(1);
        }
        return;
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let window = Duration::from_secs(args.first().and_then(|a| a.parse().ok()).unwrap_or(5));
    let repeats: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut peer = Peer::start();
        let addr = peer.addr();

        // 1. Read rate: 500 sequential 125-register reads a cycle.
        let (mut ours, mut anchor) = (Vec::new(), Vec::new());
        for _ in 0..repeats {
            let a = adapter_started(addr, 500 * u32::from(BLOCK), 10).await;
            ours.push(rate(&mut peer, window).await);
            a.shutdown().await;
            anchor.push(with_bare(addr, 500, None, async || rate(&mut peer, window).await).await);
        }
        let (o, b) = (median(ours.clone()), median(anchor.clone()));
        println!(
            "read rate, 125-register reads: adapter {o:.0}/s, bare tokio-modbus {b:.0}/s, ratio {:.3} (runs: {ours:.0?} vs {anchor:.0?})",
            o / b
        );

        // 2. CPU at 10,000 tags every 100 ms.
        let cpu = async |window: Duration| {
            let (c0, t0) = (cpu_seconds(), Instant::now());
            tokio::time::sleep(window).await;
            100.0 * (cpu_seconds() - c0) / t0.elapsed().as_secs_f64()
        };
        let (mut ours, mut anchor) = (Vec::new(), Vec::new());
        for _ in 0..repeats {
            let a = adapter_started(addr, 10_000, 100).await;
            let reads0 = peer.reads();
            let t0 = Instant::now();
            ours.push(cpu(window).await);
            let per_s = (peer.reads() - reads0) as f64 / t0.elapsed().as_secs_f64();
            assert!(per_s > 700.0, "the adapter kept up: {per_s:.0} reads/s of 800");
            a.shutdown().await;
            anchor.push(
                with_bare(addr, 80, Some(Duration::from_millis(100)), async || cpu(window).await)
                    .await,
            );
        }
        let (o, b) = (median(ours.clone()), median(anchor.clone()));
        println!(
            "CPU, 10,000 tags every 100 ms: adapter {o:.2} % of one core, bare tokio-modbus loop {b:.2} %, ratio {:.1} (runs: {ours:.2?} vs {anchor:.2?})",
            o / b.max(0.01)
        );
    });
}
