//! The plant simulator: discharge and mechanical lines as Modbus TCP servers, hydrometallurgy as an OPC UA server.
