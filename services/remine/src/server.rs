//! Binding the HTTP listener and running until Ctrl-C or a deadline.

use anyhow::Context;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;

pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("HTTP server: cannot listen on {addr}"))
}

/// Resolves on Ctrl-C (or SIGTERM), or after `duration` when given.
pub async fn stop_signal(duration: Option<Duration>) {
    let deadline = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: stopping"),
        _ = term => tracing::info!("SIGTERM: stopping"),
        _ = deadline => tracing::info!("duration elapsed: stopping"),
    }
}
