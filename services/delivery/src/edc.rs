//! The Eclipse Tractus-X EDC connector: publishes a document in the
//! Catena-X dataspace through the connector's management API v3.
//!
//! One delivery makes three requests, each with the `X-Api-Key` header:
//! 1. `POST {management}/v3/assets`: the asset, a JSON-LD object with
//!    `@context` `https://w3id.org/edc/v0.0.1/ns/`, `dct:type`
//!    `https://w3id.org/catenax/taxonomy#Submodel`, the semantic id of the
//!    document's kind (from the configuration), and a data address of type
//!    `HttpData` pointing at `data_base_url` + the document id, where remine
//!    serves the document;
//! 2. `POST {management}/v3/policydefinitions`: a usage policy (ODRL `use`,
//!    restricted to the configured business partner numbers, if any);
//! 3. `POST {management}/v3/contractdefinitions`: offers the asset under
//!    that policy.
//!
//! The ids of all three are derived from the document (its id and the
//! start of its idempotency key), so a retry creates nothing new: the EDC
//! answers 409 Conflict for an id it has, which counts as done, and the
//! next step follows. A document whose kind has no semantic id configured
//! is parked.

use crate::config::{EdcSettings, Secret, secret};
use crate::http::{client, failed, refused};
use crate::{Connector, DeliveryError};
use async_trait::async_trait;
use remine_domain::outbox::{AttemptOutcome, ConnectorName, Document};
use reqwest::header::HeaderValue;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const EDC_NS: &str = "https://w3id.org/edc/v0.0.1/ns/";

/// The Tractus-X EDC management API connector.
#[derive(Debug)]
pub struct EdcConnector {
    settings: EdcSettings,
    api_key: Secret,
    client: Client,
}

/// The ids of what one document becomes in the EDC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdcIds {
    pub asset: String,
    pub policy: String,
    pub contract: String,
}

impl EdcIds {
    /// `remine-<document id>-<first 16 hex digits of its key>`, with
    /// `-policy` and `-contract` for the other two.
    pub fn of(document: &Document) -> EdcIds {
        let key = document.idempotency_key().as_str();
        let asset = format!("remine-{}-{}", document.id(), &key[..16.min(key.len())]);
        EdcIds {
            policy: format!("{asset}-policy"),
            contract: format!("{asset}-contract"),
            asset,
        }
    }
}

