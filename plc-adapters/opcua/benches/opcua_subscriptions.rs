//! CPU of the OPC UA adapter delivering 10,000 monitored items sampled every
//! 100 ms, beside its anchor in the same run, against one async-opcua server
//! running in a separate process (this binary re-executed with
//! REMINE_BENCH_SERVER=1) that changes every value every 100 ms; so the CPU
//! figure is the client's alone.
//!
//! Figures: this process's CPU time (user + system, /proc/self/stat) per
//! wall second, as a share of one core, and the data changes delivered per
//! second (the adapter's count from `status()`), while the adapter's cache
//! follows the 10,000 changing values (checked: the share of tags holding a
//! value fresher than one second at the end of each window). Anchor: a bare
//! async-opcua client with library defaults and one subscription of the same
//! 10,000 items whose callback only counts the changes. Target: under 50 %
//! of one core.
//!
//! Run: `cargo bench -p remine-opcua --bench opcua_subscriptions` (optional
//! arguments: window seconds (default 5), repeats (default 3), the
//! adapter's `max_items_per_subscription` (default: the adapter's)). The
//! server's limits are described in `serve`; REMINE_BENCH_LIMITS=strict
//! makes them stricter.

use opcua::client::{ClientBuilder, DataChangeCallback, IdentityToken, MonitoredItem};
use opcua::crypto::SecurityPolicy;
use opcua::nodes::VariableBuilder;
use opcua::server::ServerBuilder;
use opcua::server::diagnostics::NamespaceMetadata;
use opcua::server::node_manager::memory::{SimpleNodeManager, simple_node_manager};
use opcua::types::{
    AttributeId, DataTypeId, DataValue, MessageSecurityMode, MonitoredItemCreateRequest,
    MonitoringMode, MonitoringParameters, NodeId, ObjectId, QualifiedName, ReadValueId,
    TimestampsToReturn, Variant,
};
use remine_domain::ports::{DeviceStatsSource, TagIo};
use remine_domain::{Quality, TagName};
use remine_opcua::{OpcUaAdapter, OpcUaConfig};
use remine_testkit::bench::{cpu_seconds, median};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const ITEMS: usize = 10_000;
const NS: &str = "urn:remine:bench";
const TICK: Duration = Duration::from_millis(100);

// ---- the server process ------------------------------------------------------

fn serve() -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let pki = std::env::var("REMINE_BENCH_PKI").map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let mut builder = ServerBuilder::new()
            .application_name("remine bench server")
            .application_uri("urn:remine:bench:server")
            .create_sample_keypair(true)
            .pki_dir(pki)
            .host("127.0.0.1".to_string())
            .port(port)
            .discovery_urls(vec![format!("opc.tcp://127.0.0.1:{port}/")])
            .add_endpoint(
                "none",
                (
                    "/",
                    SecurityPolicy::None,
                    MessageSecurityMode::None,
                    &[opcua::server::ANONYMOUS_USER_TOKEN_ID] as &[&str],
                ),
            )
            // The server's subscription timer: async-opcua's default (100 ms)
            // equals the publishing interval, so a tick that comes a hair
            // early skips a cycle and about a third of the changes are
            // overwritten unsent. A DCS keeps its publishing intervals to
            // within a few ms.
            .subscription_poll_interval_ms(10)
            .with_node_manager(simple_node_manager(
                NamespaceMetadata {
                    namespace_uri: NS.to_string(),
                    ..Default::default()
                },
                "bench",
            ));
        let limits = builder.limits_mut();
        // The anchor puts all 10,000 items in one subscription.
        limits.subscriptions.max_monitored_items_per_sub = 0;
        // Notifications per publish response and publish responses queued
        // per subscription: 1000 and 20 (async-opcua's default queue), or
        // with REMINE_BENCH_LIMITS=strict 100 and 10, the stricter limits of
        // the OPC Foundation .NET stack's server configuration. (0 queued
        // means unlimited by async-opcua's documentation, but 0.19 then keeps
        // one response only: that made the 3,200 changes/s before.)
        let strict = std::env::var("REMINE_BENCH_LIMITS").as_deref() == Ok("strict");
        limits.subscriptions.max_notifications_per_publish = if strict { 100 } else { 1000 };
        limits.subscriptions.max_queued_notifications = if strict { 10 } else { 20 };
        limits.operational.max_monitored_items_per_call = 20_000;
        limits
            .operational
            .max_nodes_per_translate_browse_paths_to_node_ids = 20_000;
        limits.operational.max_nodes_per_read = 20_000;
        let (server, handle) = builder.build()?;
        let ns = handle
            .get_namespace_index(NS)
            .ok_or("the bench namespace is missing")?;
        let manager = handle
            .node_managers()
            .get_of_type::<SimpleNodeManager>()
            .ok_or("no node manager")?;
        let ids: Vec<NodeId> = (0..ITEMS)
            .map(|i| NodeId::new(ns, format!("V{i}")))
            .collect();
        {
            let space = manager.address_space();
            let mut space = space.write();
            let folder = NodeId::new(ns, "Bench");
            let objects: NodeId = ObjectId::ObjectsFolder.into();
            space.add_folder(&folder, QualifiedName::new(ns, "Bench"), "Bench", &objects);
            for (i, id) in ids.iter().enumerate() {
                VariableBuilder::new(id, QualifiedName::new(ns, format!("V{i}")), format!("V{i}"))
                    .data_type(DataTypeId::Double)
                    .value(0.0f64)
                    .component_of(folder.clone())
                    .insert(&mut *space);
            }
        }
        let task = tokio::spawn(async move { server.run_with(listener).await });
        println!("PORT {port}");
        let changer = tokio::spawn(async move {
            let mut tick = tokio::time::interval(TICK);
            let mut k = 0.0f64;
            loop {
                tick.tick().await;
                k += 1.0;
                let values = ids
                    .iter()
                    .enumerate()
                    .map(|(i, id)| (id, None, DataValue::new_now(Variant::Double(k + i as f64))));
                let _ = manager.set_values(handle.subscriptions(), values);
            }
        });
        // Exit when stdin closes.
        let mut lines =
            tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(tokio::io::stdin()));
        while let Ok(Some(_)) = lines.next_line().await {}
        changer.abort();
        task.abort();
        Ok(())
    })
}

