//! The Chinese national traceability platform's upload deadlines: a
//! recycling enterprise uploads within 30 working days of receiving
//! batteries into stock, and again within 30 working days of finishing
//! their recycling (domain brief section 5).
//!
//! Working days are Monday to Friday, less the public holidays of a
//! [`WorkingCalendar`], plus its make-up working days (China moves
//! weekends around its holidays, so some Saturdays and Sundays are working
//! days). The holidays change every year and are published late, so they
//! are data the plant configures, not a table in the code.
//!
//! An upload is due on the 30th working day after the day of its event (the
//! event's own day does not count), and is overdue from the next day on
//! until it is uploaded.

use crate::{DomainError, LotId};
use chrono::{Datelike, NaiveDate, Weekday};
use std::collections::BTreeSet;

/// The working days an upload may take after its event.
pub const UPLOAD_WORKING_DAYS: u32 = 30;

/// Which working days there are: Monday to Friday, less `holidays`, plus
/// `make_up_days`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkingCalendar {
    holidays: BTreeSet<NaiveDate>,
    make_up_days: BTreeSet<NaiveDate>,
}

impl WorkingCalendar {
    /// Refuses a date listed both as a holiday and as a make-up working
    /// day, naming it.
    pub fn new(
        holidays: impl IntoIterator<Item = NaiveDate>,
        make_up_days: impl IntoIterator<Item = NaiveDate>,
    ) -> Result<WorkingCalendar, DomainError> {
        let holidays: BTreeSet<NaiveDate> = holidays.into_iter().collect();
        let make_up_days: BTreeSet<NaiveDate> = make_up_days.into_iter().collect();
        if let Some(both) = holidays.intersection(&make_up_days).next() {
            return Err(DomainError::Inconsistent(format!(
                "{both} is listed both as a holiday and as a make-up working day"
            )));
        }
        Ok(WorkingCalendar {
            holidays,
            make_up_days,
        })
    }

    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        if self.make_up_days.contains(&day) {
            return true;
        }
        let weekend = matches!(day.weekday(), Weekday::Sat | Weekday::Sun);
        !weekend && !self.holidays.contains(&day)
    }

    /// The `n`-th working day after `from` (`from` itself does not count);
    /// `from` for `n = 0`. Stops at the last representable date.
    pub fn add_working_days(&self, from: NaiveDate, n: u32) -> NaiveDate {
        let mut day = from;
        let mut left = n;
        while left > 0 {
            let Some(next) = day.succ_opt() else {
                return day;
            };
            day = next;
            if self.is_working_day(day) {
                left -= 1;
            }
        }
        day
    }

    /// The working days after `from` up to and including `to`; 0 when `to`
    /// is not after `from`.
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> u32 {
        from.iter_days()
            .skip(1)
            .take_while(|d| *d <= to)
            .filter(|d| self.is_working_day(*d))
            .fold(0u32, |n, _| n.saturating_add(1))
    }
}

/// The event that starts an upload's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UploadTrigger {
    /// Batteries received into stock.
    ReceivedIntoStock,
    /// Their recycling finished.
    FinishedRecycling,
}

impl UploadTrigger {
    pub fn name(self) -> &'static str {
        match self {
            UploadTrigger::ReceivedIntoStock => "received_into_stock",
            UploadTrigger::FinishedRecycling => "finished_recycling",
        }
    }
}

/// One upload the platform expects: about `lot`, after the event `trigger`
/// on `on`; `uploaded` is the day it was uploaded, if it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadObligation {
    pub lot: LotId,
    pub trigger: UploadTrigger,
    pub on: NaiveDate,
    pub uploaded: Option<NaiveDate>,
}

impl UploadObligation {
    /// The last day the upload is on time.
    pub fn due(&self, calendar: &WorkingCalendar) -> NaiveDate {
        calendar.add_working_days(self.on, UPLOAD_WORKING_DAYS)
    }

    /// Where the upload stands on `today`.
    pub fn status(&self, calendar: &WorkingCalendar, today: NaiveDate) -> DeadlineStatus {
        let due = self.due(calendar);
        match self.uploaded.filter(|d| *d <= today) {
            Some(on) if on <= due => DeadlineStatus::UploadedOnTime { due, on },
            Some(on) => DeadlineStatus::UploadedLate {
                due,
                on,
                working_days_late: calendar.working_days_between(due, on),
            },
            None if today <= due => DeadlineStatus::Open {
                due,
                working_days_left: calendar.working_days_between(today, due),
            },
            None => DeadlineStatus::Overdue {
                due,
                working_days_late: calendar.working_days_between(due, today),
            },
        }
    }
}

/// Where one upload stands on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlineStatus {
    /// Not uploaded yet, still on time; `working_days_left` working days
    /// remain after today (0 on the due day itself).
    Open {
        due: NaiveDate,
        working_days_left: u32,
    },
    /// Not uploaded and past its due day.
    Overdue {
        due: NaiveDate,
        working_days_late: u32,
    },
    UploadedOnTime {
        due: NaiveDate,
        on: NaiveDate,
    },
    UploadedLate {
        due: NaiveDate,
        on: NaiveDate,
        working_days_late: u32,
    },
}

/// An upload that is overdue on the day asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverdueUpload {
    pub lot: LotId,
    pub trigger: UploadTrigger,
    pub due: NaiveDate,
    pub working_days_late: u32,
}

/// The uploads not made by their due day as of `today`, most overdue first
/// (then by lot and trigger).
pub fn overdue_uploads(
    obligations: &[UploadObligation],
    calendar: &WorkingCalendar,
    today: NaiveDate,
) -> Vec<OverdueUpload> {
    let mut out: Vec<OverdueUpload> = obligations
        .iter()
        .filter_map(|o| match o.status(calendar, today) {
            DeadlineStatus::Overdue {
                due,
                working_days_late,
            } => Some(OverdueUpload {
                lot: o.lot.clone(),
                trigger: o.trigger,
                due,
                working_days_late,
            }),
            _ => None,
        })
        .collect();
    out.sort_by(|a, b| (a.due, &a.lot, a.trigger).cmp(&(b.due, &b.lot, b.trigger)));
    out
}