impl EdcConnector {
    /// Builds the connector, reading its API key through `env`.
    pub fn new(
        settings: EdcSettings,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<EdcConnector, DeliveryError> {
        let api_key = secret(env, &settings.name, &settings.api_key_env)?;
        let client = client(settings.timeout).map_err(|e| DeliveryError::Client {
            connector: settings.name.to_string(),
            why: e.to_string(),
        })?;
        Ok(EdcConnector {
            settings,
            api_key,
            client,
        })
    }

    /// The asset's JSON-LD.
    pub fn asset(&self, document: &Document, semantic_id: &str) -> Value {
        let ids = EdcIds::of(document);
        json!({
            "@context": {
                "@vocab": EDC_NS,
                "edc": EDC_NS,
                "dct": "http://purl.org/dc/terms/",
                "cx-taxo": "https://w3id.org/catenax/taxonomy#",
                "cx-common": "https://w3id.org/catenax/ontology/common#",
                "aas-semantics": "https://admin-shell.io/aas/3/0/HasSemantics/"
            },
            "@id": ids.asset,
            "properties": {
                "dct:type": { "@id": "https://w3id.org/catenax/taxonomy#Submodel" },
                "aas-semantics:semanticId": { "@id": semantic_id },
                "cx-common:version": "3.0",
                "description": format!("remine {} {}", document.kind(), document.id()),
                "contenttype": document.content_type().as_str(),
                "remine:idempotencyKey": document.idempotency_key().as_str()
            },
            "dataAddress": {
                "@type": "DataAddress",
                "type": "HttpData",
                "baseUrl": format!("{}{}", self.settings.data_base_url, document.id()),
                "proxyQueryParams": "false",
                "proxyPath": "false",
                "proxyMethod": "false",
                "proxyBody": "false"
            }
        })
    }

    /// The usage policy's JSON-LD.
    pub fn policy(&self, document: &Document) -> Value {
        let ids = EdcIds::of(document);
        let mut permission = json!({ "action": "use" });
        if !self.settings.allowed_bpns.is_empty() {
            permission["constraint"] = json!({
                "leftOperand": "cx-policy:BusinessPartnerNumber",
                "operator": "isAnyOf",
                "rightOperand": self.settings.allowed_bpns
            });
        }
        json!({
            "@context": {
                "@vocab": EDC_NS,
                "odrl": "http://www.w3.org/ns/odrl/2/",
                "cx-policy": "https://w3id.org/catenax/policy/"
            },
            "@type": "PolicyDefinition",
            "@id": ids.policy,
            "policy": {
                "@context": "http://www.w3.org/ns/odrl.jsonld",
                "@type": "Set",
                "permission": [permission]
            }
        })
    }

    /// The contract definition's JSON-LD: the asset offered under the
    /// policy, for access and for use.
    pub fn contract(&self, document: &Document) -> Value {
        let ids = EdcIds::of(document);
        json!({
            "@context": { "@vocab": EDC_NS },
            "@type": "ContractDefinition",
            "@id": ids.contract,
            "accessPolicyId": ids.policy,
            "contractPolicyId": ids.policy,
            "assetsSelector": [{
                "@type": "Criterion",
                "operandLeft": format!("{EDC_NS}id"),
                "operator": "=",
                "operandRight": ids.asset
            }]
        })
    }

    /// POSTs one object; `Ok(true)` when created, `Ok(false)` when the EDC
    /// had it already (409), the attempt's outcome otherwise.
    async fn create(&self, path: &str, body: &Value) -> Result<bool, AttemptOutcome> {
        let url = format!(
            "{}/{path}",
            self.settings.management_url.as_str().trim_end_matches('/')
        );
        let Ok(mut key) = HeaderValue::from_str(self.api_key.expose()) else {
            return Err(AttemptOutcome::Unsendable {
                reason: format!(
                    "the API key in {} cannot be sent in a header",
                    self.settings.api_key_env
                ),
            });
        };
        key.set_sensitive(true);
        let response = self
            .client
            .post(url)
            .header("X-Api-Key", key)
            .json(body)
            .send()
            .await
            .map_err(|e| failed(&e, self.settings.timeout))?;
        let status = response.status();
        if status.is_success() {
            Ok(true)
        } else if status == StatusCode::CONFLICT {
            Ok(false)
        } else {
            Err(refused(response, self.settings.timeout).await)
        }
    }
}

#[async_trait]
impl Connector for EdcConnector {
    fn name(&self) -> &ConnectorName {
        &self.settings.name
    }

    #[tracing::instrument(skip_all, fields(connector = %self.settings.name, document = %document.id()))]
    async fn send(&self, document: &Document) -> AttemptOutcome {
        let Some(semantic_id) = self.settings.semantic_ids.get(document.kind()) else {
            return AttemptOutcome::Unsendable {
                reason: format!(
                    "connector {}: no semantic id is configured for document kind {}",
                    self.settings.name,
                    document.kind()
                ),
            };
        };
        let ids = EdcIds::of(document);
        let steps = [
            (
                "v3/assets",
                self.asset(document, semantic_id),
                "asset",
                &ids.asset,
            ),
            (
                "v3/policydefinitions",
                self.policy(document),
                "policy",
                &ids.policy,
            ),
            (
                "v3/contractdefinitions",
                self.contract(document),
                "contract definition",
                &ids.contract,
            ),
        ];
        let mut receipt = Vec::new();
        for (path, body, what, id) in &steps {
            match self.create(path, body).await {
                Ok(true) => receipt.push(format!("{what} {id} created")),
                Ok(false) => receipt.push(format!("{what} {id} existed")),
                Err(outcome) => return outcome,
            }
        }
        AttemptOutcome::Delivered {
            receipt: receipt.join(", "),
        }
    }
}
