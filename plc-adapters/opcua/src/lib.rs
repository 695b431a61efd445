//! OPC UA adapter: reads, subscribes and writes tag maps through the domain's TagIo port.
