//! A real Modbus TCP server for the adapter's tests: a register bank behind
//! tokio-modbus's server, with counters (requests, connections, requests in
//! flight at once) and fault switches (exceptions, ignored writes, a delay
//! per answer); and a silent server that accepts connections and never answers.

#![allow(dead_code)]

use std::future::{Future, ready};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_modbus::prelude::{ExceptionCode, Request, Response, SlaveRequest};
use tokio_modbus::server::Service;
use tokio_modbus::server::tcp::Server;

/// The device's memory, what it was asked, and how it misbehaves.
#[derive(Debug)]
pub struct Bank {
    pub unit_id: u8,
    pub holding: Vec<u16>,
    pub input: Vec<u16>,
    pub coils: Vec<bool>,
    pub discrete: Vec<bool>,
    /// Every read request as (function code, address, count).
    pub reads: Vec<(u8, u16, u16)>,
    /// Number of write requests received.
    pub writes: usize,
    /// Acknowledge writes but keep the old values.
    pub ignore_writes: bool,
    /// Holding registers at or above this address raise IllegalDataAddress.
    pub fail_from: Option<u16>,
    /// How long the device takes to answer each request.
    pub delay: Duration,
    /// The next this many requests are never answered (their connection hangs).
    pub stall_next: usize,
    /// Read requests with the time they arrived: (function code, address, when).
    pub read_times: Vec<(u8, u16, Instant)>,
    /// TCP connections accepted so far.
    pub connections: usize,
    /// Requests being answered right now, and the most ever at once.
    pub in_flight: usize,
    pub max_in_flight: usize,
}

impl Bank {
    fn new(unit_id: u8) -> Bank {
        Bank {
            unit_id,
            holding: vec![0; 65536],
            input: vec![0; 65536],
            coils: vec![false; 65536],
            discrete: vec![false; 65536],
            reads: Vec::new(),
            writes: 0,
            ignore_writes: false,
            fail_from: None,
            delay: Duration::ZERO,
            stall_next: 0,
            read_times: Vec::new(),
            connections: 0,
            in_flight: 0,
            max_in_flight: 0,
        }
    }

    fn range(addr: u16, count: u16) -> std::ops::Range<usize> {
        usize::from(addr)..usize::from(addr) + usize::from(count)
    }

    fn handle(&mut self, req: SlaveRequest<'static>) -> Result<Response, ExceptionCode> {
        if req.slave != self.unit_id {
            return Err(ExceptionCode::GatewayTargetDevice);
        }
        let failing = |addr: u16, count: u16, fail_from: Option<u16>| {
            fail_from.is_some_and(|f| u32::from(addr) + u32::from(count) > u32::from(f))
        };
        let read = match req.request {
            Request::ReadHoldingRegisters(a, _) => Some((3, a)),
            Request::ReadInputRegisters(a, _) => Some((4, a)),
            Request::ReadCoils(a, _) => Some((1, a)),
            Request::ReadDiscreteInputs(a, _) => Some((2, a)),
            _ => None,
        };
        if let Some((f, a)) = read {
            self.read_times.push((f, a, Instant::now()));
        }
        match req.request {
            Request::ReadHoldingRegisters(a, n) => {
                self.reads.push((3, a, n));
                if failing(a, n, self.fail_from) {
                    return Err(ExceptionCode::IllegalDataAddress);
                }
                Ok(Response::ReadHoldingRegisters(
                    self.holding[Self::range(a, n)].to_vec(),
                ))
            }
            Request::ReadInputRegisters(a, n) => {
                self.reads.push((4, a, n));
                Ok(Response::ReadInputRegisters(
                    self.input[Self::range(a, n)].to_vec(),
                ))
            }
            Request::ReadCoils(a, n) => {
                self.reads.push((1, a, n));
                Ok(Response::ReadCoils(self.coils[Self::range(a, n)].to_vec()))
            }
            Request::ReadDiscreteInputs(a, n) => {
                self.reads.push((2, a, n));
                Ok(Response::ReadDiscreteInputs(
                    self.discrete[Self::range(a, n)].to_vec(),
                ))
            }
            Request::WriteSingleRegister(a, w) => {
                self.writes += 1;
                if !self.ignore_writes {
                    self.holding[usize::from(a)] = w;
                }
                Ok(Response::WriteSingleRegister(a, w))
            }
            Request::WriteMultipleRegisters(a, words) => {
                self.writes += 1;
                let n = words.len() as u16;
                if !self.ignore_writes {
                    self.holding[Self::range(a, n)].copy_from_slice(&words);
                }
                Ok(Response::WriteMultipleRegisters(a, n))
            }
            Request::WriteSingleCoil(a, c) => {
                self.writes += 1;
                if !self.ignore_writes {
                    self.coils[usize::from(a)] = c;
                }
                Ok(Response::WriteSingleCoil(a, c))
            }
            _ => Err(ExceptionCode::IllegalFunction),
        }
    }
}

#[derive(Clone)]
struct BankService(Arc<Mutex<Bank>>);

impl Service for BankService {
    type Request = SlaveRequest<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = Pin<Box<dyn Future<Output = Result<Response, ExceptionCode>> + Send>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        let bank = self.0.clone();
        Box::pin(async move {
            let stall = {
                let mut b = bank.lock().expect("bank lock");
                let stall = b.stall_next > 0;
                b.stall_next = b.stall_next.saturating_sub(1);
                stall
            };
            if stall {
                std::future::pending::<()>().await;
            }
            let delay = {
                let mut b = bank.lock().expect("bank lock");
                b.in_flight += 1;
                b.max_in_flight = b.max_in_flight.max(b.in_flight);
                b.delay
            };
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let mut b = bank.lock().expect("bank lock");
            b.in_flight -= 1;
            b.handle(req)
        })
    }
}

/// A Modbus TCP server on 127.0.0.1 that can be killed and restarted on the same port.
pub struct TestServer {
    pub addr: SocketAddr,
    bank: Arc<Mutex<Bank>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    pub async fn start(unit_id: u8) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("bound address");
        let bank = Arc::new(Mutex::new(Bank::new(unit_id)));
        let task = Some(serve(listener, bank.clone()));
        TestServer { addr, bank, task }
    }

    pub fn bank(&self) -> MutexGuard<'_, Bank> {
        self.bank.lock().expect("bank lock")
    }

    /// Stops listening and drops every connection.
    pub async fn kill(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same port, with the same bank.
    pub async fn restart(&mut self) {
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("rebind the same port");
        self.task = Some(serve(listener, self.bank.clone()));
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn serve(listener: TcpListener, bank: Arc<Mutex<Bank>>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let server = Server::new(listener);
        let service = BankService(bank);
        let on_connected = move |stream, _peer| {
            let service = service.clone();
            service.0.lock().expect("bank lock").connections += 1;
            ready(Ok(Some((service, stream))))
        };
        let _ = server.serve(&on_connected, |_err| {}).await;
    })
}

/// Accepts TCP connections and never answers a request.
pub struct SilentServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl SilentServer {
    pub async fn start() -> SilentServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("bound address");
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        SilentServer { addr, task }
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A port on which nothing listens (bound, then released).
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    listener.local_addr().expect("bound address")
}
