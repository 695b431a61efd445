//! An OPC UA client session on the hydromet line, for the tests: the
//! namespace looked up by URI, reads, writes and method calls by node path.

use opcua::client::{ClientBuilder, IdentityToken, Session};
use opcua::crypto::SecurityPolicy;
use opcua::types::{
    AttributeId, DataValue, MessageSecurityMode, NodeId, ReadValueId, StatusCode,
    TimestampsToReturn, Variant, WriteValue,
};
use remine_sim::HYDROMET_NAMESPACE_URI;
use std::sync::Arc;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(10);

/// A connected client session and its namespace index.
pub struct Ua {
    pub session: Arc<Session>,
    pub ns: u16,
    _pki: tempfile::TempDir,
}

impl Ua {
    pub async fn connect(
        endpoint: &str,
        policy: SecurityPolicy,
        mode: MessageSecurityMode,
        who: IdentityToken,
    ) -> Ua {
        let pki = tempfile::tempdir().expect("temp dir");
        let mut client = ClientBuilder::new()
            .application_name("remine-sim tests")
            .application_uri("urn:remine:sim:tests")
            .pki_dir(pki.path())
            .create_sample_keypair(true)
            .trust_server_certs(true)
            .session_retry_limit(3)
            .client()
            .expect("client config");
        let connect = client.connect_to_matching_endpoint((endpoint, policy.to_str(), mode), who);
        let (session, event_loop) = tokio::time::timeout(LIMIT, connect)
            .await
            .expect("connect in time")
            .expect("connect");
        event_loop.spawn();
        assert!(
            tokio::time::timeout(LIMIT, session.wait_for_connection())
                .await
                .expect("session in time"),
            "session connected"
        );
        let ns = session
            .get_namespace_index(HYDROMET_NAMESPACE_URI)
            .await
            .expect("the namespace is found by its URI");
        Ua {
            session,
            ns,
            _pki: pki,
        }
    }

    pub async fn anonymous(endpoint: &str) -> Ua {
        Ua::connect(
            endpoint,
            SecurityPolicy::None,
            MessageSecurityMode::None,
            IdentityToken::Anonymous,
        )
        .await
    }

    pub fn id(&self, path: &str) -> NodeId {
        NodeId::new(self.ns, path)
    }

    pub async fn read(&self, path: &str) -> DataValue {
        let req = ReadValueId::new_value(self.id(path));
        let mut values = self
            .session
            .read(&[req], TimestampsToReturn::Both, 0.0)
            .await
            .expect("read");
        values.pop().expect("one value")
    }

    pub async fn f64(&self, path: &str) -> f64 {
        match self.read(path).await.value {
            Some(Variant::Double(v)) => v,
            other => panic!("{path}: expected a Double, got {other:?}"),
        }
    }

    pub async fn u16(&self, path: &str) -> u16 {
        match self.read(path).await.value {
            Some(Variant::UInt16(v)) => v,
            other => panic!("{path}: expected a UInt16, got {other:?}"),
        }
    }

    pub async fn write(&self, path: &str, value: impl Into<Variant>) -> StatusCode {
        let w = WriteValue {
            node_id: self.id(path),
            attribute_id: AttributeId::Value as u32,
            index_range: Default::default(),
            value: DataValue::value_only(value.into()),
        };
        let mut r = self.session.write(&[w]).await.expect("write");
        r.pop().expect("one status")
    }

    pub async fn call(&self, unit: &str, method: &str) -> StatusCode {
        let r = self
            .session
            .call_one((
                self.id(unit),
                self.id(&format!("{unit}.{method}")),
                None::<Vec<Variant>>,
            ))
            .await
            .expect("call");
        r.status_code
    }

    pub async fn until_u16(&self, path: &str, want: u16, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let v = self.u16(path).await;
            if v == want {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path} stayed {v}, wanted {want}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}
