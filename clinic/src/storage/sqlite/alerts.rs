//! Alerts on SQLite: listing them, and what clinicians do to them (an
//! acknowledgement with its outcome, a reopening), each with its line in
//! the alert's audit trail in the same transaction. Alerts are raised with
//! the record change that brings them (`records.rs`). The PostgreSQL twin
//! is `postgres/alerts.rs`.

use rusqlite::{params, OptionalExtension, Row};

use super::super::{urgent_kind_from_name, Alert, AlertAction, AlertActionKind, StorageError};
use super::{bad_column, collect, ms, optional_time, time, SqliteStorage};

const ALERT_COLUMNS: &str = "a.id, a.client_id, a.urgent_key, a.kind, a.at, a.raised_at, a.acknowledged_at, \
     a.acknowledged_by, a.acknowledged_outcome";

fn alert_row(row: &Row<'_>) -> rusqlite::Result<Alert> {
    let kind: String = row.get(3)?;
    Ok(Alert {
        id: row.get(0)?,
        client_id: row.get(1)?,
        key: row.get(2)?,
        kind: urgent_kind_from_name(&kind).ok_or_else(|| bad_column(3, "unknown alert kind"))?,
        at: time(row, 4)?,
        raised_at: time(row, 5)?,
        acknowledged_at: optional_time(row, 6)?,
        acknowledged_by: row.get(7)?,
        acknowledged_outcome: row.get(8)?,
    })
}

/// A clinic's alerts (open ones only when `open_only`).
pub(super) fn of_clinic(storage: &SqliteStorage, clinic_id: &str, open_only: bool) -> Result<Vec<Alert>, StorageError> {
    storage.read(|tx| {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts a JOIN clients c ON c.id = a.client_id
             WHERE c.clinic_id = ?1 AND (?2 = 0 OR a.acknowledged_at IS NULL)
             ORDER BY a.acknowledged_at IS NOT NULL, a.at DESC, a.raised_at DESC, a.id"
        ))?;
        let rows = stmt.query_map(params![clinic_id, open_only], alert_row)?;
        collect(rows)
    })
}

/// Every open alert, and the `acknowledged` latest acknowledged ones.
pub(super) fn to_show(
    storage: &SqliteStorage,
    clinic_id: &str,
    client_id: Option<&str>,
    acknowledged: usize,
) -> Result<Vec<Alert>, StorageError> {
    storage.read(|tx| {
        let limit = i64::try_from(acknowledged).unwrap_or(i64::MAX);
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT * FROM (SELECT {ALERT_COLUMNS} FROM alerts a JOIN clients c ON c.id = a.client_id
                 WHERE c.clinic_id = ?1 AND (?2 IS NULL OR a.client_id = ?2) AND a.acknowledged_at IS NULL)
             UNION ALL
             SELECT * FROM (SELECT {ALERT_COLUMNS} FROM alerts a JOIN clients c ON c.id = a.client_id
                 WHERE c.clinic_id = ?1 AND (?2 IS NULL OR a.client_id = ?2) AND a.acknowledged_at IS NOT NULL
                 ORDER BY a.acknowledged_at DESC, a.id LIMIT ?3)"
        ))?;
        let rows = stmt.query_map(params![clinic_id, client_id, limit], alert_row)?;
        collect(rows)
    })
}

/// One alert of the clinic's clients.
pub(super) fn one(storage: &SqliteStorage, clinic_id: &str, alert_id: &str) -> Result<Option<Alert>, StorageError> {
    storage.read(|tx| {
        Ok(tx
            .prepare_cached(&format!(
                "SELECT {ALERT_COLUMNS} FROM alerts a JOIN clients c ON c.id = a.client_id
                 WHERE a.id = ?1 AND c.clinic_id = ?2"
            ))?
            .query_row([alert_id, clinic_id], alert_row)
            .optional()?)
    })
}

/// Does `action` and adds it to the trail, if it changes the alert.
pub(super) fn record_action(storage: &SqliteStorage, action: &AlertAction) -> Result<bool, StorageError> {
    storage.write(|tx| {
        let changed = match action.action {
            AlertActionKind::Acknowledged => tx.execute(
                "UPDATE alerts SET acknowledged_at = ?2, acknowledged_by = ?3, acknowledged_outcome = ?4
                 WHERE id = ?1 AND acknowledged_at IS NULL",
                params![action.alert_id, ms(action.at), action.by, action.outcome],
            )?,
            AlertActionKind::Reopened => tx.execute(
                "UPDATE alerts SET acknowledged_at = NULL, acknowledged_by = NULL, acknowledged_outcome = NULL
                 WHERE id = ?1 AND acknowledged_at IS NOT NULL",
                [&action.alert_id],
            )?,
        };
        if changed == 0 {
            return Ok(false);
        }
        tx.prepare_cached(
            "INSERT INTO alert_actions (alert_id, action, at, clinician_id, by_name, outcome)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            action.alert_id,
            action.action.name(),
            ms(action.at),
            action.clinician_id,
            action.by,
            action.outcome
        ])?;
        Ok(true)
    })
}

/// The audit trail of a client's alerts, oldest first.
pub(super) fn actions(storage: &SqliteStorage, client_id: &str) -> Result<Vec<AlertAction>, StorageError> {
    storage.read(|tx| {
        let mut stmt = tx.prepare_cached(
            "SELECT t.alert_id, t.action, t.at, t.clinician_id, t.by_name, t.outcome
             FROM alert_actions t JOIN alerts a ON a.id = t.alert_id
             WHERE a.client_id = ?1 ORDER BY t.at, t.action",
        )?;
        let rows = stmt.query_map([client_id], |row| {
            let action: String = row.get(1)?;
            Ok(AlertAction {
                alert_id: row.get(0)?,
                action: match action.as_str() {
                    "acknowledged" => AlertActionKind::Acknowledged,
                    "reopened" => AlertActionKind::Reopened,
                    _ => return Err(bad_column(1, "unknown alert action")),
                },
                at: time(row, 2)?,
                clinician_id: row.get(3)?,
                by: row.get(4)?,
                outcome: row.get(5)?,
            })
        })?;
        collect(rows)
    })
}
