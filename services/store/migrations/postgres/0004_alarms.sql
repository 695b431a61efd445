-- The alarm history (PostgreSQL dialect; migrations/sqlite has the same table
-- in SQLite's): one row per transition of an alarm in its ISA-18.2 life
-- cycle and per start or end of an alarm flood in an area. Append-only: the
-- store has no path that updates or deletes a row.
--
-- kind is 'transition', 'flood_started' or 'flood_ended'. A transition has
-- from_status and to_status (normal, unacknowledged, acknowledged,
-- returned_unacknowledged, shelved, suppressed_by_design, out_of_service);
-- a timed shelve keeps its end in *_until_us. priority is 0 low, 1 medium,
-- 2 high, 3 critical (NULL for a flood). Times are microseconds since the
-- epoch. by_user and by_reason say who acted and why (operator actions,
-- whose audit entry is audit_seq).
CREATE TABLE alarm_events (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_us         BIGINT NOT NULL,
    alarm         TEXT    NOT NULL,
    area          TEXT    NOT NULL,
    priority      BIGINT,
    kind          TEXT    NOT NULL,
    from_status   TEXT,
    from_until_us BIGINT,
    to_status     TEXT,
    to_until_us   BIGINT,
    flood_count   BIGINT,
    value         DOUBLE PRECISION,
    by_user       TEXT,
    by_reason     TEXT,
    audit_seq     BIGINT
);

CREATE INDEX alarm_events_at ON alarm_events (at_us);
CREATE INDEX alarm_events_alarm ON alarm_events (alarm, at_us);
CREATE INDEX alarm_events_area ON alarm_events (area, at_us);
