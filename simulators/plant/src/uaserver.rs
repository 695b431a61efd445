//! The OPC UA server of the hydromet line: a folder per unit under Objects,
//! its variables (with EngineeringUnits and EURange properties) and its
//! methods, in the namespace [`crate::HYDROMET_NAMESPACE_URI`].
//!
//! Writable variables and the state codes are backed by the line's own
//! state: a write callback applies a value to the model at once and a read
//! callback reads the model (the server's storage is bypassed for them, so a
//! write or a command reads back at once; subscriptions to them are sampled).
//! Measured values are pushed with `set_values` after every tick, so
//! subscribers get data changes.

use crate::SimError;
use crate::lines::WriteRefused;
use crate::lines::hydromet::{HydroVar, HydrometLine};
use crate::lines::lock;
use crate::maps::Access;
use crate::model::hydromet::HydroUnit;
use crate::nodes::{NodeList, NodeType, VarSpec};
use opcua::crypto::SecurityPolicy;
use opcua::nodes::{MethodBuilder, VariableBuilder};
use opcua::server::diagnostics::NamespaceMetadata;
use opcua::server::node_manager::memory::{SimpleNodeManager, simple_node_manager};
use opcua::server::{
    ANONYMOUS_USER_TOKEN_ID, Server, ServerBuilder, ServerHandle, ServerUserToken,
};
use opcua::types::{
    DataTypeId, DataValue, EUInformation, LocalizedText, MessageSecurityMode, NodeId, NumericRange,
    ObjectId, QualifiedName, Range, StatusCode, UAString, VariableTypeId, Variant,
};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The demo user of the hydromet server (see simulators/README.md).
pub const DEMO_USER: &str = "remine";
/// The demo user's password. A simulator's password, not a secret.
pub const DEMO_PASSWORD: &str = "remine-sim";
const DEMO_USER_TOKEN_ID: &str = "remine-demo-user";
const UNECE_NAMESPACE: &str = "http://www.opcfoundation.org/UA/units/un/cefact";

/// The running server's handle and what the tick loop pushes to it.
pub(crate) struct HydrometServer {
    handle: ServerHandle,
    manager: Arc<SimpleNodeManager>,
    pushed: Vec<(NodeId, HydroUnit, HydroVar, NodeType)>,
    line: Arc<Mutex<HydrometLine>>,
    /// Measured variables that read a fixed value (frozen or spiking
    /// sensors, see [`crate::faults`]).
    overrides: Arc<Mutex<Vec<(HydroUnit, HydroVar, f64)>>>,
}

impl std::fmt::Debug for HydrometServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HydrometServer")
            .field("pushed", &self.pushed.len())
            .finish_non_exhaustive()
    }
}

/// The string node id of a unit's child.
pub fn node_name(unit: HydroUnit, child: &str) -> String {
    format!("{}.{child}", unit.name())
}

fn variant(data_type: NodeType, value: f64) -> Variant {
    match data_type {
        NodeType::UInt16 => Variant::UInt16(value.round().clamp(0.0, f64::from(u16::MAX)) as u16),
        NodeType::Double => Variant::Double(value),
    }
}

fn number(v: &Variant) -> Option<f64> {
    match v {
        Variant::UInt16(x) => Some(f64::from(*x)),
        Variant::Double(x) => Some(*x),
        Variant::Float(x) => Some(f64::from(*x)),
        Variant::Int16(x) => Some(f64::from(*x)),
        Variant::Int32(x) => Some(f64::from(*x)),
        Variant::UInt32(x) => Some(f64::from(*x)),
        Variant::Byte(x) => Some(f64::from(*x)),
        _ => None,
    }
}

