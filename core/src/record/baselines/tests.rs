//! The baseline memo agrees with a full scan after every way a record
//! changes, and a change's derivation does not rescan the history.

use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ReadDoc, ROOT};
use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;

use super::SCANS;
use crate::pack::{InstrumentKind, Pack};
use crate::record::{score_baseline_among, CareRecord, CheckInInput};

fn replica(name: &str) -> CareRecord {
    CareRecord::new(ActorId::from(name.as_bytes()))
}

fn day(n: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T09:00:00Z").unwrap().with_timezone(&Utc) + Duration::days(n)
}

fn phq9(r: &mut CareRecord, total_ones: usize, at: DateTime<Utc>) -> String {
    let answers = (0..9).map(|i| u8::from(i < total_ones && i != 8)).collect();
    r.add_check_in(CheckInInput::Instrument(InstrumentKind::Phq9, answers), at).unwrap().id
}

/// What a scan of every check-in says, for both questionnaires.
fn scanned(r: &CareRecord) -> [Option<(String, u8)>; 2] {
    let all = r.check_ins();
    [InstrumentKind::Phq9, InstrumentKind::Gad7].map(|kind| score_baseline_among(&all, kind).map(|b| (b.id, b.total)))
}

fn memo(r: &CareRecord) -> [Option<(String, u8)>; 2] {
    [InstrumentKind::Phq9, InstrumentKind::Gad7].map(|kind| r.score_baseline(kind).map(|b| (b.id, b.total)))
}

/// Sends `from`'s changes that `to` lacks as the server receives them.
fn sync(from: &CareRecord, to: &mut CareRecord) {
    let changes = to.new_changes(&from.save_after(&to.heads())).unwrap();
    to.apply_changes(changes).unwrap();
}

#[derive(Clone, Debug)]
enum Step {
    /// A check-in on the phone (true) or the tablet, `day` days in, PHQ-9 or GAD-7.
    CheckIn { phone: bool, day: i64, gad7: bool, level: usize },
    /// The phone's changes reach the server one change set at a time.
    PhoneToServer,
    /// The tablet's changes reach the server.
    TabletToServer,
    /// The server's document reaches the tablet as bytes.
    ServerToTablet,
    /// The phone merges the tablet in memory.
    PhoneMergesTablet,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (any::<bool>(), -30i64..30, any::<bool>(), 0usize..7)
            .prop_map(|(phone, day, gad7, level)| Step::CheckIn { phone, day, gad7, level }),
        1 => Just(Step::PhoneToServer),
        1 => Just(Step::TabletToServer),
        1 => Just(Step::ServerToTablet),
        1 => Just(Step::PhoneMergesTablet),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn the_memo_agrees_with_a_full_scan_after_every_kind_of_change(steps in prop::collection::vec(step(), 1..24)) {
        let (mut phone, mut tablet, mut server) = (replica("phone"), replica("tablet"), replica("server"));
        for (n, step) in steps.iter().enumerate() {
            // Read first, as a device or the server would, so the memo exists
            // and has to be carried through the step.
            for r in [&phone, &tablet, &server] {
                memo(r);
            }
            match step {
                Step::CheckIn { phone: on_phone, day: d, gad7, level } => {
                    let r = if *on_phone { &mut phone } else { &mut tablet };
                    let kind = if *gad7 { InstrumentKind::Gad7 } else { InstrumentKind::Phq9 };
                    let size = if *gad7 { 7 } else { 9 };
                    let answers = (0..size).map(|i| u8::from(i < *level && i != 8)).collect();
                    r.add_check_in(CheckInInput::Instrument(kind, answers), day(*d) + Duration::seconds(n as i64)).unwrap();
                }
                Step::PhoneToServer => sync(&phone, &mut server),
                Step::TabletToServer => sync(&tablet, &mut server),
                Step::ServerToTablet => tablet.merge_bytes(&server.save()).unwrap(),
                Step::PhoneMergesTablet => phone.merge(&tablet).unwrap(),
            }
            for r in [&phone, &tablet, &server] {
                prop_assert_eq!(memo(r), scanned(r), "after step {} ({:?})", n, step);
            }
        }
    }
}

