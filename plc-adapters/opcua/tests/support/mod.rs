//! A real OPC UA server for the adapter's tests (async-opcua's server on
//! 127.0.0.1): a `Leach1` object in namespace `urn:remine:test` with a few
//! variables, a writable setpoint behind write and read callbacks that count
//! writes, a variable that ignores writes, and two methods. It can be stopped
//! and started again on the same port with the same certificate.

#![allow(dead_code)]

use opcua::crypto::SecurityPolicy;
use opcua::server::address_space::{MethodBuilder, ObjectBuilder, VariableBuilder};
use opcua::server::diagnostics::NamespaceMetadata;
use opcua::server::node_manager::memory::{SimpleNodeManager, simple_node_manager};
use opcua::server::{ANONYMOUS_USER_TOKEN_ID, ServerBuilder, ServerHandle, ServerUserToken};
use opcua::types::{
    DataTypeId, DataValue, MessageSecurityMode, NodeId, ObjectId, QualifiedName, StatusCode,
    Variant,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub const NS: &str = "urn:remine:test";
pub const USER: &str = "operator";
pub const PASSWORD: &str = "s3cret-Pa55";

/// What the test can see of the server's insides.
#[derive(Default)]
pub struct Probe {
    /// Values received by the setpoint's write callback.
    pub setpoint_writes: Mutex<Vec<Variant>>,
    /// Backing store of the setpoint (a write callback replaces storage).
    pub setpoint: Mutex<f64>,
    /// Writes the "stuck" variable acknowledged and dropped.
    pub stuck_writes: AtomicUsize,
    pub holds: AtomicUsize,
}

pub struct TestServer {
    pub port: u16,
    pub probe: Arc<Probe>,
    pki: PathBuf,
    handle: Option<ServerHandle>,
    task: Option<JoinHandle<()>>,
    ns: u16,
}

impl TestServer {
    /// A server on a free port, its pki under `dir`.
    pub async fn start(dir: &Path) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("bound address").port();
        let mut server = TestServer {
            port,
            probe: Arc::new(Probe::default()),
            pki: dir.join("server-pki"),
            handle: None,
            task: None,
            ns: 0,
        };
        server.run(listener);
        server
    }

    pub fn endpoint(&self) -> String {
        format!("opc.tcp://127.0.0.1:{}/", self.port)
    }

    /// Stops the server: every session and connection ends.
    pub async fn stop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.cancel();
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Starts a new server on the same port, with the same certificate.
    pub async fn restart(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("rebind the same port");
        self.run(listener);
    }

    fn manager(&self) -> Arc<SimpleNodeManager> {
        self.handle
            .as_ref()
            .and_then(|h| h.node_managers().get_of_type::<SimpleNodeManager>())
            .expect("a running server with a simple node manager")
    }

    fn id(&self, name: &str) -> NodeId {
        NodeId::new(self.ns, name)
    }

    /// The node with string identifier `name` in the test namespace.
    pub fn node(&self, name: &str) -> NodeId {
        self.id(name)
    }

    /// Sets a variable's value the way a DCS would: subscribers are notified.
    pub fn set(&self, id: NodeId, value: impl Into<Variant>) {
        let handle = self.handle.as_ref().expect("a running server");
        self.manager()
            .set_value(
                handle.subscriptions(),
                &id,
                None,
                DataValue::new_now(value.into()),
            )
            .expect("set_value");
    }

    pub fn temperature(&self) -> NodeId {
        self.id("Leach1.Temperature")
    }

    pub fn running(&self) -> NodeId {
        self.id("Leach1.Running")
    }

    /// The subscriptions of every open session: (publishing interval as
    /// revised by the server, sampling intervals of its monitored items,
    /// sorted), sorted by interval, then by sampling intervals.
    pub fn subscriptions(&self) -> Vec<(std::time::Duration, Vec<f64>)> {
        let Some(handle) = self.handle.as_ref() else {
            return Vec::new();
        };
        let cache = handle.subscriptions();
        let mut found = Vec::new();
        // Session ids are numbered from 1 across the test process.
        for session in 0..10_000 {
            let Some(subs) = cache.get_session_subscriptions(session) else {
                continue;
            };
            let subs = subs.lock();
            for id in subs.subscription_ids() {
                if let Some(sub) = subs.get(id) {
                    let mut sampling: Vec<f64> =
                        sub.items().map(|item| item.sampling_interval()).collect();
                    sampling.sort_by(f64::total_cmp);
                    found.push((sub.publishing_interval(), sampling));
                }
            }
        }
        found.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then(a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal))
        });
        found
    }

    /// The value of a variable without callbacks.
    pub fn value(&self, id: &NodeId) -> Option<Variant> {
        let manager = self.manager();
        let space = manager.address_space().read();
        let node = space.find(id)?;
        match node {
            opcua::server::address_space::NodeType::Variable(v) => {
                v.value(
                    opcua::types::TimestampsToReturn::Neither,
                    &opcua::types::NumericRange::None,
                    &opcua::types::DataEncoding::Binary,
                    0.0,
                )
                .value
            }
            _ => None,
        }
    }

    fn run(&mut self, listener: TcpListener) {
        let user_tokens = [ANONYMOUS_USER_TOKEN_ID, "operator"];
        let user_only = ["operator"];
        let (server, handle) = ServerBuilder::new()
            .application_name("remine test server")
            .application_uri("urn:remine:test-server")
            .product_uri("urn:remine:test-server")
            .create_sample_keypair(true)
            .pki_dir(&self.pki)
            .trust_client_certs(true)
            .host("127.0.0.1")
            .port(self.port)
            .discovery_urls(vec![self.endpoint()])
            .add_user_token("operator", ServerUserToken::user_pass(USER, PASSWORD))
            .add_endpoint(
                "none",
                (
                    "/",
                    SecurityPolicy::None,
                    MessageSecurityMode::None,
                    &user_tokens as &[&str],
                ),
            )
            .add_endpoint(
                "basic256sha256",
                (
                    "/",
                    SecurityPolicy::Basic256Sha256,
                    MessageSecurityMode::SignAndEncrypt,
                    &user_only as &[&str],
                ),
            )
            .with_node_manager(simple_node_manager(
                NamespaceMetadata {
                    namespace_uri: NS.to_owned(),
                    ..Default::default()
                },
                "remine-test",
            ))
            .build()
            .expect("test server builds");
        self.ns = handle.get_namespace_index(NS).expect("test namespace");
        self.handle = Some(handle);
        self.populate();
        self.task = Some(tokio::spawn(async move {
            let _ = server.run_with(listener).await;
        }));
    }

    fn populate(&self) {
        let ns = self.ns;
        let manager = self.manager();
        let q = |name: &str| QualifiedName::new(ns, name);
        let leach = self.id("Leach1");
        {
            let space = manager.address_space();
            let mut space = space.write();
            ObjectBuilder::new(&leach, q("Leach1"), "Leach1")
                .organized_by(ObjectId::ObjectsFolder)
                .insert(&mut *space);
            let variable =
                |id: NodeId, name: &str, ty: DataTypeId, value: Variant, writable: bool| {
                    let b = VariableBuilder::new(&id, q(name), name)
                        .data_type(ty)
                        .value(value)
                        .component_of(leach.clone());
                    if writable { b.writable() } else { b }
                };
            variable(
                self.id("Leach1.Temperature"),
                "Temperature",
                DataTypeId::Double,
                70.0f64.into(),
                false,
            )
            .insert(&mut *space);
            variable(
                NodeId::new(ns, 1001u32),
                "Level",
                DataTypeId::Float,
                2.5f32.into(),
                false,
            )
            .insert(&mut *space);
            variable(
                self.id("Leach1.Running"),
                "Running",
                DataTypeId::Boolean,
                true.into(),
                false,
            )
            .insert(&mut *space);
            variable(
                self.id("Leach1.BatchCount"),
                "BatchCount",
                DataTypeId::UInt32,
                7u32.into(),
                false,
            )
            .insert(&mut *space);
            variable(
                self.id("Leach1.Mode"),
                "Mode",
                DataTypeId::Int32,
                1i32.into(),
                true,
            )
            .insert(&mut *space);
            variable(
                self.id("Leach1.Flow"),
                "Flow",
                DataTypeId::Float,
                0f32.into(),
                true,
            )
            .insert(&mut *space);
            variable(
                self.id("Leach1.Pumps"),
                "Pumps",
                DataTypeId::UInt16,
                0u16.into(),
                true,
            )
            .insert(&mut *space);
            variable(
                self.id("Leach1.Setpoint"),
                "Setpoint",
                DataTypeId::Double,
                0f64.into(),
                true,
            )
            .insert(&mut *space);
            variable(
                self.id("Leach1.Stuck"),
                "Stuck",
                DataTypeId::Double,
                0f64.into(),
                true,
            )
            .insert(&mut *space);
            MethodBuilder::new(&self.id("Leach1.Hold"), q("Hold"), "Hold")
                .component_of(leach.clone())
                .insert(&mut *space);
            MethodBuilder::new(&self.id("Leach1.Double"), q("Double"), "Double")
                .component_of(leach.clone())
                .input_args(
                    &mut *space,
                    &self.id("Leach1.Double.In"),
                    &[("X", DataTypeId::Int32).into()],
                )
                .output_args(
                    &mut *space,
                    &self.id("Leach1.Double.Out"),
                    &[("Y", DataTypeId::Int32).into()],
                )
                .insert(&mut *space);
        }

        let inner = manager.inner();
        let probe = self.probe.clone();
        inner.add_write_callback(self.id("Leach1.Setpoint"), move |value, _range| {
            let Some(v) = value.value else {
                return StatusCode::BadTypeMismatch;
            };
            if let Variant::Double(x) = v {
                *probe.setpoint.lock().expect("probe") = x;
            }
            probe.setpoint_writes.lock().expect("probe").push(v);
            StatusCode::Good
        });
        let probe = self.probe.clone();
        inner.add_read_callback(self.id("Leach1.Setpoint"), move |_range, _ts, _age| {
            Ok(DataValue::new_now(*probe.setpoint.lock().expect("probe")))
        });
        let probe = self.probe.clone();
        inner.add_write_callback(self.id("Leach1.Stuck"), move |_value, _range| {
            probe.stuck_writes.fetch_add(1, Ordering::SeqCst);
            StatusCode::Good
        });
        inner.add_read_callback(self.id("Leach1.Stuck"), |_range, _ts, _age| {
            Ok(DataValue::new_now(0f64))
        });
        let probe = self.probe.clone();
        inner.add_method_callback(self.id("Leach1.Hold"), move |_args| {
            probe.holds.fetch_add(1, Ordering::SeqCst);
            Ok(Vec::new())
        });
        inner.add_method_callback(self.id("Leach1.Double"), |args| match args.first() {
            Some(Variant::Int32(x)) => Ok(vec![Variant::Int32(x * 2)]),
            _ => Err(StatusCode::BadInvalidArgument),
        });
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.cancel();
        }
    }
}
