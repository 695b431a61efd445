//! Storage: SQLite (embedded default) and PostgreSQL behind the domain's store ports, with migrations for both.
