//! A record kind added through the registry alone (no edit to sync, purge or requeue) travels
//! between two devices through a real server on loopback, is kept by a device that does not
//! know it, and goes with its subject when a worker's access ends (docs/architecture.md,
//! "Adding a record kind").

use polku_core::store::kind::{RecordKind, Table};
use polku_core::{OpenOptions, Polku};
use polku_e2e::{key, CareTeam, Device};
use polku_protocol::op::{opt, req, KindSpec, Ty};
use polku_server::{Role, Storage};

/// A throw-away kind: a visit's free-text remark.
static REMARK_SPEC: KindSpec = KindSpec {
    name: "test.remark",
    schema_version: 1,
    id_field: "id",
    fields: &[
        req("id", Ty::Id),
        opt("text", Ty::Text(500)),
        req("author", Ty::Text(100)),
        req("created_ms", Ty::Time),
    ],
    care_team_only: false,
    belongs_to: None,
    check: None,
};

static REMARKS: Table = Table::new(
    &REMARK_SPEC,
    "test_remark",
    true,
    "id, subject_no, printf('%016x-0000-requeue', created_ms) FROM test_remark WHERE author = ?1 ORDER BY created_ms",
    "DELETE FROM test_remark WHERE subject_no = ?1 AND id NOT IN (SELECT id FROM temp.keep)",
);

const TABLE: &str = "CREATE TABLE IF NOT EXISTS test_remark (
    id TEXT PRIMARY KEY, subject_no INTEGER NOT NULL, text TEXT NOT NULL, author TEXT NOT NULL,
    created_ms INTEGER NOT NULL)";

/// Reopens `d` with the throw-away kind registered and its table created.
fn with_remarks(d: &mut Device) {
    d.polku = Polku::open_with(
        &d.path(),
        &key(),
        OpenOptions {
            record_kinds: vec![&REMARKS as &dyn RecordKind],
            ..Default::default()
        },
    )
    .unwrap();
    d.polku
        .store()
        .write(|tx| Ok(tx.execute_batch(TABLE)?))
        .unwrap();
}

fn remarks(p: &Polku) -> Vec<(String, String, String)> {
    p.store()
        .read(|c| {
            let mut stmt = c.prepare(
                "SELECT r.id, s.id, r.text FROM test_remark r JOIN subject s ON s.no = r.subject_no ORDER BY r.id",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .unwrap()
}

#[test]
fn a_kind_registered_alone_syncs_between_two_devices() {
    let mut team = CareTeam::new(Role::Professional);
    with_remarks(&mut team.phone);
    with_remarks(&mut team.worker_device);

    let id = uuid::Uuid::now_v7().to_string();
    let phone = &team.phone.polku;
    phone
        .store()
        .write(|tx| {
            tx.execute(
                "INSERT INTO test_remark (id, subject_no, text, author, created_ms)
                 VALUES (?1, (SELECT no FROM subject WHERE id = ?2), 'door code changed', ?3, 1)",
                [&id, &team.citizen, &team.citizen],
            )?;
            phone.queue(tx, "test.remark", &id)
        })
        .unwrap();
    assert_eq!(phone.sync().status().unwrap().pending, 1);
    let pushed = team.phone.sync().unwrap();
    assert_eq!((pushed.pushed, pushed.quarantined), (1, 0));

    let pulled = team.worker_device.sync().unwrap();
    assert_eq!((pulled.pulled, pulled.held), (1, 0));
    let want = vec![(
        id.clone(),
        team.citizen.clone(),
        "door code changed".to_owned(),
    )];
    assert_eq!(remarks(&team.worker_device.polku), want);

    // A device whose app does not know the kind keeps the record aside, never drops it.
    let other = team.server.user(Role::Professional, "Sijainen");
    team.server.storage.assign(&other, &team.citizen).unwrap();
    let stranger = Device::enrolled(&team.server.url(), &team.server.code(&other));
    let r = stranger.sync().unwrap();
    assert_eq!(r.held, 1);
    assert_eq!(stranger.polku.sync().status().unwrap().held, 1);

    // When the worker's access ends, the kind's rows go with the subject (purge via the registry).
    team.server
        .storage
        .unassign(&team.worker, &team.citizen)
        .unwrap();
    let r = team.worker_device.sync().unwrap();
    assert_eq!(r.removed_subjects, vec![team.citizen.clone()]);
    assert!(remarks(&team.worker_device.polku).is_empty());
    assert_eq!(remarks(&team.phone.polku), want);
}

#[test]
fn queueing_an_unregistered_kind_is_refused_with_the_field() {
    let d = Device::new();
    let e = d
        .polku
        .store()
        .write(|tx| d.polku.queue(tx, "test.remark", "x"))
        .unwrap_err();
    assert!(
        matches!(&e, polku_core::Error::Validation { field, .. } if field == "kind"),
        "{e}"
    );
}
