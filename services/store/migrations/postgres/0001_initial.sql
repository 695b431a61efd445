-- remine store, first schema (PostgreSQL dialect; migrations/sqlite has the
-- same tables in SQLite's). Times are integers: microseconds since
-- 1970-01-01 UTC, so they round-trip exactly on both backends. Masses are
-- kilograms as IEEE doubles.

CREATE TABLE users (
    name          TEXT    NOT NULL PRIMARY KEY,
    role          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    created_at_us BIGINT  NOT NULL
);

-- Sessions are stored under the hash of their token, never the token.
CREATE TABLE sessions (
    token_hash    TEXT    NOT NULL PRIMARY KEY,
    user_name     TEXT    NOT NULL REFERENCES users (name),
    expires_at_us BIGINT  NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_name);

-- The hash-chained audit trail; seq counts from 1 without gaps.
CREATE TABLE audit (
    seq       BIGINT  NOT NULL PRIMARY KEY,
    at_us     BIGINT  NOT NULL,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    target    TEXT    NOT NULL,
    old_value TEXT,
    new_value TEXT,
    reason    TEXT    NOT NULL,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
);

-- The chain head: the last sealed entry. Every audited write reads it first
-- (taking the write lock) and moves it in the same transaction, so appends
-- are serialised and a removed tail entry is detectable.
CREATE TABLE audit_head (
    id   BIGINT  NOT NULL PRIMARY KEY CHECK (id = 1),
    seq  BIGINT  NOT NULL,
    hash TEXT    NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- The plant's copy of a battery passport. id_kind (urn, uuid, gbt, plant)
-- says which constructor rebuilds the id. content_source is declared,
-- estimated, or NULL when the passport has no element content.
CREATE TABLE passports (
    id                  TEXT    NOT NULL PRIMARY KEY,
    id_kind             TEXT    NOT NULL,
    form                TEXT    NOT NULL,
    serial              TEXT,
    manufacturer        TEXT,
    chemistry           TEXT,
    unit_type           TEXT    NOT NULL,
    mass_kg             DOUBLE PRECISION NOT NULL,
    content_source      TEXT,
    state_of_health_pct DOUBLE PRECISION,
    country             TEXT,
    gbt                 TEXT,
    audit_seq           BIGINT  NOT NULL
);

CREATE TABLE passport_elements (
    passport_id TEXT NOT NULL REFERENCES passports (id),
    element     TEXT NOT NULL,
    kg          DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (passport_id, element)
);

CREATE TABLE passport_warnings (
    passport_id TEXT    NOT NULL REFERENCES passports (id),
    position    BIGINT  NOT NULL,
    text        TEXT    NOT NULL,
    PRIMARY KEY (passport_id, position)
);

-- Lots; audit_seq is the entry that recorded the lot and orders lots
-- created at the same instant.
CREATE TABLE lots (
    id             TEXT    NOT NULL PRIMARY KEY,
    kind           TEXT    NOT NULL,
    mass_kg        DOUBLE PRECISION NOT NULL,
    content_source TEXT    NOT NULL,
    created_at_us  BIGINT  NOT NULL,
    passport_id    TEXT    REFERENCES passports (id),
    country        TEXT,
    audit_seq      BIGINT  NOT NULL
);
CREATE INDEX lots_by_age ON lots (created_at_us, audit_seq);

CREATE TABLE lot_elements (
    lot_id  TEXT NOT NULL REFERENCES lots (id),
    element TEXT NOT NULL,
    kg      DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (lot_id, element)
);

-- Genealogy: mass_kg of from_lot went into to_lot. position keeps the order
-- in which a production event listed its inputs.
CREATE TABLE lot_edges (
    from_lot TEXT    NOT NULL REFERENCES lots (id),
    to_lot   TEXT    NOT NULL REFERENCES lots (id),
    mass_kg  DOUBLE PRECISION NOT NULL,
    position BIGINT  NOT NULL,
    PRIMARY KEY (from_lot, to_lot)
);
CREATE INDEX lot_edges_by_output ON lot_edges (to_lot);