struct Peer {
    child: Child,
    port: u16,
    _pki: tempfile::TempDir,
}

impl Peer {
    fn start() -> Peer {
        let pki = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new(std::env::current_exe().expect("this bench's path"))
            .env("REMINE_BENCH_SERVER", "1")
            .env("REMINE_BENCH_PKI", pki.path())
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
        Peer {
            child,
            port,
            _pki: pki,
        }
    }

    fn endpoint(&self) -> String {
        format!("opc.tcp://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

// ---- measuring ----------------------------------------------------------------

async fn cpu_percent(window: Duration) -> f64 {
    let (c0, t0) = (cpu_seconds(), Instant::now());
    tokio::time::sleep(window).await;
    100.0 * (cpu_seconds() - c0) / t0.elapsed().as_secs_f64()
}

fn tag_names() -> Vec<TagName> {
    (0..ITEMS)
        .map(|i| TagName::parse(&format!("Bench/Items/V{i}")).expect("tag"))
        .collect()
}

fn adapter(peer: &Peer, pki: &std::path::Path, per_sub: Option<usize>) -> OpcUaAdapter {
    let mut toml = format!(
        "[[server]]\nname = \"bench\"\nendpoint = \"{}\"\npki_dir = \"{}\"\ntrust_server_certs = true\npublishing_interval_ms = 100\nrequest_timeout_ms = 10000\n",
        peer.endpoint(),
        pki.display()
    );
    if let Some(n) = per_sub {
        toml.push_str(&format!("max_items_per_subscription = {n}\n"));
    }
    for i in 0..ITEMS {
        toml.push_str(&format!(
            "[[tag]]\nname = \"Bench/Items/V{i}\"\nserver = \"bench\"\nnamespace_uri = \"{NS}\"\nnode_id = \"s=V{i}\"\ndata_type = \"f64\"\nsampling_interval_ms = 100\n"
        ));
    }
    let config = OpcUaConfig::from_toml_str(&toml, "bench.toml").expect("bench tag map");
    OpcUaAdapter::start(config).expect("adapter")
}

/// Share of the tags that are good and changed within the last second.
async fn fresh_share(adapter: &OpcUaAdapter, tags: &[TagName]) -> f64 {
    let now = chrono::Utc::now();
    let readings = adapter.read(tags).await;
    let fresh = readings
        .iter()
        .filter(|r| {
            r.quality == Quality::Good
                && (now - r.server_time) < chrono::Duration::milliseconds(1000)
        })
        .count();
    fresh as f64 / tags.len() as f64
}

/// Data changes the adapter has received, over all its groups.
fn changes(adapter: &OpcUaAdapter) -> u64 {
    adapter
        .status()
        .iter()
        .flat_map(|s| &s.groups)
        .map(|g| g.changes)
        .sum()
}

async fn run_adapter(peer: &Peer, window: Duration, per_sub: Option<usize>) -> (f64, f64) {
    let pki = tempfile::tempdir().expect("temp dir");
    let adapter = adapter(peer, pki.path(), per_sub);
    let tags = tag_names();
    let deadline = Instant::now() + Duration::from_secs(60);
    while good_share(&adapter, &tags).await < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the adapter never followed the 10,000 items: {:?}",
            adapter.status()
        );
        if let Some(e) = adapter.status().first().and_then(|s| s.last_error.clone()) {
            eprintln!("adapter: {e}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (n0, e0) = (changes(&adapter), errors(&adapter));
    let t0 = Instant::now();
    let cpu = cpu_percent(window).await;
    let per_s = (changes(&adapter) - n0) as f64 / t0.elapsed().as_secs_f64();
    let share = fresh_share(&adapter, &tags).await;
    let status = adapter.status().remove(0);
    let group = status.groups.first();
    println!(
        "  adapter: {cpu:.1} % of one core; {per_s:.0} changes/s delivered; {:.1} % of the tags \
         changed within the last second; {} subscriptions, revised publishing {:?}, sampling {:?}; \
         {} errors in the window",
        share * 100.0,
        group.map_or(0, |g| g.subscriptions),
        group.and_then(|g| g.revised_publishing_interval),
        group.and_then(|g| g.revised_sampling_interval),
        errors(&adapter) - e0,
    );
    adapter.shutdown().await;
    (cpu, per_s)
}

fn errors(adapter: &OpcUaAdapter) -> u64 {
    adapter
        .device_stats()
        .iter()
        .map(|s| s.errors_total())
        .sum()
}

/// Share of the tags that are good.
async fn good_share(adapter: &OpcUaAdapter, tags: &[TagName]) -> f64 {
    let readings = adapter.read(tags).await;
    let good = readings
        .iter()
        .filter(|r| r.quality == Quality::Good)
        .count();
    good as f64 / tags.len() as f64
}

async fn run_bare(peer: &Peer, window: Duration) -> (f64, f64) {
    let pki = tempfile::tempdir().expect("temp dir");
    let mut client = ClientBuilder::new()
        .application_name("bare bench client")
        .application_uri("urn:remine:bench:bare")
        .pki_dir(pki.path())
        .create_sample_keypair(true)
        .trust_server_certs(true)
        .session_retry_limit(0)
        .client()
        .expect("client");
    let (session, event_loop) = client
        .connect_to_matching_endpoint(
            (
                peer.endpoint().as_str(),
                SecurityPolicy::None.to_str(),
                MessageSecurityMode::None,
            ),
            IdentityToken::Anonymous,
        )
        .await
        .expect("connect");
    let events = event_loop.spawn();
    session.wait_for_connection().await;
    let ns = session.get_namespace_index(NS).await.expect("namespace");
    let changes = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&changes);
    let sub = session
        .create_subscription(
            TICK,
            60,
            10,
            0,
            0,
            true,
            DataChangeCallback::new(move |_v: DataValue, _i: &MonitoredItem| {
                counted.fetch_add(1, Ordering::Relaxed);
            }),
        )
        .await
        .expect("subscription");
    let items: Vec<MonitoredItemCreateRequest> = (0..ITEMS)
        .map(|i| MonitoredItemCreateRequest {
            item_to_monitor: ReadValueId {
                node_id: NodeId::new(ns, format!("V{i}")),
                attribute_id: AttributeId::Value as u32,
                ..Default::default()
            },
            monitoring_mode: MonitoringMode::Reporting,
            requested_parameters: MonitoringParameters {
                client_handle: i as u32 + 1,
                sampling_interval: 100.0,
                queue_size: 1,
                discard_oldest: true,
                ..Default::default()
            },
        })
        .collect();
    for chunk in items.chunks(1000) {
        session
            .create_monitored_items(sub, TimestampsToReturn::Both, chunk.to_vec())
            .await
            .expect("monitored items");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let n0 = changes.load(Ordering::Relaxed);
    let t0 = Instant::now();
    let cpu = cpu_percent(window).await;
    let per_s = (changes.load(Ordering::Relaxed) - n0) as f64 / t0.elapsed().as_secs_f64();
    println!("  bare client: {cpu:.1} % of one core; {per_s:.0} changes/s delivered");
    let _ = session.disconnect().await;
    events.abort();
    (cpu, per_s)
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
    let per_sub: Option<usize> = args.get(2).and_then(|a| a.parse().ok());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let peer = Peer::start();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (mut ours, mut anchor) = (Vec::new(), Vec::new());
        let (mut ours_rate, mut anchor_rate) = (Vec::new(), Vec::new());
        for _ in 0..repeats {
            let (cpu, rate) = run_bare(&peer, window).await;
            anchor.push(cpu);
            anchor_rate.push(rate);
            let (cpu, rate) = run_adapter(&peer, window, per_sub).await;
            ours.push(cpu);
            ours_rate.push(rate);
        }
        let (o, b) = (median(ours.clone()), median(anchor.clone()));
        let (or, br) = (median(ours_rate), median(anchor_rate));
        let made = ITEMS as f64 / TICK.as_secs_f64();
        println!(
            "CPU, 10,000 monitored items at 100 ms: adapter {o:.1} % of one core, bare async-opcua subscription {b:.1} %, ratio {:.2} (runs: {ours:.1?} vs {anchor:.1?}); changes/s delivered (median) adapter {or:.0}, bare {br:.0}, of {made:.0} made",
            o / b.max(0.01)
        );
    });
}
