-- Version 3: what clinicians did about each alert (SQLite schema version 6,
-- clinic/src/storage/schema.rs). The outcome of an alert's current
-- acknowledgement, and the audit trail of every acknowledgement and
-- reopening (who, when, the outcome's code). The free-text note is kept
-- only in the sealed record. No existing row changes: earlier
-- acknowledgements have no outcome and no trail row.

ALTER TABLE alerts ADD COLUMN acknowledged_outcome TEXT;

CREATE TABLE alert_actions (
    alert_id TEXT NOT NULL REFERENCES alerts (id),
    action TEXT NOT NULL CHECK (action IN ('acknowledged', 'reopened')),
    at BIGINT NOT NULL,
    clinician_id TEXT NOT NULL,
    by_name TEXT NOT NULL,
    outcome TEXT
);

CREATE INDEX alert_actions_of_alert ON alert_actions (alert_id, at);
