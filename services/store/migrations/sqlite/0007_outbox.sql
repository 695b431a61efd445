-- The transactional outbox (SQLite dialect; migrations/postgres has the
-- same tables in PostgreSQL's): documents to deliver to outside platforms,
-- and one delivery per document and target connector.
--
-- A document is written once and never changed. content holds its bytes;
-- is_text is 1 when they are UTF-8 text (JSON, CSV, HTML). idempotency_key
-- is the hex SHA-256 of kind, id and content (remine_domain::outbox), sent
-- with every attempt so the receiver stores it once.
--
-- A delivery's state is 'pending', 'in_flight', 'delivered' or 'parked'.
-- It is due when pending or in flight and next_attempt_at_us has come: a
-- claim sets next_attempt_at_us to the end of its lease, so a delivery
-- whose worker died is claimed again once the lease is over. attempts
-- counts the attempts begun since it was enqueued or last requeued. Times
-- are microseconds since the epoch.
CREATE TABLE outbox_documents (
    id              TEXT    PRIMARY KEY,
    kind            TEXT    NOT NULL,
    content_type    TEXT    NOT NULL,
    is_text         INTEGER NOT NULL,
    content         BLOB    NOT NULL,
    idempotency_key TEXT    NOT NULL,
    created_at_us   INTEGER NOT NULL
);

CREATE TABLE outbox_deliveries (
    document_id        TEXT    NOT NULL REFERENCES outbox_documents (id),
    target             TEXT    NOT NULL,
    idempotency_key    TEXT    NOT NULL,
    state              TEXT    NOT NULL,
    attempts           INTEGER NOT NULL,
    next_attempt_at_us INTEGER NOT NULL,
    lease_owner        TEXT,
    last_error         TEXT,
    delivered_at_us    INTEGER,
    receipt            TEXT,
    parked_at_us       INTEGER,
    park_reason        TEXT,
    park_status        INTEGER,
    PRIMARY KEY (document_id, target)
);

CREATE INDEX outbox_deliveries_due ON outbox_deliveries (state, next_attempt_at_us);
