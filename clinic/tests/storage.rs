//! The storage contract, on the backend the environment names (SQLite by
//! default; PostgreSQL when `KATCORE_TEST_POSTGRES` is set, as
//! `scripts/postgres-test.sh` runs it): what several writers on one
//! database rely on. Two storages opened on one database stand for two
//! server instances.

use std::sync::Arc;

use chrono::Utc;
use katcore::record::UrgentKind;
use katcore_clinic::{
    hash_secret, Client, ClinicStorage, NewAlert, NewDevice, PgOptions, PgStorage, RecordUpdate, StorageError,
    TestDatabase,
};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("katcore-storage-{name}-{}", katcore::record::new_id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A database with one clinic and one client; returns it and the client's id.
fn world(name: &str) -> (TestDatabase, Arc<dyn ClinicStorage>, String, String) {
    let database = TestDatabase::new(&temp_dir(name)).unwrap();
    let clinic = database.init_clinic("Riverside Clinic", "Dr. Rivera").unwrap();
    let storage = database.open().unwrap();
    let client = Client { id: katcore::record::new_id(), clinic_id: clinic.clinic_id.clone(), label: "c-1".into() };
    storage.insert_client(&client, Utc::now()).unwrap();
    (database, storage, clinic.clinic_id, client.id)
}

fn update<'a>(change: &'a [u8], expected_seq: i64, urgent: &'a [NewAlert]) -> RecordUpdate<'a> {
    RecordUpdate {
        change,
        expected_seq,
        planned_sessions: None,
        urgent,
        at: Utc::now(),
        synced_device: None,
        new_actors: &[],
        device_clock_offset_ms: None,
        received: &[],
    }
}

#[test]
fn an_entry_keeps_its_first_receipt_and_a_refused_append_records_none() {
    let (_database, storage, _, client) = world("receipts");
    let keys = ["v:1".to_owned(), "s:2".to_owned(), "s:2/h:3".to_owned()];
    let first = Utc::now() - chrono::Duration::minutes(5);
    let update_at = |change, seq, received, at| RecordUpdate { received, at, ..update(change, seq, &[]) };
    storage.append_record_change(&client, &update_at(b"one", 0, &keys[..2], first)).unwrap();
    // A stale writer's append is refused whole: its receipts are not kept.
    let late = ["e:9".to_owned()];
    assert!(storage.append_record_change(&client, &update_at(b"stale", 0, &late, Utc::now())).is_err());
    storage.append_record_change(&client, &update_at(b"two", 1, &keys, Utc::now())).unwrap();
    let receipts = storage.entry_receipts(&client, "").unwrap();
    assert_eq!(receipts.len(), 3, "{receipts:?}");
    let ms = |t: chrono::DateTime<Utc>| t.timestamp_millis();
    assert_eq!(ms(receipts["v:1"]), ms(first), "received first in change 1");
    assert_eq!(ms(receipts["s:2"]), ms(first));
    assert!(receipts["s:2/h:3"] > first, "new in change 2");
    let sessions = storage.entry_receipts(&client, "s:").unwrap();
    assert_eq!(
        sessions.keys().collect::<std::collections::BTreeSet<_>>(),
        ["s:2", "s:2/h:3"].iter().map(|k| k.to_string()).collect::<Vec<_>>().iter().collect()
    );
}

#[test]
fn appends_follow_the_last_seq_and_a_stale_writer_is_refused() {
    let (_database, storage, _, client) = world("seq");
    assert_eq!(storage.record_seq(&client).unwrap(), 0);
    assert_eq!(storage.append_record_change(&client, &update(b"one", 0, &[])).unwrap(), 1);
    // A writer whose copy predates change 1 is refused, and writes nothing.
    let stale = storage.append_record_change(&client, &update(b"late", 0, &[]));
    assert!(matches!(stale, Err(StorageError::Conflict)), "{stale:?}");
    assert_eq!(storage.record_seq(&client).unwrap(), 1);
    assert_eq!(storage.load_record(&client).unwrap().changes, vec![(1, b"one".to_vec())]);
    assert_eq!(storage.append_record_change(&client, &update(b"two", 1, &[])).unwrap(), 2);
    // Compaction keeps the seq: the next append follows it.
    storage.compact_record(&client, b"snapshot", 2).unwrap();
    assert_eq!(storage.record_seq(&client).unwrap(), 2);
    assert!(matches!(storage.append_record_change(&client, &update(b"x", 1, &[])), Err(StorageError::Conflict)));
    assert_eq!(storage.append_record_change(&client, &update(b"three", 2, &[])).unwrap(), 3);
    let stored = storage.load_record(&client).unwrap();
    assert_eq!((stored.snapshot.as_deref(), stored.snapshot_through_seq), (Some(&b"snapshot"[..]), 2));
    assert_eq!(stored.changes, vec![(3, b"three".to_vec())]);
    // A snapshot covering less than the stored one, or a change not stored, is refused.
    assert!(storage.compact_record(&client, b"old", 1).is_err());
    assert!(storage.compact_record(&client, b"future", 4).is_err());
}

#[test]
fn concurrent_writers_on_two_storages_lose_nothing_and_raise_each_alert_once() {
    let (database, first, clinic_id, client) = world("race");
    let second = database.open().unwrap();
    let writers: Vec<_> = [first, second]
        .into_iter()
        .cycle()
        .take(4)
        .enumerate()
        .map(|(w, storage)| {
            let client = client.clone();
            std::thread::spawn(move || {
                let mut conflicts = 0;
                for n in 0..15 {
                    let change = format!("writer {w} change {n}");
                    // Every writer reports the same urgent item each time.
                    let urgent = [NewAlert {
                        key: "vitals/shared".into(),
                        kind: UrgentKind::UrgentBloodPressure,
                        at: Utc::now(),
                    }];
                    loop {
                        let expected = storage.record_seq(&client).unwrap();
                        match storage.append_record_change(&client, &update(change.as_bytes(), expected, &urgent)) {
                            Ok(_) => break,
                            Err(StorageError::Conflict) => conflicts += 1,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
                conflicts
            })
        })
        .collect();
    let conflicts: usize = writers.into_iter().map(|w| w.join().unwrap()).sum();
    let storage = database.open().unwrap();
    let stored = storage.load_record(&client).unwrap();
    let seqs: Vec<i64> = stored.changes.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, (1..=60).collect::<Vec<_>>(), "every change once, numbered without a gap");
    for w in 0..4 {
        for n in 0..15 {
            let text = format!("writer {w} change {n}");
            assert_eq!(stored.changes.iter().filter(|(_, bytes)| *bytes == text.as_bytes()).count(), 1, "{text}");
        }
    }
    assert_eq!(storage.alerts(&clinic_id, false).unwrap().len(), 1, "one alert for one item");
    println!("appends refused as stale and redone: {conflicts}");
}

#[test]
fn an_enrollment_code_is_redeemed_once_when_redeemers_race() {
    let (database, storage, _, client) = world("redeem");
    let code = hash_secret("ABCD-EFGH-JKMN");
    let now = Utc::now();
    storage.insert_enrollment_code(&code, &client, now, now + chrono::Duration::hours(1)).unwrap();
    let redeemers: Vec<_> = (0..6)
        .map(|i| {
            let storage = if i % 2 == 0 { Arc::clone(&storage) } else { database.open().unwrap() };
            std::thread::spawn(move || {
                let device = NewDevice {
                    id: katcore::record::new_id(),
                    label: format!("phone {i}"),
                    token_hash: hash_secret(&format!("token {i}")),
                };
                storage.redeem_enrollment_code(&code, &device, Utc::now()).unwrap()
            })
        })
        .collect();
    let redeemed: Vec<String> = redeemers.into_iter().filter_map(|r| r.join().unwrap()).collect();
    assert_eq!(redeemed, vec![client.clone()], "exactly one redeemer wins");
    assert_eq!(storage.devices(&client).unwrap().len(), 1);
}

#[test]
fn a_revocation_is_seen_through_every_storage_at_once() {
    let (database, storage, clinic_id, client) = world("revoke");
    let other = database.open().unwrap();
    let code = hash_secret("PQRS-TUVW-XYZ2");
    let now = Utc::now();
    storage.insert_enrollment_code(&code, &client, now, now + chrono::Duration::hours(1)).unwrap();
    let token = hash_secret("kd_device");
    let device = NewDevice { id: katcore::record::new_id(), label: "phone".into(), token_hash: token };
    storage.redeem_enrollment_code(&code, &device, now).unwrap().unwrap();
    assert!(other.device_by_token(&token).unwrap().unwrap().revoked_at.is_none());
    assert!(storage.revoke_device(&clinic_id, &device.id, now).unwrap());
    assert!(other.device_by_token(&token).unwrap().unwrap().revoked_at.is_some());
    assert!(!other.revoke_device("another clinic", &device.id, now).unwrap(), "only its own clinic revokes");
}

#[test]
fn failed_attempts_are_counted_across_storages_where_instances_share_the_database() {
    let (database, first, _, _) = world("failures");
    let second = database.open().unwrap();
    let address = [10, 0, 0, 7, 0, 0, 0, 0];
    let now = Utc::now();
    let counts: Vec<Option<u32>> =
        (0..5).map(|n| if n % 2 == 0 { &first } else { &second }.count_failure(&address, now).unwrap()).collect();
    if database.is_postgres() {
        assert_eq!(counts, vec![Some(1), Some(2), Some(3), Some(4), Some(5)]);
        // Another address, and the next minute, count from zero.
        assert_eq!(first.count_failure(&[10, 0, 0, 8, 0, 0, 0, 0], now).unwrap(), Some(1));
        assert_eq!(second.count_failure(&address, now + chrono::Duration::minutes(1)).unwrap(), Some(1));
    } else {
        // One process holds a SQLite database: its in-memory limiter counts alone.
        assert_eq!(counts, vec![None; 5]);
    }
}

#[test]
fn the_database_connection_speaks_verified_tls_where_the_server_offers_it() {
    let database = TestDatabase::new(&temp_dir("tls")).unwrap();
    let (Some(url), Some(ca)) = (database.url(), std::env::var_os(katcore_clinic::TEST_POSTGRES_CA_ENV)) else {
        println!("needs a PostgreSQL with TLS: KATCORE_TEST_POSTGRES and KATCORE_TEST_POSTGRES_CA (scripts/postgres-test.sh)");
        return;
    };
    let ca = std::path::PathBuf::from(ca);
    let require = format!("{url}&sslmode=require");
    let options = |ca_file: Option<std::path::PathBuf>| PgOptions { pool_size: 1, ca_file };
    // The cluster's own CA: connected, over TLS.
    let storage = PgStorage::connect(&require, &options(Some(ca.clone()))).unwrap();
    storage.ping().unwrap();
    let encrypted = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let (client, connection) =
            tokio_postgres::connect(&format!("{url}&sslmode=disable"), tokio_postgres::NoTls).await.unwrap();
        let driver = tokio::spawn(connection);
        let count: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
                 WHERE s.ssl AND a.datname = current_database() AND a.pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        drop(client);
        let _ = driver.await;
        count
    });
    assert!(encrypted >= 1, "the storage's connection is encrypted");
    drop(storage);
    // Another CA, or the public web's roots: the certificate is refused, so nothing connects.
    let stranger = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let other_ca = temp_dir("tls-other").join("other-ca.pem");
    std::fs::write(&other_ca, stranger.cert.pem()).unwrap();
    for wrong in [Some(other_ca), None] {
        let refused = PgStorage::connect(&require, &options(wrong.clone()));
        assert!(refused.is_err(), "connected with {wrong:?}");
    }
    // A file that holds no certificate is named as such.
    let empty = temp_dir("tls-empty").join("empty.pem");
    std::fs::write(&empty, "not a certificate").unwrap();
    let error = PgStorage::connect(&require, &options(Some(empty))).unwrap_err().to_string();
    assert!(error.contains("empty.pem"), "{error}");
}

#[test]
fn a_key_rotation_reseals_every_record_blob() {
    let (database, storage, _, client) = world("reseal");
    let dir = temp_dir("reseal-keys");
    let old = katcore_clinic::RecordKey::from_file(&database.config().record_key).unwrap();
    let new_key_file = dir.join("new.key");
    katcore_clinic::RecordKey::generate().write_new(&new_key_file).unwrap();
    let new = katcore_clinic::RecordKey::from_file(&new_key_file).unwrap();
    storage.append_record_change(&client, &update(b"sealed under the old key", 0, &[])).unwrap();
    storage.compact_record(&client, b"old snapshot", 1).unwrap();
    storage.append_record_change(&client, &update(b"also old", 1, &[])).unwrap();
    drop(storage);
    // Rotating: the new key writes, the old one still reads; resealing
    // rewrites both blobs, after which the new key alone reads everything.
    let resealed = match database.url() {
        Some(url) => {
            let options = database.config().pg_options();
            let rotating = PgStorage::connect_sealed(url, &options, &new, std::slice::from_ref(&old)).unwrap();
            assert_eq!(rotating.load_record(&client).unwrap().changes.len(), 1);
            rotating.reseal_records().unwrap()
        }
        None => {
            let path = database.sqlite_path();
            let rotating = katcore_clinic::SqliteStorage::open_sealed(&path, &new, std::slice::from_ref(&old)).unwrap();
            rotating.reseal_records().unwrap()
        }
    };
    assert_eq!(resealed, 2, "one change and one snapshot");
    let mut config = database.config();
    config.record_key = new_key_file;
    config.create_record_key = false;
    let rotated = katcore_clinic::open_storage(&config).unwrap();
    let stored = rotated.load_record(&client).unwrap();
    assert_eq!(stored.snapshot.as_deref(), Some(&b"old snapshot"[..]));
    assert_eq!(stored.changes, vec![(2, b"also old".to_vec())]);
}
