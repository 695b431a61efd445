//! The outbox model: identifiers parse or are refused by name, a document's
//! idempotency key follows from its kind, id and content alone, and the
//! retry policy backs off exponentially to its cap, honours Retry-After,
//! retries what is transient and parks what is not.

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeDelta, Utc};
use remine_domain::DomainError;
use remine_domain::outbox::{
    AttemptOutcome, ConnectorName, Content, ContentType, Document, DocumentFields, DocumentId,
    DocumentKind, IdempotencyKey, Resolution, RetryPolicy, StateName,
};
use std::time::Duration;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn doc(kind: &str, id: &str, content: Content) -> Result<Document, DomainError> {
    Document::new(DocumentFields {
        id: DocumentId::parse(id)?,
        kind: DocumentKind::parse(kind)?,
        content_type: ContentType::parse("application/ld+json")?,
        content,
        created_at: t0(),
    })
}

fn text(s: &str) -> Content {
    Content::Text(s.to_string())
}

fn key(kind: &str, id: &str, content: Content) -> String {
    doc(kind, id, content)
        .unwrap()
        .idempotency_key()
        .as_str()
        .to_string()
}

#[test]
fn identifiers_take_url_safe_names_and_refuse_others_by_name() {
    assert!(DocumentId::parse("recovery-2027-final").is_ok());
    assert!(DocumentId::parse("provenance:NISO4-0042").is_ok());
    for bad in ["", "a b", "a/b", "ä", &"x".repeat(129)] {
        let e = DocumentId::parse(bad).unwrap_err();
        assert!(e.to_string().starts_with("document id"), "{e}");
    }
    assert!(ConnectorName::parse("catenax-edc").is_ok());
    assert!(ConnectorName::parse("Catenax").is_err());
    assert!(DocumentKind::parse("recovery-report").is_ok());
    assert!(DocumentKind::parse("Recovery Report").is_err());
}

#[test]
fn content_types_need_a_type_and_a_subtype() {
    for good in [
        "application/json",
        "application/ld+json",
        "text/csv; charset=utf-8",
    ] {
        assert!(ContentType::parse(good).is_ok(), "{good}");
    }
    for bad in [
        "json",
        "/json",
        "application/",
        "a/b/c",
        "text/csv\r\nX-Evil: 1",
    ] {
        let e = ContentType::parse(bad).unwrap_err();
        assert!(e.to_string().contains("content type"), "{e}");
    }
}

#[test]
fn the_idempotency_key_is_the_same_for_the_same_document() {
    assert_eq!(
        key("recovery-report", "r-2027", text("{}")),
        key("recovery-report", "r-2027", text("{}"))
    );
    assert_eq!(
        key("recovery-report", "r-2027", text("{}")),
        key("recovery-report", "r-2027", Content::Bytes(b"{}".to_vec())),
        "text and bytes of the same content are the same document"
    );
    assert_eq!(key("k", "i", text("{}")).len(), 64);
    assert!(IdempotencyKey::parse(&key("k", "i", text("{}"))).is_ok());
}

#[test]
fn the_idempotency_key_differs_when_kind_id_or_content_differ() {
    let base = key("recovery-report", "r-2027", text("{}"));
    assert_ne!(base, key("provenance-record", "r-2027", text("{}")));
    assert_ne!(base, key("recovery-report", "r-2028", text("{}")));
    assert_ne!(base, key("recovery-report", "r-2027", text("{ }")));
    // Where one field ends and the next begins matters.
    assert_ne!(key("ab", "c", text("x")), key("a", "bc", text("x")));
}

#[test]
fn a_document_refuses_empty_content() {
    let e = doc("k", "i", text("")).unwrap_err();
    assert!(e.to_string().contains("document content"), "{e}");
    assert!(e.to_string().contains("0 bytes in document i"), "{e}");
}

