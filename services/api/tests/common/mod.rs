//! What the API tests share: a router over a real SQLite store with users
//! of each role, requests through it, and the error shape's check.

#![allow(clippy::unwrap_used, dead_code)]

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use remine_api::{AppState, app};
use remine_domain::ports::Store;
use remine_domain::{Role, Username};
use remine_mes::{Actor, LiveValues, Recipes, Users};
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

pub const PASSWORD: &str = "a-long-password";

/// The users every fixture has, one per role.
pub const USERS: [(&str, Role); 4] = [
    ("vera", Role::Viewer),
    ("otto", Role::Operator),
    ("erin", Role::Engineer),
    ("sue", Role::Supervisor),
];

pub struct Fixture {
    pub state: AppState,
    pub db: Arc<remine_store::Db>,
    _dir: tempfile::TempDir,
}

/// The state of a plant-less remine on `store`: no plant, control, alarms
/// or historian (tests set what they need).
pub fn state(store: Arc<dyn Store>, users: Users) -> AppState {
    AppState {
        recipes: Recipes::new(
            store.clone(),
            users.clone(),
            remine_recipes::shipped_catalogues(),
        ),
        store,
        users,
        plant: None,
        writer: None,
        live: LiveValues::none(),
        site: "test plant".into(),
        stats: Vec::new(),
        control: None,
        alarms: None,
        history: None,
        facility: None,
        traces: Default::default(),
    }
}

/// Adds [`USERS`] with [`PASSWORD`].
pub async fn add_users(users: &Users) {
    for (name, role) in USERS {
        users
            .add(
                &Actor::system(),
                &Username::parse(name).unwrap(),
                role,
                PASSWORD,
            )
            .await
            .unwrap();
    }
}

impl Fixture {
    /// A fresh SQLite store in a temporary directory, with [`USERS`].
    pub async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(remine_store::Db::open_sqlite_dir(dir.path()).await.unwrap());
        let store: Arc<dyn Store> = db.clone();
        let users = Users::new(store.clone(), chrono::Duration::hours(1));
        add_users(&users).await;
        Fixture {
            state: state(store, users),
            db,
            _dir: dir,
        }
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.state.store.clone()
    }

    /// A request through the router, with a bearer token if given.
    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        call(&self.state, method, uri, token, body).await
    }

    /// Logs `user` in (with [`PASSWORD`]) and returns the session token.
    pub async fn login(&self, user: &str) -> String {
        login(&self.state, user).await
    }

    /// Logs `user` in and makes the request as them.
    pub async fn call_as(
        &self,
        user: &str,
        method: &str,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let token = self.login(user).await;
        self.call(method, uri, Some(&token), body).await
    }
}

/// A request through the router of `state`; the body parsed as JSON (or
/// Null when it is not JSON).
pub async fn call(
    state: &AppState,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let (status, bytes) = call_raw(state, method, uri, token, body).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A request through the router of `state`; the body as bytes.
pub async fn call_raw(
    state: &AppState,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string()))
            .unwrap(),
        None => req
            .header(header::ACCEPT, "application/json")
            .body(Body::empty())
            .unwrap(),
    };
    let res = app(state.clone()).oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, bytes.to_vec())
}

/// Logs `user` in (with [`PASSWORD`]) and returns the session token.
pub async fn login(state: &AppState, user: &str) -> String {
    let (status, body) = call(
        state,
        "POST",
        "/api/v1/session",
        None,
        Some(json!({"user": user, "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "login of {user}: {body}");
    body["token"].as_str().unwrap().to_string()
}

/// The response is the error `expected` whose message contains `fragment`.
pub fn check_error(status: StatusCode, body: &Value, expected: StatusCode, fragment: &str) {
    assert_eq!(status, expected, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(fragment),
        "'{message}' does not contain '{fragment}'"
    );
}
