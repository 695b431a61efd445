//! The public port of a line: a TCP relay in front of the line's server
//! (which listens on a private loopback port), through which the link
//! faults act exactly as a client of a real PLC would meet them.
//!
//! - **pass**: bytes flow both ways untouched;
//! - **slow**: every chunk the server sends is held back by a delay;
//! - **hang**: connections stay open, everything either side sends is
//!   swallowed, new connections are accepted and swallowed too; when the
//!   hang ends, the hung connections are closed (their sessions are broken);
//! - **dark**: nothing listens on the port (connections are refused) and
//!   open ones are closed: a line without power or a pulled cable;
//! - a **drop** closes every open connection at once.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How the link behaves now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkMode {
    Pass,
    Slow(Duration),
    Hang,
    Dark,
}

/// The link's mode and a count of drops (a change closes every connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LinkState {
    pub(crate) mode: LinkMode,
    pub(crate) drops: u64,
}

/// The handle the fault layer sets the link's state through.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    state: watch::Sender<LinkState>,
}

impl Link {
    pub(crate) fn set_mode(&self, mode: LinkMode) {
        self.state.send_if_modified(|s| {
            let changed = s.mode != mode;
            s.mode = mode;
            changed
        });
    }

    /// Close every open connection now.
    pub(crate) fn drop_connections(&self) {
        self.state.send_modify(|s| s.drops += 1);
    }
}

/// Relay `public` (already bound) to `upstream` until `stop`.
pub(crate) fn start(
    line: &'static str,
    public: TcpListener,
    addr: SocketAddr,
    upstream: SocketAddr,
    stop: CancellationToken,
) -> (Link, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(LinkState {
        mode: LinkMode::Pass,
        drops: 0,
    });
    let task = tokio::spawn(listen(line, public, addr, upstream, rx, stop));
    (Link { state: tx }, task)
}

#[tracing::instrument(skip_all, fields(line = line, addr = %addr))]
async fn listen(
    line: &'static str,
    public: TcpListener,
    addr: SocketAddr,
    upstream: SocketAddr,
    mut state: watch::Receiver<LinkState>,
    stop: CancellationToken,
) {
    let mut listener = Some(public);
    loop {
        let dark = state.borrow_and_update().mode == LinkMode::Dark;
        if dark {
            if listener.take().is_some() {
                tracing::info!("line dark: port closed");
            }
        } else if listener.is_none() {
            match TcpListener::bind(addr).await {
                Ok(l) => {
                    tracing::info!("line back: port open");
                    listener = Some(l);
                }
                Err(err) => {
                    tracing::warn!(%err, "cannot reopen the port yet; retrying");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
                    }
                }
            }
        }
        let accepted = async {
            match &listener {
                Some(l) => l.accept().await.ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = state.changed() => if changed.is_err() { return },
            conn = accepted => if let Some((client, peer)) = conn {
                tracing::debug!(%peer, "client connected");
                tokio::spawn(relay(client, upstream, state.clone(), stop.clone()));
            },
        }
    }
}

/// One client connection through the link.
async fn relay(
    mut client: TcpStream,
    upstream: SocketAddr,
    mut state: watch::Receiver<LinkState>,
    stop: CancellationToken,
) {
    let _ = client.set_nodelay(true);
    let at_start = *state.borrow_and_update();
    let drops = at_start.drops;
    let mut server = None;
    if at_start.mode != LinkMode::Hang {
        match TcpStream::connect(upstream).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                server = Some(s);
            }
            Err(err) => {
                tracing::warn!(%err, "the line's server is not answering; closing the client");
                return;
            }
        }
    }
    let mut hung = server.is_none();
    let (mut server_rx, mut server_tx) = match server {
        Some(s) => {
            let (r, w) = s.into_split();
            (Some(r), Some(w))
        }
        None => (None, None),
    };
    let (mut client_rx, mut client_tx) = client.split();
    let mut from_client = vec![0u8; 16 * 1024];
    let mut from_server = vec![0u8; 16 * 1024];
    loop {
        let now = *state.borrow();
        if now.drops != drops || now.mode == LinkMode::Dark || (hung && now.mode != LinkMode::Hang)
        {
            return;
        }
        if now.mode == LinkMode::Hang {
            hung = true;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = state.changed() => if changed.is_err() { return },
            n = client_rx.read(&mut from_client) => {
                let n = match n { Ok(0) | Err(_) => return, Ok(n) => n };
                if hung { continue; }
                if let Some(w) = server_tx.as_mut()
                    && w.write_all(&from_client[..n]).await.is_err()
                {
                    return;
                }
            }
            n = async {
                match server_rx.as_mut() {
                    Some(r) => r.read(&mut from_server).await,
                    None => std::future::pending().await,
                }
            } => {
                let n = match n { Ok(0) | Err(_) => return, Ok(n) => n };
                if hung { continue; }
                let mode = state.borrow().mode;
                if let LinkMode::Slow(delay) = mode {
                    tokio::time::sleep(delay).await;
                }
                if client_tx.write_all(&from_server[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}
