//! Modbus TCP adapter: polls tag maps into readings and writes through the domain's TagIo port.