impl HydrometServer {
    /// Build the server for a listener bound at `addr`, with its
    /// certificates under `pki_dir` and the address space of `nodes`.
    #[tracing::instrument(skip_all, fields(addr = %addr, pki_dir = %pki_dir.display()))]
    pub(crate) fn build(
        addr: SocketAddr,
        pki_dir: &Path,
        nodes: &NodeList,
        line: Arc<Mutex<HydrometLine>>,
        overrides: Arc<Mutex<Vec<(HydroUnit, HydroVar, f64)>>>,
    ) -> Result<(Server, HydrometServer), SimError> {
        let host = addr.ip().to_string();
        let url = format!("opc.tcp://{host}:{}/", addr.port());
        let tokens = [ANONYMOUS_USER_TOKEN_ID, DEMO_USER_TOKEN_ID];
        let builder = ServerBuilder::new()
            .application_name("remine plant simulator: hydromet")
            .application_uri("urn:remine:sim:hydromet:server")
            .product_uri("urn:remine:sim")
            .create_sample_keypair(true)
            .pki_dir(pki_dir)
            .trust_client_certs(true)
            .host(host)
            .port(addr.port())
            .discovery_urls(vec![url])
            .add_user_token(
                DEMO_USER_TOKEN_ID,
                ServerUserToken::user_pass(DEMO_USER, DEMO_PASSWORD),
            )
            .add_endpoint(
                "none",
                (
                    "/",
                    SecurityPolicy::None,
                    MessageSecurityMode::None,
                    &tokens as &[&str],
                ),
            )
            .add_endpoint(
                "basic256sha256_sign_encrypt",
                (
                    "/",
                    SecurityPolicy::Basic256Sha256,
                    MessageSecurityMode::SignAndEncrypt,
                    &tokens as &[&str],
                ),
            )
            .with_node_manager(simple_node_manager(
                NamespaceMetadata {
                    namespace_uri: nodes.namespace_uri.clone(),
                    ..Default::default()
                },
                "remine-hydromet",
            ));
        let (server, handle) = builder.build().map_err(SimError::OpcUa)?;
        if !pki_dir.join("own").join("cert.der").is_file() {
            return Err(SimError::OpcUa(format!(
                "no application certificate under {} (cannot create it there?)",
                pki_dir.display()
            )));
        }
        let ns = handle
            .get_namespace_index(&nodes.namespace_uri)
            .ok_or_else(|| {
                SimError::OpcUa(format!(
                    "namespace {} was not registered",
                    nodes.namespace_uri
                ))
            })?;
        let manager = handle
            .node_managers()
            .get_of_type::<SimpleNodeManager>()
            .ok_or_else(|| SimError::OpcUa("the hydromet node manager is missing".into()))?;
        let mut me = HydrometServer {
            handle,
            manager,
            pushed: Vec::new(),
            line,
            overrides,
        };
        me.populate(ns, nodes);
        me.push();
        Ok((server, me))
    }

    fn populate(&mut self, ns: u16, nodes: &NodeList) {
        let space = Arc::clone(self.manager.address_space());
        let mut space = space.write();
        let objects: NodeId = ObjectId::ObjectsFolder.into();
        for u in &nodes.units {
            let unit = u.unit;
            let folder = NodeId::new(ns, unit.name());
            space.add_folder(
                &folder,
                QualifiedName::new(ns, unit.name()),
                unit.name(),
                &objects,
            );
            for spec in &u.variables {
                let id = NodeId::new(ns, node_name(unit, spec.var.name()));
                let initial = lock(&self.line).read(unit, spec.var).unwrap_or(0.0);
                let mut b = VariableBuilder::new(
                    &id,
                    QualifiedName::new(ns, spec.var.name()),
                    spec.var.name(),
                )
                .description(spec.description.as_str())
                .data_type(match spec.data_type {
                    NodeType::UInt16 => DataTypeId::UInt16,
                    NodeType::Double => DataTypeId::Double,
                })
                .value(variant(spec.data_type, initial))
                .component_of(folder.clone());
                b = if spec.unece.is_empty() {
                    b.has_type_definition(VariableTypeId::BaseDataVariableType)
                } else {
                    b.has_type_definition(VariableTypeId::AnalogItemType)
                };
                if spec.access == Access::RW {
                    b = b.writable();
                }
                b.insert(&mut *space);
                add_properties(&mut space, ns, unit, &id, spec);
                if spec.access == Access::RW || spec.var.is_code() {
                    self.add_read_callback(&id, unit, spec);
                } else {
                    self.pushed
                        .push((id.clone(), unit, spec.var, spec.data_type));
                }
                if spec.access == Access::RW {
                    self.add_write_callback(&id, unit, spec);
                }
            }
            for method in &nodes.methods {
                let id = NodeId::new(ns, node_name(unit, method.name()));
                MethodBuilder::new(&id, QualifiedName::new(ns, method.name()), method.name())
                    .component_of(folder.clone())
                    .executable(true)
                    .user_executable(true)
                    .insert(&mut *space);
                let line = Arc::clone(&self.line);
                let method = *method;
                self.manager.inner().add_method_callback(id, move |_args| {
                    if lock(&line).call(unit, method) {
                        Ok(Vec::new())
                    } else {
                        Err(StatusCode::BadInvalidState)
                    }
                });
            }
        }
    }

