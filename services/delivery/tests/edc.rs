//! The Tractus-X EDC connector against a fake EDC management API on
//! loopback that refuses a wrong API key, answers 409 for an id it has, and
//! fails for a while (503, then 429 with Retry-After, then hangs): every
//! document becomes exactly one asset, one policy definition and one
//! contract definition, with the ids derived from it, the JSON-LD the
//! dataspace expects, and a data address where remine serves it.

#![allow(clippy::unwrap_used)]

mod common;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use common::*;
use remine_delivery::{EdcConnector, EdcIds, EdcSettings, Worker, WorkerHandle};
use remine_domain::outbox::{DeliveryState, DocumentKind, OutboxStore, StateName};
use remine_store::Db;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const API_KEY: &str = "edc-management-key";
const SEMANTIC_ID: &str = "urn:samm:io.catenax.secondary_material_content_verifiable:1.0.0#SecondaryMaterialContentVerifiable";
const DATA_BASE: &str = "https://remine.example/api/v1/outbox/documents/";

#[derive(Debug, Default)]
struct Edc {
    /// Requests still to fail: 503s first, then 429s, then hangs.
    fail_503: u32,
    fail_429: u32,
    hang: u32,
    /// Objects by collection and id.
    objects: BTreeMap<String, BTreeMap<String, Value>>,
    /// Creations by collection (a second one of an id would be a bug).
    created: BTreeMap<String, u32>,
    conflicts: u32,
}

type Shared = Arc<Mutex<Edc>>;

async fn create(
    State(edc): State<Shared>,
    Path(collection): Path<String>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(API_KEY) {
        return (StatusCode::UNAUTHORIZED, "[{\"message\":\"unauthorized\"}]").into_response();
    }
    let hang = {
        let mut e = edc.lock().unwrap();
        if e.fail_503 > 0 {
            e.fail_503 -= 1;
            return (StatusCode::SERVICE_UNAVAILABLE, "maintenance").into_response();
        }
        if e.fail_429 > 0 {
            e.fail_429 -= 1;
            return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "").into_response();
        }
        let hang = e.hang > 0;
        e.hang = e.hang.saturating_sub(1);
        let Some(id) = body.get("@id").and_then(Value::as_str).map(str::to_string) else {
            return (
                StatusCode::BAD_REQUEST,
                "[{\"message\":\"@id is missing\",\"type\":\"ValidationFailure\"}]",
            )
                .into_response();
        };
        let objects = e.objects.entry(collection.clone()).or_default();
        if objects.contains_key(&id) {
            e.conflicts += 1;
            let msg = format!(
                "[{{\"message\":\"Object {id} already exists\",\"type\":\"ObjectConflict\"}}]"
            );
            return (StatusCode::CONFLICT, msg).into_response();
        }
        objects.insert(id.clone(), body);
        *e.created.entry(collection).or_default() += 1;
        hang
    };
    if hang {
        // Created, but the answer comes too late for the client.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    (StatusCode::OK, "{\"@type\":\"IdResponse\"}").into_response()
}

async fn serve_edc(edc: &Shared) -> SocketAddr {
    let app = Router::new()
        .route("/management/v3/{collection}", post(create))
        .with_state(Arc::clone(edc));
    serve(app, None).await
}

fn settings(addr: SocketAddr) -> EdcSettings {
    EdcSettings {
        name: target("catenax"),
        management_url: format!("http://{addr}/management").parse().unwrap(),
        api_key_env: "EDC_KEY".into(),
        data_base_url: DATA_BASE.parse().unwrap(),
        timeout: Duration::from_millis(300),
        semantic_ids: [(
            DocumentKind::parse("provenance-record").unwrap(),
            SEMANTIC_ID.to_string(),
        )]
        .into_iter()
        .collect(),
        allowed_bpns: vec!["BPNL000000000001".into()],
    }
}

fn connector(addr: SocketAddr, key: &'static str) -> EdcConnector {
    EdcConnector::new(settings(addr), &move |var: &str| {
        (var == "EDC_KEY").then(|| key.to_string())
    })
    .unwrap()
}

