//! The HTTP API (axum): routers, authentication, one error type, live-value streams.
