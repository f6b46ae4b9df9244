-- Version 2: the clinic's own time (SQLite schema version 5,
-- clinic/src/storage/schema.rs). When the clinic first received each entry
-- of a record (server-assigned; a device cannot write it), and each
-- device's clock offset as measured at its latest sync
-- (docs/sync-protocol.md, "The device's clock"). No existing row changes:
-- entries stored before have no receipt.

CREATE TABLE entry_receipts (
    client_id TEXT NOT NULL REFERENCES clients (id),
    entry_key TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, entry_key)
);

ALTER TABLE devices ADD COLUMN clock_offset_ms BIGINT;
