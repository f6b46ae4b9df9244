//! Nothing readable at rest: after a device synced a journal entry and a
//! clinician wrote a note, none of their text is in the clinic's database
//! files (the database, its WAL and shared memory), and the database holds
//! no private pack-signing key.

use katcore::record::JournalLinks;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::TestServer;

#[tokio::test]
async fn record_text_never_reaches_the_database_files_in_clear() {
    let server = TestServer::start("at-rest").await;
    let mut phone = server.client_with_device("Client A").await;
    let journal = "the drive home felt long; quokka-marker-5521";
    phone.record.write_journal_entry(journal, &JournalLinks::default(), chrono::Utc::now()).unwrap();
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    let note = "reviewed the week, wombat-marker-9034";
    let path = format!("/v1/clients/{}/notes", phone.client_id);
    let response = server.clinician(Method::POST, &path).json(&json!({"text": note})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    // The record reads back through the server (the key works)…
    let record = server.record_json(&phone.client_id).await.to_string();
    assert!(record.contains("quokka-marker-5521") && record.contains("wombat-marker-9034"));
    // …and none of it is in the files.
    let private_key = server.clinic.pack_signing_key.as_ref().unwrap().to_bytes();
    if let Some(url) = server.database.url() {
        // On PostgreSQL: every stored blob and key, as the database holds them.
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
        let driver = tokio::spawn(connection);
        let rows = client
            .query(
                "SELECT blob FROM record_changes UNION ALL SELECT blob FROM record_snapshots
                 UNION ALL SELECT pack_public_key FROM clinics",
                &[],
            )
            .await
            .unwrap();
        assert!(rows.len() >= 3);
        for row in rows {
            let bytes: Vec<u8> = row.get(0);
            for marker in ["quokka-marker-5521", "wombat-marker-9034", "drive home"] {
                assert!(!bytes.windows(marker.len()).any(|w| w == marker.as_bytes()), "{marker} in the database");
            }
            assert!(!bytes.windows(32).any(|w| w == private_key), "the signing key is in the database");
        }
        drop(client);
        let _ = driver.await;
        return;
    }
    let dir = server.db.parent().unwrap();
    let mut scanned = 0;
    for file in std::fs::read_dir(dir).unwrap().map(|entry| entry.unwrap().path()) {
        if !file.file_name().unwrap().to_string_lossy().starts_with("clinic.db") {
            continue;
        }
        let bytes = std::fs::read(&file).unwrap();
        scanned += bytes.len();
        for marker in ["quokka-marker-5521", "wombat-marker-9034", "drive home"] {
            assert!(!bytes.windows(marker.len()).any(|w| w == marker.as_bytes()), "{marker} in {}", file.display());
        }
        assert!(!bytes.windows(32).any(|w| w == private_key), "the signing key is in {}", file.display());
    }
    assert!(scanned > 0);
}