    /// Serve reads of a variable from the model itself, so a value reads
    /// back at once after a write or a command.
    fn add_read_callback(&self, id: &NodeId, unit: HydroUnit, spec: &VarSpec) {
        let (var, data_type) = (spec.var, spec.data_type);
        let line = Arc::clone(&self.line);
        self.manager
            .inner()
            .add_read_callback(id.clone(), move |_range, _ts, _age| {
                let v = lock(&line).read(unit, var).unwrap_or(0.0);
                Ok(DataValue::new_now(variant(data_type, v)))
            });
    }

    /// Apply writes of a variable to the model at once (range-checked).
    fn add_write_callback(&self, id: &NodeId, unit: HydroUnit, spec: &VarSpec) {
        let (var, low, high) = (spec.var, spec.low, spec.high);
        let line = Arc::clone(&self.line);
        self.manager
            .inner()
            .add_write_callback(id.clone(), move |dv: DataValue, range: &NumericRange| {
                if range.has_range() {
                    return StatusCode::BadIndexRangeInvalid;
                }
                let Some(value) = dv.value.as_ref().and_then(number) else {
                    return StatusCode::BadTypeMismatch;
                };
                if !(low..=high).contains(&value) {
                    return StatusCode::BadOutOfRange;
                }
                match lock(&line).write(unit, var, value) {
                    Ok(()) => StatusCode::Good,
                    Err(e) => {
                        tracing::debug!(unit = unit.name(), tag = var.name(), refused = %e, "write refused");
                        match e {
                            WriteRefused::OutOfRange { .. } => StatusCode::BadOutOfRange,
                            WriteRefused::NotWritable { .. } => StatusCode::BadNotWritable,
                            WriteRefused::Busy { .. } => StatusCode::BadInvalidState,
                            WriteRefused::Conflict { .. } => StatusCode::BadInvalidArgument,
                        }
                    }
                }
            });
    }

    /// Push the read-only values to the address space (and so to subscribers).
    pub(crate) fn push(&self) {
        let values: Vec<(&NodeId, DataValue)> = {
            let overrides = lock(&self.overrides);
            let line = lock(&self.line);
            self.pushed
                .iter()
                .map(|(id, unit, var, ty)| {
                    let v = overrides
                        .iter()
                        .find(|(u, x, _)| u == unit && x == var)
                        .map(|(_, _, v)| *v)
                        .or_else(|| line.read(*unit, *var))
                        .unwrap_or(0.0);
                    (id, DataValue::new_now(variant(*ty, v)))
                })
                .collect()
        };
        let subscriptions = self.handle.subscriptions();
        if let Err(status) = self.manager.set_values(
            subscriptions,
            values.into_iter().map(|(id, dv)| (id, None, dv)),
        ) {
            tracing::warn!(%status, "could not push hydromet values");
        }
    }

    /// Make the server advertise `public` (the relay's port) in its
    /// endpoints once it has taken `private` from its listener.
    pub(crate) async fn advertise_port(&self, private: u16, public: u16) -> Result<(), SimError> {
        use std::sync::atomic::Ordering;
        let port = &self.handle.info().port;
        for _ in 0..500 {
            if port.load(Ordering::Relaxed) == private {
                port.store(public, Ordering::Relaxed);
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        Err(SimError::OpcUa(format!(
            "the server did not start listening on 127.0.0.1:{private} within 5 s"
        )))
    }

    /// Stop the server.
    pub(crate) fn cancel(&self) {
        self.handle.cancel();
    }
}

fn add_properties(
    space: &mut opcua::server::address_space::AddressSpace,
    ns: u16,
    unit: HydroUnit,
    var_id: &NodeId,
    spec: &VarSpec,
) {
    let base = node_name(unit, spec.var.name());
    let range_id = NodeId::new(ns, format!("{base}.EURange"));
    VariableBuilder::new(&range_id, QualifiedName::new(0, "EURange"), "EURange")
        .data_type(DataTypeId::Range)
        .value(Range {
            low: spec.low,
            high: spec.high,
        })
        .property_of(var_id.clone())
        .has_type_definition(VariableTypeId::PropertyType)
        .insert(space);
    if spec.unece.is_empty() {
        return;
    }
    let eu_id = NodeId::new(ns, format!("{base}.EngineeringUnits"));
    VariableBuilder::new(
        &eu_id,
        QualifiedName::new(0, "EngineeringUnits"),
        "EngineeringUnits",
    )
    .data_type(DataTypeId::EUInformation)
    .value(EUInformation {
        namespace_uri: UAString::from(UNECE_NAMESPACE),
        unit_id: spec.unit_id(),
        display_name: LocalizedText::new("", spec.eu.as_str()),
        description: LocalizedText::new("", spec.eu.as_str()),
    })
    .property_of(var_id.clone())
    .has_type_definition(VariableTypeId::PropertyType)
    .insert(space);
}
