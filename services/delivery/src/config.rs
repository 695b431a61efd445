//! The delivery configuration: a TOML file with the worker's settings, the
//! retry policy and the connectors, parsed and linted at start-up.
//!
//! ```toml
//! [worker]
//! name = "remine-plant-1"   # how this worker signs its claims (default "remine")
//! poll_interval = "5s"      # how often to look for due deliveries (10ms..1h)
//! batch = 16                # deliveries claimed and sent at once (1..1000)
//! lease = "5m"              # how long a claim holds; at least 4x the longest
//!                           # connector timeout (default: that, and 1 min at least)
//!
//! [retry]                   # capped exponential backoff, no jitter
//! initial = "1s"
//! cap = "10m"
//! max_retry_after = "1h"    # a longer Retry-After is shortened to this
//!
//! [[connector]]
//! kind = "https"            # a plain POST of the document
//! name = "cn-platform"      # the target name documents are queued for
//! url = "https://platform.example/api/v1/documents"
//! token_env = "REMINE_CN_PLATFORM_TOKEN"   # the bearer token's variable
//! timeout = "30s"           # per request (1ms..10min, default 30s)
//!
//! [[connector]]
//! kind = "edc"              # Eclipse Tractus-X EDC management API v3
//! name = "catenax"
//! management_url = "https://edc.example/management"
//! api_key_env = "REMINE_EDC_API_KEY"        # sent as X-Api-Key
//! data_base_url = "https://remine.example/api/v1/outbox/documents/"
//! timeout = "30s"
//! allowed_bpns = ["BPNL000000000001"]       # who may negotiate (empty: anyone)
//! [connector.semantic_ids]  # the semantic id of each document kind
//! provenance-record = "urn:samm:io.catenax.secondary_material_content_verifiable:1.0.0#SecondaryMaterialContentVerifiable"
//! ```
//!
//! Unknown keys are refused; URLs must parse and be `https`, except on a
//! loopback host (`127.0.0.1`, `::1`, `localhost`), where `http` is allowed
//! for tests and a local proxy. Secrets are never in the file: it names the
//! environment variables that hold them, read when the connectors are
//! built, and a [`Secret`] never shows in Debug output or logs.

use crate::DeliveryError;
use remine_domain::outbox::{ConnectorName, DocumentKind, RetryPolicy};
use reqwest::Url;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::time::Duration;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_POLL: Duration = Duration::from_secs(5);
const DEFAULT_BATCH: u32 = 16;
const MIN_LEASE: Duration = Duration::from_secs(60);
/// A claim's lease must cover this many request timeouts (an EDC delivery
/// makes three requests).
pub const LEASE_TIMEOUTS: u32 = 4;

/// A secret read from the environment (a token, an API key). Its Debug
/// output is redacted and it has no Display, so it cannot end up in a log
/// line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one header that carries it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The whole delivery configuration, linted.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryConfig {
    pub worker: WorkerSettings,
    pub retry: RetryPolicy,
    pub connectors: Vec<ConnectorSettings>,
}

/// How the worker runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSettings {
    pub name: String,
    pub poll_interval: Duration,
    pub batch: u32,
    pub lease: Duration,
}

/// One connector, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectorSettings {
    Https(HttpsSettings),
    Edc(EdcSettings),
}

impl ConnectorSettings {
    pub fn name(&self) -> &ConnectorName {
        match self {
            ConnectorSettings::Https(s) => &s.name,
            ConnectorSettings::Edc(s) => &s.name,
        }
    }

    pub fn timeout(&self) -> Duration {
        match self {
            ConnectorSettings::Https(s) => s.timeout,
            ConnectorSettings::Edc(s) => s.timeout,
        }
    }
}

/// A plain HTTPS POST with a bearer token.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpsSettings {
    pub name: ConnectorName,
    pub url: Url,
    /// The environment variable holding the bearer token.
    pub token_env: String,
    pub timeout: Duration,
}

