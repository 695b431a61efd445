//! The store's specification, run on SQLite and on PostgreSQL.
//!
//! Each behaviour is written once, as an async function taking a [`Db`]
//! (and, where a test must reach around the store, a [`harness::Raw`]
//! connection); [`on_both_backends!`] runs it on a fresh SQLite file and on
//! a fresh database of a throwaway PostgreSQL cluster, which skips loudly
//! when PostgreSQL is not installed.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod harness;
mod accounting;
mod alarms;
mod audit;
mod fixtures;
mod history;
mod lots;
mod open;
mod recipes;
mod users;
