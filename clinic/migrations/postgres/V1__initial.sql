-- The clinic server's schema on PostgreSQL, version 1: the SQLite schema
-- version 4 (clinic/src/storage/schema.rs) with PostgreSQL types, plus what
-- several server instances on one database need:
--   * appends lock the client's row and compare the record's last seq
--     (optimistic concurrency between instances, docs/deployment.md);
--   * auth_failures, the failed-attempt counts every instance shares;
--   * readiness_probe, the row `GET /readyz` rewrites.
-- Times are Unix milliseconds (UTC), as in SQLite. Applied by refinery
-- (`refinery_schema_history`) under an advisory lock, so instances that
-- start together migrate once.

CREATE TABLE clinics (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    pack_public_key BYTEA NOT NULL CHECK (octet_length(pack_public_key) = 32),
    created_at BIGINT NOT NULL
);

CREATE TABLE clinicians (
    id TEXT PRIMARY KEY,
    clinic_id TEXT NOT NULL REFERENCES clinics (id),
    display_name TEXT NOT NULL,
    token_hash BYTEA NOT NULL UNIQUE,
    revoked BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    login TEXT UNIQUE,
    password_hash TEXT
);

CREATE TABLE clients (
    id TEXT PRIMARY KEY,
    clinic_id TEXT NOT NULL REFERENCES clinics (id),
    label TEXT NOT NULL,
    planned_sessions TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL
);
CREATE INDEX clients_by_clinic ON clients (clinic_id, created_at);

CREATE TABLE enrollment_codes (
    code_hash BYTEA PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id),
    label TEXT NOT NULL,
    token_hash BYTEA NOT NULL UNIQUE,
    enrolled_at BIGINT NOT NULL,
    last_sync_at BIGINT,
    revoked_at BIGINT,
    pack_version BIGINT
);
CREATE INDEX devices_by_client ON devices (client_id);

CREATE TABLE record_changes (
    client_id TEXT NOT NULL REFERENCES clients (id),
    seq BIGINT NOT NULL,
    blob BYTEA NOT NULL,
    PRIMARY KEY (client_id, seq)
);

CREATE TABLE record_snapshots (
    client_id TEXT PRIMARY KEY REFERENCES clients (id),
    through_seq BIGINT NOT NULL,
    blob BYTEA NOT NULL
);

CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id),
    urgent_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    at BIGINT NOT NULL,
    raised_at BIGINT NOT NULL,
    acknowledged_at BIGINT,
    acknowledged_by TEXT,
    UNIQUE (client_id, urgent_key)
);
CREATE INDEX alerts_open ON alerts (client_id) WHERE acknowledged_at IS NULL;

CREATE TABLE record_actors (
    client_id TEXT NOT NULL REFERENCES clients (id),
    actor TEXT NOT NULL,
    device_id TEXT REFERENCES devices (id),
    first_seen_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, actor)
);

CREATE TABLE packs (
    clinic_id TEXT NOT NULL REFERENCES clinics (id),
    version BIGINT NOT NULL,
    pack_id TEXT NOT NULL,
    signed_json TEXT NOT NULL,
    etag TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    PRIMARY KEY (clinic_id, version)
);

CREATE TABLE web_sessions (
    id_hash BYTEA PRIMARY KEY CHECK (octet_length(id_hash) = 32),
    clinician_id TEXT NOT NULL REFERENCES clinicians (id),
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX web_sessions_by_expiry ON web_sessions (expires_at);

-- Failed attempts per counted address (IPv4, or the /64 of IPv6) and
-- one-minute window of Unix time; rows older than the previous window
-- are deleted as new windows start.
CREATE TABLE auth_failures (
    address BYTEA NOT NULL,
    window_start BIGINT NOT NULL,
    failures INTEGER NOT NULL,
    PRIMARY KEY (address, window_start)
);

CREATE TABLE readiness_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at BIGINT NOT NULL
);