fn worker(db: &Db, c: EdcConnector) -> Worker {
    let store: Arc<dyn OutboxStore> = Arc::new(db.clone());
    Worker::new(
        store,
        vec![Arc::new(c)],
        fast_retry(),
        common::settings("w1", Duration::from_secs(3)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_edc_gets_one_asset_policy_and_contract_per_document() {
    let store = sqlite().await;
    let db = &store.db;
    let edc = Arc::new(Mutex::new(Edc {
        fail_503: 5,
        fail_429: 2,
        hang: 2,
        ..Edc::default()
    }));
    let addr = serve_edc(&edc).await;
    let docs = enqueue(db, "provenance-record", "lot", 6, "catenax").await;
    let handle = WorkerHandle::spawn(worker(db, connector(addr, API_KEY)));
    wait_for_counts(db, 6, 0).await;
    handle.shutdown().await;

    let e = std::mem::take(&mut *edc.lock().unwrap());
    for collection in ["assets", "policydefinitions", "contractdefinitions"] {
        assert_eq!(e.created.get(collection), Some(&6), "{collection}");
    }
    assert!(
        e.conflicts >= 2,
        "the objects created during the hangs were posted again"
    );
    for d in &docs {
        let ids = EdcIds::of(d);
        let asset = &e.objects["assets"][&ids.asset];
        assert_eq!(
            asset["@context"]["@vocab"],
            json!("https://w3id.org/edc/v0.0.1/ns/")
        );
        assert_eq!(
            asset["properties"]["dct:type"]["@id"],
            json!("https://w3id.org/catenax/taxonomy#Submodel")
        );
        assert_eq!(
            asset["properties"]["aas-semantics:semanticId"]["@id"],
            json!(SEMANTIC_ID)
        );
        assert_eq!(asset["dataAddress"]["type"], json!("HttpData"));
        assert_eq!(
            asset["dataAddress"]["baseUrl"],
            json!(format!("{DATA_BASE}{}", d.id()))
        );
        let policy = &e.objects["policydefinitions"][&ids.policy];
        assert_eq!(
            policy["policy"]["permission"][0]["constraint"]["rightOperand"],
            json!(["BPNL000000000001"])
        );
        let contract = &e.objects["contractdefinitions"][&ids.contract];
        assert_eq!(contract["accessPolicyId"], json!(ids.policy));
        assert_eq!(contract["contractPolicyId"], json!(ids.policy));
        assert_eq!(
            contract["assetsSelector"][0]["operandRight"],
            json!(ids.asset)
        );
    }
    let delivered = db.deliveries(StateName::Delivered, 10).await.unwrap();
    assert!(delivered.iter().all(|d| matches!(
        &d.state,
        DeliveryState::Delivered { receipt, .. } if receipt.contains("contract definition")
    )));
    store.db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_follow_from_the_document_and_change_with_its_content() {
    let a = document("provenance-record", "lot-1");
    let again = document("provenance-record", "lot-1");
    let other = document("provenance-record", "lot-2");
    assert_eq!(EdcIds::of(&a), EdcIds::of(&again));
    assert_ne!(EdcIds::of(&a).asset, EdcIds::of(&other).asset);
    let ids = EdcIds::of(&a);
    assert!(ids.asset.starts_with("remine-lot-1-"), "{}", ids.asset);
    assert_eq!(ids.policy, format!("{}-policy", ids.asset));
    assert_eq!(ids.contract, format!("{}-contract", ids.asset));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_api_key_and_an_unknown_kind_are_parked() {
    let store = sqlite().await;
    let db = &store.db;
    let edc = Arc::new(Mutex::new(Edc::default()));
    let addr = serve_edc(&edc).await;
    enqueue(db, "provenance-record", "lot", 1, "catenax").await;
    enqueue(db, "recovery-report", "report", 1, "catenax").await;
    worker(db, connector(addr, "wrong"))
        .run_once()
        .await
        .unwrap();
    let parked = db.deliveries(StateName::Parked, 10).await.unwrap();
    let reasons: BTreeMap<String, (String, Option<u16>)> = parked
        .into_iter()
        .map(|d| match d.state {
            DeliveryState::Parked { reason, status, .. } => {
                (d.key.document.as_str().to_string(), (reason, status))
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        reasons["lot-00"],
        ("HTTP 401: unauthorized".to_string(), Some(401))
    );
    assert_eq!(
        reasons["report-00"],
        (
            "connector catenax: no semantic id is configured for document kind recovery-report"
                .to_string(),
            None
        )
    );
    assert!(edc.lock().unwrap().objects.is_empty());
    store.db.close().await;
}
