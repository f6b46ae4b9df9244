//! Alerts on PostgreSQL: listing them, and what clinicians do to them (an
//! acknowledgement with its outcome, a reopening), each with its line in
//! the alert's audit trail in the same statement. Alerts are raised with
//! the record change that brings them (`records.rs`). The SQLite twin is
//! `sqlite/alerts.rs`.

use tokio_postgres::Row;

use super::rows::{ms, optional_time, time};
use super::PgStorage;
use crate::storage::{urgent_kind_from_name, Alert, AlertAction, AlertActionKind, StorageError};

const ALERT_COLUMNS: &str = "a.id, a.client_id, a.urgent_key, a.kind, a.at, a.raised_at, a.acknowledged_at, \
     a.acknowledged_by, a.acknowledged_outcome";

fn alert_row(row: &Row) -> Result<Alert, StorageError> {
    let kind: String = row.get(3);
    Ok(Alert {
        id: row.get(0),
        client_id: row.get(1),
        key: row.get(2),
        kind: urgent_kind_from_name(&kind).ok_or(StorageError::Corrupt("unknown alert kind"))?,
        at: time(row.get(4))?,
        raised_at: time(row.get(5))?,
        acknowledged_at: optional_time(row.get(6))?,
        acknowledged_by: row.get(7),
        acknowledged_outcome: row.get(8),
    })
}

/// A clinic's alerts (open ones only when `open_only`).
pub(super) fn of_clinic(storage: &PgStorage, clinic_id: &str, open_only: bool) -> Result<Vec<Alert>, StorageError> {
    storage
        .query(
            &format!(
                "SELECT {ALERT_COLUMNS} FROM alerts a JOIN clients c ON c.id = a.client_id
                 WHERE c.clinic_id = $1 AND (NOT $2 OR a.acknowledged_at IS NULL)
                 ORDER BY a.acknowledged_at IS NOT NULL, a.at DESC, a.raised_at DESC, a.id"
            ),
            &[&clinic_id, &open_only],
        )?
        .iter()
        .map(alert_row)
        .collect()
}

/// Every open alert, and the `acknowledged` latest acknowledged ones.
pub(super) fn to_show(
    storage: &PgStorage,
    clinic_id: &str,
    client_id: Option<&str>,
    acknowledged: usize,
) -> Result<Vec<Alert>, StorageError> {
    let limit = i64::try_from(acknowledged).unwrap_or(i64::MAX);
    storage
        .query(
            &format!(
                "(SELECT {ALERT_COLUMNS} FROM alerts a JOIN clients c ON c.id = a.client_id
                     WHERE c.clinic_id = $1 AND ($2::TEXT IS NULL OR a.client_id = $2) AND a.acknowledged_at IS NULL)
                 UNION ALL
                 (SELECT {ALERT_COLUMNS} FROM alerts a JOIN clients c ON c.id = a.client_id
                     WHERE c.clinic_id = $1 AND ($2::TEXT IS NULL OR a.client_id = $2) AND a.acknowledged_at IS NOT NULL
                     ORDER BY a.acknowledged_at DESC, a.id LIMIT $3)"
            ),
            &[&clinic_id, &client_id, &limit],
        )?
        .iter()
        .map(alert_row)
        .collect()
}

/// One alert of the clinic's clients.
pub(super) fn one(storage: &PgStorage, clinic_id: &str, alert_id: &str) -> Result<Option<Alert>, StorageError> {
    storage
        .query_opt(
            &format!(
                "SELECT {ALERT_COLUMNS} FROM alerts a JOIN clients c ON c.id = a.client_id
                 WHERE a.id = $1 AND c.clinic_id = $2"
            ),
            &[&alert_id, &clinic_id],
        )?
        .map(|row| alert_row(&row))
        .transpose()
}

/// Acknowledges an open alert (`$1`) and adds the line to its trail.
const ACKNOWLEDGE: &str = "WITH changed AS (
        UPDATE alerts SET acknowledged_at = $2, acknowledged_by = $3, acknowledged_outcome = $4
        WHERE id = $1 AND acknowledged_at IS NULL RETURNING id)
     INSERT INTO alert_actions (alert_id, action, at, clinician_id, by_name, outcome)
     SELECT id, 'acknowledged', $2, $5, $3, $4 FROM changed";

/// Reopens an acknowledged alert (`$1`) and adds the line to its trail.
const REOPEN: &str = "WITH changed AS (
        UPDATE alerts SET acknowledged_at = NULL, acknowledged_by = NULL, acknowledged_outcome = NULL
        WHERE id = $1 AND acknowledged_at IS NOT NULL RETURNING id)
     INSERT INTO alert_actions (alert_id, action, at, clinician_id, by_name, outcome)
     SELECT id, 'reopened', $2, $4, $3, NULL FROM changed";

/// Does `action` and adds it to the trail, if it changes the alert (one
/// statement, so both or neither).
pub(super) fn record_action(storage: &PgStorage, action: &AlertAction) -> Result<bool, StorageError> {
    let at = ms(action.at);
    let written = match action.action {
        AlertActionKind::Acknowledged => {
            storage.execute(ACKNOWLEDGE, &[&action.alert_id, &at, &action.by, &action.outcome, &action.clinician_id])?
        }
        AlertActionKind::Reopened => {
            storage.execute(REOPEN, &[&action.alert_id, &at, &action.by, &action.clinician_id])?
        }
    };
    Ok(written > 0)
}

/// The audit trail of a client's alerts, oldest first.
pub(super) fn actions(storage: &PgStorage, client_id: &str) -> Result<Vec<AlertAction>, StorageError> {
    storage
        .query(
            "SELECT t.alert_id, t.action, t.at, t.clinician_id, t.by_name, t.outcome
             FROM alert_actions t JOIN alerts a ON a.id = t.alert_id
             WHERE a.client_id = $1 ORDER BY t.at, t.action",
            &[&client_id],
        )?
        .iter()
        .map(|row| {
            let action: String = row.get(1);
            Ok(AlertAction {
                alert_id: row.get(0),
                action: match action.as_str() {
                    "acknowledged" => AlertActionKind::Acknowledged,
                    "reopened" => AlertActionKind::Reopened,
                    _ => return Err(StorageError::Corrupt("unknown alert action")),
                },
                at: time(row.get(2))?,
                clinician_id: row.get(3),
                by: row.get(4),
                outcome: row.get(5),
            })
        })
        .collect()
}
