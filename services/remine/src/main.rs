//! The remine binary.
fn main() {}