#[test]
fn a_rewritten_baseline_is_recomputed_not_kept() {
    let mut server = replica("server");
    let first = phq9(&mut server, 6, day(0));
    let second = phq9(&mut server, 2, day(3));
    assert_eq!(memo(&server)[0], Some((first.clone(), 6)));
    // A non-conforming writer overwrites the first check-in's key with a
    // value dated after the second: the second is now the first check-in.
    let mut writer = Automerge::load(&server.save()).unwrap().with_actor(ActorId::from(b"hostile".as_slice()));
    let mut tx = writer.transaction();
    let moved = r#"{"completed_at":"2026-02-01T09:00:00Z","kind":"instrument","instrument":"phq9","answers":[1,1,1,1,1,1,0,0,0],"total":6,"band":"mild","urgent":false}"#;
    let bucket = tx.get(ROOT, format!("c/{}", &first[..2])).unwrap().unwrap().1;
    tx.put(&bucket, first.as_str(), moved).unwrap();
    tx.commit();
    let changes = server.new_changes(&writer.save_after(&server.heads())).unwrap();
    server.apply_changes(changes).unwrap();
    assert_eq!(memo(&server)[0], Some((second, 2)));
    assert_eq!(memo(&server), scanned(&server));
}

#[test]
fn a_one_check_in_sync_derives_its_alerts_without_rescanning_the_history() {
    let pack = Pack::default_pack();
    let mut phone = replica("phone");
    let baseline = phq9(&mut phone, 2, day(-400));
    for n in 0..300 {
        phq9(&mut phone, 3, day(-300 + n));
    }
    let mut server = CareRecord::load(&phone.save(), ActorId::from(b"server".as_slice())).unwrap();
    // The first derivation scans once; the syncs after it fold their change in.
    assert!(server.urgent_items_with(&pack).is_empty());
    let scans = SCANS.with(std::cell::Cell::get);
    for n in 0..10 {
        let before = phone.heads();
        // Item 9 stays at 0: a total of 8 is 6 over the baseline of 2.
        let id = phq9(&mut phone, 8, day(n));
        let changes = server.new_changes(&phone.save_after(&before)).unwrap();
        server.apply_changes(changes.clone()).unwrap();
        let touched = crate::record::touched_entries(server.document(), &changes);
        let items = server.urgent_items_among(&pack, &touched);
        assert_eq!(items.len(), 1, "the rise over the first check-in ({baseline}) is found");
        assert_eq!(items[0].key, format!("c:{id}"));
    }
    assert_eq!(SCANS.with(std::cell::Cell::get), scans, "no sync scanned every check-in again");
}

#[cfg(feature = "clinic")]
#[test]
fn at_the_clinic_the_check_in_received_first_stays_the_baseline() {
    use std::collections::HashMap;
    let received = |n: i64| day(1000) + Duration::minutes(n);
    let mut phone = replica("phone");
    let mut server = replica("server");
    // Stored before receipts were kept: they come first, by their own times.
    let later = phq9(&mut phone, 3, day(5));
    let first = phq9(&mut phone, 4, day(2));
    sync(&phone, &mut server);
    server.order_baselines_by_receipt(HashMap::new());
    assert_eq!(server.score_baseline(InstrumentKind::Phq9).map(|b| b.id), Some(first.clone()));
    assert_ne!(later, first);

    // Backdated far before both, received now: it never takes over, neither
    // while in flight, nor once noted, nor after a full rescan.
    let backdated = phq9(&mut phone, 6, day(-400));
    sync(&phone, &mut server);
    assert_eq!(server.score_baseline(InstrumentKind::Phq9).map(|b| b.id), Some(first.clone()));
    server.note_received([backdated.as_str()], received(1));
    assert_eq!(server.score_baseline(InstrumentKind::Phq9).map(|b| b.id), Some(first.clone()));
    let mut reloaded = replica("server-2");
    reloaded.merge(&server).unwrap();
    reloaded.order_baselines_by_receipt(HashMap::from([(backdated.clone(), received(1))]));
    assert_eq!(reloaded.score_baseline(InstrumentKind::Phq9).map(|b| b.id), Some(first));

    // A device orders by the check-ins' own times: there the backdated one is first.
    assert_eq!(phone.score_baseline(InstrumentKind::Phq9).map(|b| b.id), Some(backdated));
}

#[cfg(feature = "clinic")]
#[test]
fn at_the_clinic_check_ins_received_together_are_ordered_by_their_own_times() {
    let mut phone = replica("phone");
    let mut server = replica("server");
    server.order_baselines_by_receipt(std::collections::HashMap::new());
    phq9(&mut phone, 3, day(5));
    let earlier = phq9(&mut phone, 4, day(2));
    sync(&phone, &mut server);
    assert_eq!(server.score_baseline(InstrumentKind::Phq9).map(|b| b.id), Some(earlier));
}

#[cfg(feature = "clinic")]
#[test]
fn the_receipts_held_for_ordering_are_counted_in_memory() {
    let mut server = replica("server");
    assert_eq!(server.receipts_memory(), 0, "a record not ordered by receipt holds none");
    for n in 0..100 {
        phq9(&mut server, 2, day(n));
    }
    server.order_baselines_by_receipt(std::collections::HashMap::new());
    assert!(server.receipts_memory() >= 100 * (32 + std::mem::size_of::<String>()), "{}", server.receipts_memory());
}
