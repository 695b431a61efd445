//! The Modbus TCP server of a line: answers reads and writes of the
//! registers its map places, for its own unit id only.
//!
//! Reads (functions 3 and 4) may span gaps between signals (gaps read 0) but
//! not go past the last mapped register of the table. Writes (functions 6
//! and 16) must cover whole RW signals of the holding table, without gaps.
//! Exceptions: 1 illegal function (any other function), 2 illegal data
//! address (unmapped, read-only or partial registers), 3 illegal data value
//! (bad count, value out of range, contradicting setpoints), 6 server busy
//! (a load block written while the unit is not Idle), 11 gateway target
//! failed to respond (a unit id other than the line's).
//!
//! Faults ([`ModbusFaults`]) act here too: an injected exception answers
//! every request touching its signal's registers, and a frozen or spiking
//! sensor reads its overridden value.

use crate::lines::{RegisterModel, WriteRefused, lock};
use crate::maps::{Access, RegisterMap, SignalRef, Table, decode, encode};
use std::future::{Ready, ready};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio_modbus::prelude::{ExceptionCode, Request, Response, SlaveRequest};
use tokio_modbus::server::Service;
use tokio_modbus::server::tcp::{Server, accept_tcp_connection};
use tokio_util::sync::CancellationToken;

type MapOf<M> = RegisterMap<<M as RegisterModel>::Line, <M as RegisterModel>::Block>;

/// Registers of one table, first to last (inclusive).
pub(crate) type RegisterSpan = (Table, u32, u32);

/// What the line's faults make it answer.
#[derive(Debug)]
pub(crate) struct ModbusFaults<L, B> {
    /// Requests touching the span (every request, if `None`) get the code.
    pub(crate) exceptions: Vec<(Option<RegisterSpan>, u8)>,
    /// Signals that read a fixed value (frozen or spiking sensors).
    pub(crate) overrides: Vec<(SignalRef<L, B>, f64)>,
}

impl<L, B> Default for ModbusFaults<L, B> {
    fn default() -> Self {
        ModbusFaults {
            exceptions: Vec::new(),
            overrides: Vec::new(),
        }
    }
}

impl<L: PartialEq + Copy, B: PartialEq + Copy> ModbusFaults<L, B> {
    fn exception_for(&self, table: Table, start: u16, qty: u16) -> Option<ExceptionCode> {
        let (first, last) = (
            u32::from(start),
            u32::from(start) + u32::from(qty.max(1)) - 1,
        );
        self.exceptions.iter().find_map(|(span, code)| {
            let hit = match span {
                None => true,
                Some((t, a, b)) => *t == table && *a <= last && first <= *b,
            };
            hit.then(|| ExceptionCode::new(*code))
        })
    }

    fn override_of(&self, signal: SignalRef<L, B>) -> Option<f64> {
        self.overrides
            .iter()
            .find(|(s, _)| *s == signal)
            .map(|(_, v)| *v)
    }
}

type FaultsOf<M> = ModbusFaults<<M as RegisterModel>::Line, <M as RegisterModel>::Block>;

/// One line's register map and model, as one client connection sees them.
#[derive(Debug)]
pub(crate) struct LineService<M: RegisterModel> {
    map: Arc<MapOf<M>>,
    model: Arc<Mutex<M>>,
    faults: Arc<Mutex<FaultsOf<M>>>,
}

impl<M: RegisterModel> Clone for LineService<M> {
    fn clone(&self) -> Self {
        LineService {
            map: Arc::clone(&self.map),
            model: Arc::clone(&self.model),
            faults: Arc::clone(&self.faults),
        }
    }
}

impl<M: RegisterModel> LineService<M> {
    pub(crate) fn new(
        map: Arc<MapOf<M>>,
        model: Arc<Mutex<M>>,
        faults: Arc<Mutex<FaultsOf<M>>>,
    ) -> Self {
        LineService { map, model, faults }
    }

    fn handle(&self, req: SlaveRequest<'static>) -> Result<Response, ExceptionCode> {
        if req.slave != self.map.unit_id() {
            return Err(ExceptionCode::GatewayTargetDevice);
        }
        let touched = match &req.request {
            Request::ReadHoldingRegisters(a, n) => Some((Table::Holding, *a, *n)),
            Request::ReadInputRegisters(a, n) => Some((Table::Input, *a, *n)),
            Request::WriteSingleRegister(a, _) => Some((Table::Holding, *a, 1)),
            Request::WriteMultipleRegisters(a, w) => Some((
                Table::Holding,
                *a,
                u16::try_from(w.len()).unwrap_or(u16::MAX),
            )),
            _ => None,
        };
        {
            let faults = lock(&self.faults);
            let injected = match touched {
                Some((table, a, n)) => faults.exception_for(table, a, n),
                None => faults
                    .exceptions
                    .iter()
                    .find(|(span, _)| span.is_none())
                    .map(|(_, code)| ExceptionCode::new(*code)),
            };
            if let Some(code) = injected {
                return Err(code);
            }
        }
        match req.request {
            Request::ReadHoldingRegisters(addr, qty) => self
                .read(Table::Holding, addr, qty)
                .map(Response::ReadHoldingRegisters),
            Request::ReadInputRegisters(addr, qty) => self
                .read(Table::Input, addr, qty)
                .map(Response::ReadInputRegisters),
            Request::WriteSingleRegister(addr, word) => {
                self.write(addr, &[word])?;
                Ok(Response::WriteSingleRegister(addr, word))
            }
            Request::WriteMultipleRegisters(addr, words) => {
                self.write(addr, &words)?;
                let qty =
                    u16::try_from(words.len()).map_err(|_| ExceptionCode::IllegalDataValue)?;
                Ok(Response::WriteMultipleRegisters(addr, qty))
            }
            _ => Err(ExceptionCode::IllegalFunction),
        }
    }

