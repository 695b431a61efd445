-- Metal accounting (SQLite dialect; migrations/postgres has the same tables
-- in PostgreSQL's): the weighing each lot was made with, lab assays, and
-- stock events. All three are append-only: the store has no path that
-- updates or deletes their rows, and a correction is a new stock event.
-- Masses are kilograms and fractions are 0..1, as IEEE doubles; audit_seq
-- is the audit entry of the write that recorded the row.

-- One weighing per lot: wet mass, moisture (mass fraction), method name
-- (weighbridge, platform_scale, ...), instrument, relative uncertainty.
CREATE TABLE lot_measurements (
    lot_id         TEXT    NOT NULL PRIMARY KEY REFERENCES lots (id),
    wet_kg         REAL    NOT NULL,
    moisture       REAL    NOT NULL,
    method         TEXT    NOT NULL,
    instrument     TEXT    NOT NULL,
    relative_sigma REAL    NOT NULL,
    audit_seq      INTEGER NOT NULL
);

-- Lab results: one element's mass fraction in a sample of a lot, with its
-- absolute standard deviation. seq counts from 1 in recording order.
CREATE TABLE lot_assays (
    seq       INTEGER NOT NULL PRIMARY KEY,
    lot_id    TEXT    NOT NULL REFERENCES lots (id),
    sample    TEXT    NOT NULL,
    element   TEXT    NOT NULL,
    fraction  REAL    NOT NULL,
    sigma     REAL    NOT NULL,
    method    TEXT    NOT NULL,
    lab       TEXT    NOT NULL,
    audit_seq INTEGER NOT NULL
);
CREATE INDEX lot_assays_by_lot ON lot_assays (lot_id, seq);

-- Stock movements besides production. kind is sample, stock_adjustment or
-- correction; delta_kg is the change of the lot's stock (negative for a
-- sample, whose mass is -delta_kg); sample names the lab sample of a
-- sample event; corrects is the seq of the event a correction corrects.
-- seq counts from 1 in recording order across all lots.
CREATE TABLE lot_stock_events (
    seq       INTEGER NOT NULL PRIMARY KEY,
    lot_id    TEXT    NOT NULL REFERENCES lots (id),
    kind      TEXT    NOT NULL,
    sample    TEXT,
    delta_kg  REAL    NOT NULL,
    corrects  INTEGER REFERENCES lot_stock_events (seq),
    audit_seq INTEGER NOT NULL
);
CREATE INDEX lot_stock_events_by_lot ON lot_stock_events (lot_id, seq);
