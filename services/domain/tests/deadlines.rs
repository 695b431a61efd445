//! The Chinese platform's upload deadlines: 30 working days after the
//! event, skipping weekends and configured holidays and counting make-up
//! working days; uploads not made by then are listed as overdue.

#![allow(clippy::unwrap_used)]

use chrono::NaiveDate;
use remine_domain::LotId;
use remine_domain::deadlines::{
    DeadlineStatus, OverdueUpload, UploadObligation, UploadTrigger, WorkingCalendar,
    overdue_uploads,
};

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn days(list: &[&str]) -> Vec<NaiveDate> {
    list.iter().map(|s| day(s)).collect()
}

/// National Day week 2027 as a holiday, with Saturday 25 September made a
/// working day.
fn national_day() -> WorkingCalendar {
    let week = days(&[
        "2027-10-01",
        "2027-10-02",
        "2027-10-03",
        "2027-10-04",
        "2027-10-05",
        "2027-10-06",
        "2027-10-07",
    ]);
    WorkingCalendar::new(week, days(&["2027-09-25"])).unwrap()
}

fn check(calendar: &WorkingCalendar, event: &str, due: &str) {
    let o = UploadObligation {
        lot: LotId::parse("IN-1").unwrap(),
        trigger: UploadTrigger::ReceivedIntoStock,
        on: day(event),
        uploaded: None,
    };
    assert_eq!(o.due(calendar), day(due), "event on {event}");
}

#[test]
fn thirty_working_days_skip_weekends() {
    let plain = WorkingCalendar::default();
    check(&plain, "2027-01-04", "2027-02-15"); // a Monday: six weeks on
    check(&plain, "2027-01-01", "2027-02-12"); // a Friday
    check(&plain, "2027-01-02", "2027-02-12"); // a Saturday counts from Monday
    check(&plain, "2027-09-24", "2027-11-05");
}

#[test]
fn holidays_push_the_deadline_and_make_up_days_pull_it_back() {
    // Five weekdays of holiday, one Saturday worked: four days later.
    check(&national_day(), "2027-09-24", "2027-11-11");
}

#[test]
fn working_days_are_weekdays_less_holidays_plus_make_up_days() {
    let cal = national_day();
    assert!(cal.is_working_day(day("2027-09-24"))); // Friday
    assert!(cal.is_working_day(day("2027-09-25"))); // make-up Saturday
    assert!(!cal.is_working_day(day("2027-09-26"))); // Sunday
    assert!(!cal.is_working_day(day("2027-10-04"))); // holiday Monday
    assert_eq!(
        cal.add_working_days(day("2027-09-24"), 0),
        day("2027-09-24")
    );
    assert_eq!(
        cal.add_working_days(day("2027-09-24"), 1),
        day("2027-09-25")
    );
    assert_eq!(
        cal.add_working_days(day("2027-09-30"), 1),
        day("2027-10-08")
    );
    assert_eq!(
        cal.working_days_between(day("2027-09-30"), day("2027-10-08")),
        1
    );
    assert_eq!(
        cal.working_days_between(day("2027-10-08"), day("2027-09-30")),
        0
    );
}

#[test]
fn a_day_cannot_be_both_holiday_and_make_up_day() {
    let e = WorkingCalendar::new(days(&["2027-10-01"]), days(&["2027-10-01"])).unwrap_err();
    assert!(e.to_string().contains("2027-10-01"), "{e}");
}

#[test]
fn the_last_representable_date_does_not_break_the_count() {
    let cal = WorkingCalendar::default();
    assert_eq!(cal.add_working_days(NaiveDate::MAX, 30), NaiveDate::MAX);
}

fn obligation(lot: &str, trigger: UploadTrigger, on: &str, up: Option<&str>) -> UploadObligation {
    UploadObligation {
        lot: LotId::parse(lot).unwrap(),
        trigger,
        on: day(on),
        uploaded: up.map(day),
    }
}

#[test]
fn status_tells_open_overdue_on_time_and_late() {
    let cal = WorkingCalendar::default();
    let o = |up| obligation("IN-1", UploadTrigger::ReceivedIntoStock, "2027-01-04", up);
    assert_eq!(
        o(None).status(&cal, day("2027-02-11")),
        DeadlineStatus::Open {
            due: day("2027-02-15"),
            working_days_left: 2
        }
    );
    assert_eq!(
        o(None).status(&cal, day("2027-02-15")),
        DeadlineStatus::Open {
            due: day("2027-02-15"),
            working_days_left: 0
        }
    );
    assert_eq!(
        o(None).status(&cal, day("2027-02-17")),
        DeadlineStatus::Overdue {
            due: day("2027-02-15"),
            working_days_late: 2
        }
    );
    assert_eq!(
        o(Some("2027-02-15")).status(&cal, day("2027-03-01")),
        DeadlineStatus::UploadedOnTime {
            due: day("2027-02-15"),
            on: day("2027-02-15")
        }
    );
    assert_eq!(
        o(Some("2027-02-16")).status(&cal, day("2027-03-01")),
        DeadlineStatus::UploadedLate {
            due: day("2027-02-15"),
            on: day("2027-02-16"),
            working_days_late: 1
        }
    );
    // An upload dated after the day asked about has not happened yet then.
    assert!(matches!(
        o(Some("2027-03-01")).status(&cal, day("2027-02-17")),
        DeadlineStatus::Overdue { .. }
    ));
}

#[test]
fn overdue_lists_both_kinds_of_upload_most_overdue_first() {
    let cal = WorkingCalendar::default();
    let all = [
        obligation("IN-1", UploadTrigger::ReceivedIntoStock, "2027-01-04", None),
        obligation("IN-1", UploadTrigger::FinishedRecycling, "2027-02-01", None),
        obligation(
            "IN-2",
            UploadTrigger::ReceivedIntoStock,
            "2027-01-04",
            Some("2027-01-20"),
        ),
        obligation("IN-3", UploadTrigger::ReceivedIntoStock, "2027-03-01", None),
        obligation("IN-0", UploadTrigger::ReceivedIntoStock, "2027-01-04", None),
    ];
    let got = overdue_uploads(&all, &cal, day("2027-03-22"));
    let row = |lot: &str, trigger, due: &str, late| OverdueUpload {
        lot: LotId::parse(lot).unwrap(),
        trigger,
        due: day(due),
        working_days_late: late,
    };
    assert_eq!(
        got,
        vec![
            row("IN-0", UploadTrigger::ReceivedIntoStock, "2027-02-15", 25),
            row("IN-1", UploadTrigger::ReceivedIntoStock, "2027-02-15", 25),
            row("IN-1", UploadTrigger::FinishedRecycling, "2027-03-15", 5),
        ]
    );
}