#[test]
fn state_names_read_back() {
    for s in StateName::ALL {
        assert_eq!(StateName::parse(s.name()).unwrap(), s);
    }
    assert!(StateName::parse("lost").is_err());
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn backoff_doubles_from_one_second_to_a_cap_of_ten_minutes() {
    let p = RetryPolicy::default();
    let check = |attempt: u32, expected: u64| {
        assert_eq!(p.backoff(attempt), secs(expected), "attempt {attempt}");
    };
    check(1, 1);
    check(2, 2);
    check(3, 4);
    check(10, 512);
    check(11, 600);
    check(1000, 600);
    check(u32::MAX, 600);
}

#[test]
fn a_policy_refuses_impossible_timings() {
    assert!(RetryPolicy::new(secs(0), secs(10), secs(10)).is_err());
    assert!(RetryPolicy::new(secs(20), secs(10), secs(10)).is_err());
    assert!(RetryPolicy::new(secs(1), secs(200_000), secs(10)).is_err());
    assert!(RetryPolicy::new(secs(1), secs(10), secs(200_000)).is_err());
    assert!(RetryPolicy::new(secs(1), secs(1), secs(0)).is_ok());
}

/// What the default policy makes of the 3rd attempt ending in `outcome`.
fn check(outcome: AttemptOutcome, expected: Resolution) {
    let got = RetryPolicy::default().resolve(3, outcome.clone(), t0());
    assert_eq!(got, expected, "{outcome:?}");
}

fn retry_in(s: i64, error: &str) -> Resolution {
    Resolution::Retry {
        at: t0() + TimeDelta::seconds(s),
        error: error.into(),
    }
}

fn answered(status: u16, retry_after: Option<u64>, reason: &str) -> AttemptOutcome {
    AttemptOutcome::Answered {
        status,
        retry_after: retry_after.map(secs),
        reason: reason.into(),
    }
}

#[test]
fn success_is_delivered_with_its_receipt() {
    check(
        AttemptOutcome::Delivered {
            receipt: "201 id=7".into(),
        },
        Resolution::Delivered {
            at: t0(),
            receipt: "201 id=7".into(),
        },
    );
}

#[test]
fn connect_errors_and_timeouts_are_retried_after_the_backoff() {
    check(
        AttemptOutcome::Unreachable {
            why: "connection refused".into(),
        },
        retry_in(4, "unreachable: connection refused"),
    );
    check(
        AttemptOutcome::TimedOut {
            after: Duration::from_millis(1500),
        },
        retry_in(4, "no answer within 1500 ms"),
    );
}

#[test]
fn server_errors_and_throttling_are_retried() {
    check(answered(500, None, "boom"), retry_in(4, "HTTP 500: boom"));
    check(answered(503, None, "down"), retry_in(4, "HTTP 503: down"));
    check(answered(408, None, "slow"), retry_in(4, "HTTP 408: slow"));
    check(answered(429, None, "busy"), retry_in(4, "HTTP 429: busy"));
}

#[test]
fn retry_after_replaces_the_backoff_up_to_its_maximum() {
    check(
        answered(429, Some(30), "busy"),
        retry_in(30, "HTTP 429: busy"),
    );
    check(
        answered(503, Some(0), "busy"),
        retry_in(0, "HTTP 503: busy"),
    );
    check(
        answered(429, Some(86_400), "come back tomorrow"),
        retry_in(3600, "HTTP 429: come back tomorrow"),
    );
}

#[test]
fn other_client_errors_are_parked_with_status_and_reason() {
    for status in [400, 401, 403, 404, 409, 410, 413, 422] {
        check(
            answered(status, Some(5), "schema violation at /year"),
            Resolution::Park {
                at: t0(),
                reason: format!("HTTP {status}: schema violation at /year"),
                status: Some(status),
            },
        );
    }
}

#[test]
fn an_unsendable_document_is_parked_without_a_status() {
    check(
        AttemptOutcome::Unsendable {
            reason: "not JSON".into(),
        },
        Resolution::Park {
            at: t0(),
            reason: "not JSON".into(),
            status: None,
        },
    );
}
