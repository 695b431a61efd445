//! The plain HTTPS connector: one POST of the document to a platform's URL,
//! with `Authorization: Bearer <token>` and `Idempotency-Key: <key>`.
//!
//! The body is the document's content as stored, with its content type;
//! `X-Remine-Document-Id` and `X-Remine-Document-Kind` say what it is. Any
//! 2xx is delivered (the receipt keeps the status and the start of the
//! body). A receiver that honours the idempotency key stores a document
//! once however often it is sent, so a retry after a lost answer is safe.

use crate::config::{HttpsSettings, Secret, secret};
use crate::http::{body, client, failed, refused, shorten};
use crate::{Connector, DeliveryError};
use async_trait::async_trait;
use remine_domain::outbox::{AttemptOutcome, ConnectorName, Document};
use reqwest::Client;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};

/// A plain HTTPS POST connector.
#[derive(Debug)]
pub struct HttpsConnector {
    settings: HttpsSettings,
    token: Secret,
    client: Client,
}

impl HttpsConnector {
    /// Builds the connector, reading its token through `env`.
    pub fn new(
        settings: HttpsSettings,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<HttpsConnector, DeliveryError> {
        let token = secret(env, &settings.name, &settings.token_env)?;
        let client = client(settings.timeout).map_err(|e| DeliveryError::Client {
            connector: settings.name.to_string(),
            why: e.to_string(),
        })?;
        Ok(HttpsConnector {
            settings,
            token,
            client,
        })
    }
}

#[async_trait]
impl Connector for HttpsConnector {
    fn name(&self) -> &ConnectorName {
        &self.settings.name
    }

    #[tracing::instrument(skip_all, fields(connector = %self.settings.name, document = %document.id()))]
    async fn send(&self, document: &Document) -> AttemptOutcome {
        let Ok(mut bearer) = HeaderValue::from_str(&format!("Bearer {}", self.token.expose()))
        else {
            return AttemptOutcome::Unsendable {
                reason: format!(
                    "the token in {} cannot be sent in a header",
                    self.settings.token_env
                ),
            };
        };
        // Kept out of the HTTP stack's debug output.
        bearer.set_sensitive(true);
        let request = self
            .client
            .post(self.settings.url.clone())
            .header(CONTENT_TYPE, document.content_type().as_str())
            .header(AUTHORIZATION, bearer)
            .header("Idempotency-Key", document.idempotency_key().as_str())
            .header("X-Remine-Document-Id", document.id().as_str())
            .header("X-Remine-Document-Kind", document.kind().as_str())
            .body(document.content().as_bytes().to_vec());
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return failed(&e, self.settings.timeout),
        };
        let status = response.status();
        if !status.is_success() {
            return refused(response, self.settings.timeout).await;
        }
        match body(response).await {
            Ok(text) => AttemptOutcome::Delivered {
                receipt: shorten(&format!("HTTP {}: {}", status.as_u16(), text.trim())),
            },
            Err(e) => failed(&e, self.settings.timeout),
        }
    }
}
