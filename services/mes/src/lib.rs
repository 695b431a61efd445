//! Application services of remine: the use cases the API and the CLI call.
//!
//! The domain crate says what things are; this crate says what the plant
//! does with them, through the domain's ports only (it knows no protocol,
//! no SQL and no HTTP):
//! - [`PlantIo`] routes tag reads and writes to the adapter that serves each
//!   tag, and [`GuardedWriter`] is the one path every write takes: role,
//!   limits, audit (who, old, new, reason), write, read-back, result;
//! - [`LiveValues`] polls the plant and publishes snapshots for the HMI;
//! - [`Users`] hashes passwords (argon2), opens and checks sessions;
//! - [`Intake`] turns passports into input lots; [`Accounting`] records
//!   weighings, assays and stock events and shows a lot's books;
//! - [`Recipes`]: drafts, the signed two-person life cycle, diffs, and the
//!   download of a released recipe to an Idle unit as a batch's control recipe;
//! - [`Reports`]: the yearly recovery report (remine-reporting) with the
//!   reconciled balance's uncertainty, provenance records, and the reports
//!   a [`ReportSchedule`] files through the outbox; [`Deliveries`]: what
//!   was sent where, and requeueing a parked delivery; [`stored_cohorts`]:
//!   recovery by chemistry and month of receipt, traced to the products;
//! - [`PlantBalance`] reconciles a period's metal balance;
//! - [`Tracer`] answers genealogy traces (backward, forward, recall) on the
//!   stored lot graph;
//! - [`LineControl`] commands ISA-88 units through the state model, roles
//!   and permissives ([`ControlConfig`]: the line-control file);
//!   [`Alarms`] runs the ISA-18.2 alarm life cycle on live values;
//! - [`production`] runs material through the demo plant's lines.
//!
//! ```no_run
//! # async fn f(store: std::sync::Arc<dyn remine_domain::ports::Store>) {
//! let balance = remine_mes::PlantBalance::new(store);
//! let from = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 1, 1, 0, 0, 0).unwrap();
//! let to = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2027, 1, 1, 0, 0, 0).unwrap();
//! let year = balance.period(from, to).await.unwrap();
//! println!("chi-square {:.1} on {} degrees of freedom", year.chi_square, year.dof);
//! # }
//! ```

mod accounting;
mod alarms;
mod balance;
mod cohorts;
mod control;
mod control_config;
mod deliveries;
mod error;
mod guarded;
mod intake;
mod live;
pub mod production;
mod recipes;
mod reports;
mod router;
mod trace;
mod users;

pub use accounting::{Accounting, CombinedAssay, LotAccounting};
pub use alarms::{AckOutcome, AlarmView, Alarms, HistoryEntry, Shelve, history_csv, status_text};
pub use balance::{
    BALANCED_ELEMENTS, BalanceRecords, Closure, NodeClosure, PeriodBalance, PlantBalance,
    ReconciledContents, RecoveryFigure, SuspectInstrument, SuspectReading, reconcile_records,
    reconcile_records_with_contents,
};
pub use cohorts::{COHORT_ELEMENTS, CohortRecovery, cohorts, stored_cohorts};
pub use control::{CommandOutcome, LineControl, StartBatch, UnitRequest, UnitView};
pub use control_config::{ControlConfig, Derivation, DerivedTag, UnitDef};
pub use deliveries::Deliveries;
pub use error::MesError;
pub use guarded::{Actor, GuardedWriter, WriteOutcome};
pub use intake::{Intake, unit_lot_id};
pub use live::{LiveValues, Snapshot};
pub use recipes::{DownloadRequest, Recipes};
pub use reports::{RecoveryOutcome, RecoveryRequest, ReportSchedule, Reports};
pub use router::PlantIo;
pub use trace::{TraceCache, Tracer};
pub use users::{MIN_PASSWORD_LEN, Session, Users, hash_password, random_password};