/// A Tractus-X EDC's management API.
#[derive(Debug, Clone, PartialEq)]
pub struct EdcSettings {
    pub name: ConnectorName,
    /// The management API's base, before `/v3/...`.
    pub management_url: Url,
    /// The environment variable holding the `X-Api-Key`.
    pub api_key_env: String,
    /// Where remine serves documents: an asset's data address is this
    /// followed by the document id. Always ends in '/'.
    pub data_base_url: Url,
    pub timeout: Duration,
    pub semantic_ids: BTreeMap<DocumentKind, String>,
    /// Business partner numbers allowed to negotiate; empty for anyone in
    /// the dataspace.
    pub allowed_bpns: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    worker: WorkerFile,
    #[serde(default)]
    retry: RetryFile,
    #[serde(default, rename = "connector")]
    connectors: Vec<ConnectorFile>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct WorkerFile {
    name: Option<String>,
    poll_interval: Option<String>,
    batch: Option<u32>,
    lease: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RetryFile {
    initial: Option<String>,
    cap: Option<String>,
    max_retry_after: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
enum ConnectorFile {
    Https {
        name: String,
        url: String,
        token_env: String,
        timeout: Option<String>,
    },
    Edc {
        name: String,
        management_url: String,
        api_key_env: String,
        data_base_url: String,
        timeout: Option<String>,
        #[serde(default)]
        semantic_ids: BTreeMap<String, String>,
        #[serde(default)]
        allowed_bpns: Vec<String>,
    },
}

/// Lints one file; `source` names it in every message.
struct Lint<'a> {
    source: &'a str,
}

impl Lint<'_> {
    fn error(&self, why: impl Into<String>) -> DeliveryError {
        DeliveryError::Config {
            file: self.source.to_string(),
            why: why.into(),
        }
    }

    fn duration(
        &self,
        field: &str,
        value: Option<&str>,
        default: Duration,
        min: Duration,
        max: Duration,
    ) -> Result<Duration, DeliveryError> {
        let Some(text) = value else {
            return Ok(default);
        };
        let d = humantime::parse_duration(text)
            .map_err(|e| self.error(format!("{field} = \"{text}\": {e}")))?;
        if d < min || d > max {
            return Err(self.error(format!(
                "{field} = \"{text}\": must be between {} and {}",
                humantime::format_duration(min),
                humantime::format_duration(max)
            )));
        }
        Ok(d)
    }

    fn url(&self, field: &str, text: &str) -> Result<Url, DeliveryError> {
        let url = Url::parse(text).map_err(|e| self.error(format!("{field} = \"{text}\": {e}")))?;
        let loopback = url.host_str().is_some_and(|h| {
            h == "localhost"
                || h.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            other => {
                return Err(self.error(format!(
                    "{field} = \"{text}\": scheme {other} is not allowed (https, or http on a loopback host)"
                )));
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(self.error(format!(
                "{field}: credentials in the URL are not allowed; name an environment variable instead"
            )));
        }
        Ok(url)
    }

    fn env_name(&self, field: &str, name: &str) -> Result<String, DeliveryError> {
        let ok = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if ok {
            Ok(name.to_string())
        } else {
            Err(self.error(format!(
                "{field} = \"{name}\": expected an environment variable name (A-Z, 0-9, '_')"
            )))
        }
    }

    fn connector(&self, c: ConnectorFile) -> Result<ConnectorSettings, DeliveryError> {
        let name_of = |n: &str| {
            ConnectorName::parse(n).map_err(|e| self.error(format!("connector name: {e}")))
        };
        let timeout = |t: Option<String>, name: &str| {
            self.duration(
                &format!("connector {name}: timeout"),
                t.as_deref(),
                DEFAULT_TIMEOUT,
                Duration::from_millis(1),
                Duration::from_secs(600),
            )
        };
        Ok(match c {
            ConnectorFile::Https {
                name,
                url,
                token_env,
                timeout: t,
            } => ConnectorSettings::Https(HttpsSettings {
                url: self.url(&format!("connector {name}: url"), &url)?,
                token_env: self.env_name(&format!("connector {name}: token_env"), &token_env)?,
                timeout: timeout(t, &name)?,
                name: name_of(&name)?,
            }),
            ConnectorFile::Edc {
                name,
                management_url,
                api_key_env,
                data_base_url,
                timeout: t,
                semantic_ids,
                allowed_bpns,
            } => {
                let base = if data_base_url.ends_with('/') {
                    data_base_url
                } else {
                    format!("{data_base_url}/")
                };
                let mut ids = BTreeMap::new();
                for (kind, id) in semantic_ids {
                    let kind = DocumentKind::parse(&kind)
                        .map_err(|e| self.error(format!("connector {name}: semantic_ids: {e}")))?;
                    if id.trim().is_empty() || id.chars().any(char::is_whitespace) {
                        return Err(self.error(format!(
                            "connector {name}: semantic_ids.{kind} = \"{id}\": expected a URN without spaces"
                        )));
                    }
                    ids.insert(kind, id);
                }
                for bpn in &allowed_bpns {
                    let ok = bpn.len() == 16
                        && bpn.starts_with("BPN")
                        && bpn
                            .chars()
                            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
                    if !ok {
                        return Err(self.error(format!(
                            "connector {name}: allowed_bpns: \"{bpn}\" is not a business partner number (BPNL + 12 characters)"
                        )));
                    }
                }
                ConnectorSettings::Edc(EdcSettings {
                    management_url: self.url(
                        &format!("connector {name}: management_url"),
                        &management_url,
                    )?,
                    api_key_env: self
                        .env_name(&format!("connector {name}: api_key_env"), &api_key_env)?,
                    data_base_url: self.url(&format!("connector {name}: data_base_url"), &base)?,
                    timeout: timeout(t, &name)?,
                    semantic_ids: ids,
                    allowed_bpns,
                    name: name_of(&name)?,
                })
            }
        })
    }
}

impl DeliveryConfig {
    /// Reads and lints a configuration file.
    pub fn load(path: &Path) -> Result<DeliveryConfig, DeliveryError> {
        let text = std::fs::read_to_string(path).map_err(|source| DeliveryError::Read {
            file: path.display().to_string(),
            source,
        })?;
        DeliveryConfig::parse(&text, &path.display().to_string())
    }

    /// Parses and lints a configuration's text; `source` names the file in
    /// messages.
    pub fn parse(text: &str, source: &str) -> Result<DeliveryConfig, DeliveryError> {
        let lint = Lint { source };
        let file: File = toml::from_str(text).map_err(|e| lint.error(e.to_string()))?;
        let mut connectors = Vec::new();
        let mut names = BTreeSet::new();
        for c in file.connectors {
            let c = lint.connector(c)?;
            if !names.insert(c.name().clone()) {
                return Err(lint.error(format!("connector {} is configured twice", c.name())));
            }
            connectors.push(c);
        }
        let longest = connectors
            .iter()
            .map(ConnectorSettings::timeout)
            .max()
            .unwrap_or(DEFAULT_TIMEOUT);
        let least_lease = longest.saturating_mul(LEASE_TIMEOUTS);
        let w = file.worker;
        let lease = lint.duration(
            "worker.lease",
            w.lease.as_deref(),
            least_lease.max(MIN_LEASE),
            least_lease,
            Duration::from_secs(86_400),
        )?;
        let name = w.name.unwrap_or_else(|| "remine".to_string());
        if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control()) {
            return Err(lint.error(format!(
                "worker.name = \"{name}\": expected 1-64 printable characters"
            )));
        }
        let batch = w.batch.unwrap_or(DEFAULT_BATCH);
        if !(1..=1000).contains(&batch) {
            return Err(lint.error(format!("worker.batch = {batch}: must be 1 to 1000")));
        }
        let worker = WorkerSettings {
            name,
            poll_interval: lint.duration(
                "worker.poll_interval",
                w.poll_interval.as_deref(),
                DEFAULT_POLL,
                Duration::from_millis(10),
                Duration::from_secs(3600),
            )?,
            batch,
            lease,
        };
        let defaults = RetryPolicy::default();
        let day = Duration::from_secs(86_400);
        let r = file.retry;
        let retry = RetryPolicy::new(
            lint.duration(
                "retry.initial",
                r.initial.as_deref(),
                defaults.initial(),
                Duration::from_millis(1),
                day,
            )?,
            lint.duration(
                "retry.cap",
                r.cap.as_deref(),
                defaults.cap(),
                Duration::from_millis(1),
                day,
            )?,
            lint.duration(
                "retry.max_retry_after",
                r.max_retry_after.as_deref(),
                defaults.max_retry_after(),
                Duration::ZERO,
                day,
            )?,
        )
        .map_err(|e| lint.error(format!("retry: {e}")))?;
        Ok(DeliveryConfig {
            worker,
            retry,
            connectors,
        })
    }
}

/// Reads the secret in environment variable `var` for `connector`, through
/// `env` (the process environment in production). Refuses a missing or
/// empty value, and one that cannot travel in an HTTP header, naming the
/// variable but never the value.
pub(crate) fn secret(
    env: &dyn Fn(&str) -> Option<String>,
    connector: &ConnectorName,
    var: &str,
) -> Result<Secret, DeliveryError> {
    let value = env(var)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| DeliveryError::MissingSecret {
            connector: connector.to_string(),
            var: var.to_string(),
            why: "is not set or empty",
        })?;
    if !value.chars().all(|c| c.is_ascii_graphic()) {
        return Err(DeliveryError::MissingSecret {
            connector: connector.to_string(),
            var: var.to_string(),
            why: "holds characters that cannot be sent in an HTTP header",
        });
    }
    Ok(Secret(value))
}
