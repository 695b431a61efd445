//! The pure models of the three lines, free of IO: each is stepped with a
//! time step in simulated seconds and exposes its state, setpoints and
//! readings. The servers (Modbus, OPC UA) sit on top and never do physics.

pub mod discharge;
pub mod hydromet;
pub mod material;
pub mod mechanical;
pub mod unit;
