//! The bridge between the protocol servers and the pure models: the signals
//! each line serves, how a read is answered and how a write is applied.

pub mod discharge;
pub mod hydromet;
pub mod mechanical;

use crate::maps::{SignalRef, SignalSet};
use std::fmt;
use std::sync::{Mutex, MutexGuard};

/// Why a line refused a write. The Modbus server answers with an exception
/// (see simulators/README.md), the OPC UA server with a Bad status.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteRefused {
    /// The value is outside what the signal accepts.
    OutOfRange { signal: &'static str, value: f64 },
    /// The signal cannot be written at all.
    NotWritable { signal: &'static str },
    /// The signal cannot be written in the unit's present state (a load
    /// block while the unit is not Idle).
    Busy {
        signal: &'static str,
        state: &'static str,
    },
    /// The written values contradict each other (the O2 alarm limit not
    /// below the trip limit).
    Conflict { reason: String },
}

impl fmt::Display for WriteRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteRefused::OutOfRange { signal, value } => {
                write!(f, "{signal}: {value} is out of range")
            }
            WriteRefused::NotWritable { signal } => write!(f, "{signal} is read-only"),
            WriteRefused::Busy { signal, state } => {
                write!(f, "{signal} cannot change while the unit is {state}")
            }
            WriteRefused::Conflict { reason } => f.write_str(reason),
        }
    }
}

/// A write of one signal: the signal and its engineering value.
pub type Write<L, B> = (SignalRef<L, B>, f64);

/// A line served through a register map: it answers reads of its signals
/// and applies batches of writes atomically (all or none).
pub trait RegisterModel: Send + 'static {
    type Line: SignalSet;
    type Block: SignalSet;

    /// The engineering value of a signal, as of the last step.
    fn read(&self, signal: SignalRef<Self::Line, Self::Block>) -> f64;

    /// Apply writes (already range-checked against the map) in one go.
    fn write(&mut self, writes: &[Write<Self::Line, Self::Block>]) -> Result<(), WriteRefused>;

    /// Advance the line by `dt` simulated seconds.
    fn step(&mut self, dt: f64);
}

/// Lock a line's model. A panic while it was locked leaves it poisoned; the
/// model is still consistent between steps, so the simulator goes on.
pub(crate) fn lock<M>(m: &Mutex<M>) -> MutexGuard<'_, M> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
