//! Application services: intake, the guarded write path, the production run of the demo plant, recovery reports.