    fn read(&self, table: Table, start: u16, qty: u16) -> Result<Vec<u16>, ExceptionCode> {
        if qty == 0 || qty > 125 {
            return Err(ExceptionCode::IllegalDataValue);
        }
        if u32::from(start) + u32::from(qty) > self.map.extent(table) {
            return Err(ExceptionCode::IllegalDataAddress);
        }
        let mut words = vec![0u16; usize::from(qty)];
        let model = lock(&self.model);
        let faults = lock(&self.faults);
        for p in self.map.overlapping(table, start, qty) {
            let value = faults
                .override_of(p.signal)
                .unwrap_or_else(|| model.read(p.signal));
            for (k, w) in encode(p.data_type, p.scale, value).into_iter().enumerate() {
                let at = i64::from(p.address) + k as i64 - i64::from(start);
                if let Some(slot) = usize::try_from(at).ok().and_then(|i| words.get_mut(i)) {
                    *slot = w;
                }
            }
        }
        Ok(words)
    }

    fn write(&self, start: u16, words: &[u16]) -> Result<(), ExceptionCode> {
        if words.is_empty() || words.len() > 123 {
            return Err(ExceptionCode::IllegalDataValue);
        }
        let qty = u16::try_from(words.len()).map_err(|_| ExceptionCode::IllegalDataValue)?;
        let end = u32::from(start) + u32::from(qty);
        let mut covered = u32::from(start);
        let mut batch = Vec::new();
        for p in self.map.overlapping(Table::Holding, start, qty) {
            let first = u32::from(p.address);
            let last = p.last_address();
            if first != covered || last >= end || p.access != Access::RW {
                return Err(ExceptionCode::IllegalDataAddress);
            }
            let from = (first - u32::from(start)) as usize;
            let to = (last + 1 - u32::from(start)) as usize;
            let value = decode(p.data_type, p.scale, &words[from..to])
                .ok_or(ExceptionCode::IllegalDataValue)?;
            if !(p.min..=p.max).contains(&value) {
                return Err(ExceptionCode::IllegalDataValue);
            }
            batch.push((p.signal, value));
            covered = last + 1;
        }
        if covered != end {
            return Err(ExceptionCode::IllegalDataAddress);
        }
        let mut model = lock(&self.model);
        model.write(&batch).map_err(|e| {
            tracing::debug!(line = self.map.line(), refused = %e, "write refused");
            match e {
                WriteRefused::NotWritable { .. } => ExceptionCode::IllegalDataAddress,
                WriteRefused::OutOfRange { .. } | WriteRefused::Conflict { .. } => {
                    ExceptionCode::IllegalDataValue
                }
                WriteRefused::Busy { .. } => ExceptionCode::ServerDeviceBusy,
            }
        })
    }
}

impl<M: RegisterModel> Service for LineService<M> {
    type Request = SlaveRequest<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = Ready<Result<Response, ExceptionCode>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        ready(self.handle(req))
    }
}

/// Serve `service` on `listener` until `stop` is cancelled.
#[tracing::instrument(skip_all, fields(line = line, addr = %addr))]
pub(crate) async fn serve<M: RegisterModel>(
    line: &'static str,
    addr: SocketAddr,
    listener: TcpListener,
    service: LineService<M>,
    stop: CancellationToken,
) {
    let server = Server::new(listener);
    let on_connected = move |stream, peer: SocketAddr| {
        let service = service.clone();
        async move {
            tracing::debug!(%peer, "client connected");
            accept_tcp_connection(stream, peer, move |_| Ok(Some(service.clone())))
        }
    };
    let on_error = |err| tracing::warn!(%err, "modbus connection ended with an error");
    match server
        .serve_until(
            &on_connected,
            on_error,
            async move { stop.cancelled().await },
        )
        .await
    {
        Ok(_) => tracing::info!("modbus server stopped"),
        Err(err) => tracing::error!(%err, "modbus server failed"),
    }
}
