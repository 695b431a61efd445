-- Master recipes and the control recipes of batches (SQLite dialect;
-- migrations/postgres has the same tables in PostgreSQL's). A recipe
-- version is keyed by line, chemistry and version number. Parameters are
-- stored flat, in recipe order (ordinal from 0), each with the path of its
-- phase; a phase is the run of consecutive parameters that share a path.
-- Values and limits are IEEE doubles in the parameter's own unit (its
-- symbol). Times are microseconds since 1970-01-01 UTC, as in 0001.

CREATE TABLE recipe_versions (
    line          TEXT    NOT NULL,
    chemistry     TEXT    NOT NULL,
    version       INTEGER NOT NULL CHECK (version >= 1),
    status        TEXT    NOT NULL,
    description   TEXT    NOT NULL,
    created_by    TEXT    NOT NULL,
    created_at_us INTEGER NOT NULL,
    audit_seq     INTEGER NOT NULL,
    PRIMARY KEY (line, chemistry, version)
);
-- At most one released version per line and chemistry, whatever the code.
CREATE UNIQUE INDEX recipe_versions_one_released
    ON recipe_versions (line, chemistry) WHERE status = 'released';

CREATE TABLE recipe_parameters (
    line           TEXT    NOT NULL,
    chemistry      TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    ordinal        INTEGER NOT NULL,
    unit_procedure TEXT    NOT NULL,
    operation      TEXT    NOT NULL,
    phase          TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    value          REAL NOT NULL,
    unit           TEXT    NOT NULL,
    min_value      REAL NOT NULL,
    max_value      REAL NOT NULL,
    PRIMARY KEY (line, chemistry, version, ordinal),
    UNIQUE (line, chemistry, version, name),
    FOREIGN KEY (line, chemistry, version) REFERENCES recipe_versions (line, chemistry, version)
);

-- Electronic signatures, oldest first; audit_seq is the entry of the
-- transition that added the signature.
CREATE TABLE recipe_signatures (
    line      TEXT    NOT NULL,
    chemistry TEXT    NOT NULL,
    version   INTEGER NOT NULL,
    ordinal   INTEGER NOT NULL,
    user_name TEXT    NOT NULL,
    meaning   TEXT    NOT NULL,
    at_us     INTEGER NOT NULL,
    reason    TEXT    NOT NULL,
    audit_seq INTEGER NOT NULL,
    PRIMARY KEY (line, chemistry, version, ordinal),
    FOREIGN KEY (line, chemistry, version) REFERENCES recipe_versions (line, chemistry, version)
);

-- The recipe a batch ran with: one per batch (the lot it makes), naming the
-- master version it was made from. Its parameters are its own copy, with
-- the operator's adjustments applied.
CREATE TABLE control_recipes (
    batch            TEXT    NOT NULL PRIMARY KEY,
    unit             TEXT    NOT NULL,
    line             TEXT    NOT NULL,
    chemistry        TEXT    NOT NULL,
    version          INTEGER NOT NULL,
    description      TEXT    NOT NULL,
    downloaded_by    TEXT    NOT NULL,
    downloaded_at_us INTEGER NOT NULL,
    audit_seq        INTEGER NOT NULL,
    FOREIGN KEY (line, chemistry, version) REFERENCES recipe_versions (line, chemistry, version)
);

CREATE TABLE control_recipe_parameters (
    batch          TEXT    NOT NULL REFERENCES control_recipes (batch),
    ordinal        INTEGER NOT NULL,
    unit_procedure TEXT    NOT NULL,
    operation      TEXT    NOT NULL,
    phase          TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    value          REAL NOT NULL,
    unit           TEXT    NOT NULL,
    min_value      REAL NOT NULL,
    max_value      REAL NOT NULL,
    PRIMARY KEY (batch, ordinal),
    UNIQUE (batch, name)
);

-- The operator's adjustments, in the order made; each side in its own unit.
CREATE TABLE control_recipe_adjustments (
    batch      TEXT    NOT NULL REFERENCES control_recipes (batch),
    ordinal    INTEGER NOT NULL,
    parameter  TEXT    NOT NULL,
    from_value REAL NOT NULL,
    from_unit  TEXT    NOT NULL,
    to_value   REAL NOT NULL,
    to_unit    TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    PRIMARY KEY (batch, ordinal)
);
