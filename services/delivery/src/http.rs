//! What both connectors share: the HTTP client (a timeout on every request,
//! no redirects followed), and how a response or a transport error becomes
//! an [`AttemptOutcome`] (with the `Retry-After` and the body's reason).

use chrono::{DateTime, Utc};
use remine_domain::outbox::AttemptOutcome;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Client, Response, StatusCode};
use std::time::Duration;

/// The most of a response body kept for a receipt or a reason.
const MAX_BODY: usize = 64 * 1024;
/// The most characters of a reason or receipt stored with a delivery.
const MAX_REASON: usize = 500;

/// A client whose every request gives up after `timeout` (connecting
/// included), and which follows no redirect: a POST redirected would turn
/// into a GET and lose the document, so a 3xx is an answer to park.
pub(crate) fn client(timeout: Duration) -> Result<Client, reqwest::Error> {
    Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("remine-delivery/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A request that got no answer.
pub(crate) fn failed(e: &reqwest::Error, timeout: Duration) -> AttemptOutcome {
    if e.is_timeout() {
        AttemptOutcome::TimedOut { after: timeout }
    } else {
        // The error's chain says why (refused, reset, DNS, TLS); the URL is
        // in it too, which carries no secret (secrets travel in headers).
        let mut why = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            why.push_str(": ");
            why.push_str(&s.to_string());
            source = s.source();
        }
        AttemptOutcome::Unreachable { why: shorten(&why) }
    }
}

/// Reads up to [`MAX_BODY`] bytes of the body as text.
pub(crate) async fn body(mut response: Response) -> Result<String, reqwest::Error> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_BODY.saturating_sub(bytes.len());
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if bytes.len() >= MAX_BODY {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// An answer that is not success, as an outcome.
pub(crate) async fn refused(response: Response, timeout: Duration) -> AttemptOutcome {
    let status = response.status();
    let retry_after = retry_after(response.headers(), Utc::now());
    match body(response).await {
        Ok(text) => AttemptOutcome::Answered {
            status: status.as_u16(),
            retry_after,
            reason: reason(status, &text),
        },
        Err(e) => failed(&e, timeout),
    }
}

/// The delay a `Retry-After` header asks for: seconds, or an HTTP date
/// (a date in the past means now).
pub(crate) fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(text).ok()?;
    Some(
        (at.with_timezone(&Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// What a refusing body says: the `message`, `reason`, `detail`, `error`
/// or `title` of a JSON object (or of the first element of a JSON array,
/// as the EDC answers), else the text itself; the status's phrase when the
/// body is empty.
pub(crate) fn reason(status: StatusCode, body: &str) -> String {
    let from_json = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| match v {
            serde_json::Value::Array(items) => items.into_iter().next(),
            other => Some(other),
        })
        .and_then(|v| {
            ["message", "reason", "detail", "error", "title"]
                .iter()
                .find_map(|k| v.get(k).and_then(|m| m.as_str()).map(str::to_string))
        });
    let text = from_json.unwrap_or_else(|| body.trim().to_string());
    if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("no reason given")
            .to_string()
    } else {
        shorten(&text)
    }
}

/// At most [`MAX_REASON`] characters, on one line.
pub(crate) fn shorten(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut out: String = one_line.chars().take(MAX_REASON).collect();
    if one_line.chars().count() > MAX_REASON {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn check_retry_after(value: &str, expected: Option<u64>) {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        let now = DateTime::parse_from_rfc2822("Wed, 21 Oct 2026 07:28:00 GMT")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            retry_after(&headers, now),
            expected.map(Duration::from_secs),
            "{value}"
        );
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        check_retry_after("120", Some(120));
        check_retry_after(" 5 ", Some(5));
        check_retry_after("Wed, 21 Oct 2026 07:30:00 GMT", Some(120));
        check_retry_after("Wed, 21 Oct 2026 07:00:00 GMT", Some(0));
        check_retry_after("soon", None);
        check_retry_after("-3", None);
    }

    fn check_reason(body: &str, expected: &str) {
        assert_eq!(reason(StatusCode::BAD_REQUEST, body), expected, "{body}");
    }

    #[test]
    fn the_reason_is_what_the_body_says() {
        check_reason(r#"{"message":"year missing"}"#, "year missing");
        check_reason(r#"{"detail":"bad @context","title":"Bad"}"#, "bad @context");
        check_reason(
            r#"[{"message":"Object x already exists","type":"ObjectConflict"}]"#,
            "Object x already exists",
        );
        check_reason("plain\ntext ", "plain text");
        check_reason("", "Bad Request");
        check_reason(r#"{"code":7}"#, r#"{"code":7}"#);
        assert_eq!(
            reason(StatusCode::BAD_REQUEST, &"x".repeat(600))
                .chars()
                .count(),
            501
        );
    }
}
