//! The control-room web UI: static assets embedded in the binary.
