//! Attachments of end-to-end encrypted messages (issue 10) through a real `polku-server` on
//! loopback: a sealed blob reaches every device of every member, is opened only unaltered, and
//! leaves the server when every recipient device has it; the server's limits and access rules
//! answer with typed errors.

use base64::Engine;
use polku_core::Error;
use polku_e2e::api::Api;
use polku_e2e::{block_on, CareTeam, Device};
use polku_server::{AttachmentRules, Limits, Role, Storage};

/// (attachment id, recipients still waiting) on the server.
fn stored(team: &CareTeam) -> Vec<(String, i64)> {
    let c = team.server.db();
    let mut stmt = c
        .prepare(
            "SELECT a.id, (SELECT count(*) FROM attachment_recipient r WHERE r.attachment_id = a.id AND r.fetched_ms IS NULL)
             FROM attachment a ORDER BY a.uploaded_ms",
        )
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    rows
}

const CANARY: &str = "KANARIA-haava-7731";

/// A "photo" with a canary in it, raw, in base64 and in hex.
fn photo() -> Vec<u8> {
    let mut f = Vec::new();
    for i in 0..3000u32 {
        f.extend_from_slice(&i.to_le_bytes());
    }
    f.extend_from_slice(CANARY.as_bytes());
    f.extend_from_slice(
        base64::engine::general_purpose::STANDARD
            .encode(CANARY)
            .as_bytes(),
    );
    f.extend_from_slice(hex(CANARY.as_bytes()).as_bytes());
    f
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn attachment_of(d: &Device, conversation: &str) -> polku_core::messaging::Attachment {
    d.polku
        .messaging()
        .messages(conversation)
        .unwrap()
        .into_iter()
        .rev()
        .find_map(|m| m.attachment)
        .expect("a message with an attachment")
}

#[test]
fn an_attachment_reaches_every_device_opens_unaltered_and_leaves_the_server_when_all_have_it() {
    let team = CareTeam::new(Role::Professional);
    let tablet = Device::enrolled(&team.server.url(), &team.server.code(&team.citizen));
    for d in [&team.phone, &tablet, &team.worker_device] {
        d.sync().unwrap();
    }
    let conv = team.citizen.clone();
    let file = photo();
    // Written offline: queued with the file kept on the phone.
    let sent = team
        .phone
        .polku
        .messaging()
        .attach(&conv, "haava.jpg", None, &file)
        .unwrap();
    let a = sent.attachment.clone().unwrap();
    assert_eq!(
        (a.mime.as_str(), a.size, a.on_device),
        ("image/jpeg", file.len() as u64, true)
    );
    assert_eq!(sent.state, "queued");
    assert!(stored(&team).is_empty());
    team.phone.sync().unwrap();
    assert_eq!(
        team.phone.polku.messaging().messages(&conv).unwrap()[0].state,
        "sent"
    );
    // On the server: one sealed blob waiting for the tablet and the nurse's device, holding no
    // trace of the file; nor does anything else of the server's database.
    assert_eq!(stored(&team), vec![(a.id.clone(), 2)]);
    let c = team.server.db();
    let blob: Vec<u8> = c
        .query_row("SELECT blob FROM attachment", [], |r| r.get(0))
        .unwrap();
    assert_eq!(blob.len() % polku_protocol::attachment::PAD_UNIT, 16);
    for needle in [
        CANARY.to_owned(),
        base64::engine::general_purpose::STANDARD.encode(CANARY),
        hex(CANARY.as_bytes()),
        "haava.jpg".to_owned(),
    ] {
        assert!(!contains(&blob, needle.as_bytes()), "{needle} in the blob");
        let n: i64 = c
            .query_row(
                "SELECT count(*) FROM relay WHERE instr(ciphertext, ?1) > 0",
                [&needle],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 0, "{needle} in the relay");
    }
    // The nurse's device gets the message, fetches and opens the file.
    team.worker_device.sync().unwrap();
    let seen = attachment_of(&team.worker_device, &conv);
    assert_eq!(
        (seen.id.as_str(), seen.name.as_str(), seen.on_device),
        (a.id.as_str(), "haava.jpg", false)
    );
    let got = block_on(team.worker_device.polku.messaging().fetch_attachment(&a.id)).unwrap();
    assert_eq!(got, file);
    assert!(attachment_of(&team.worker_device, &conv).on_device);
    assert_eq!(
        stored(&team),
        vec![(a.id.clone(), 1)],
        "the tablet has not fetched it"
    );
    // The tablet fetches it too: the blob leaves the server; the devices keep the file.
    tablet.sync().unwrap();
    let got = block_on(tablet.polku.messaging().fetch_attachment(&a.id)).unwrap();
    assert_eq!(got, file);
    assert!(stored(&team).is_empty());
    for d in [&tablet, &team.worker_device, &team.phone] {
        assert_eq!(
            block_on(d.polku.messaging().fetch_attachment(&a.id)).unwrap(),
            file
        );
    }
}

#[test]
fn an_altered_blob_is_refused_and_nothing_of_it_is_kept() {
    let team = CareTeam::new(Role::Professional);
    for d in [&team.phone, &team.worker_device] {
        d.sync().unwrap();
    }
    let conv = team.citizen.clone();
    let file = photo();
    let a = team
        .worker_device
        .polku
        .messaging()
        .attach(&conv, "labra.pdf", None, &file)
        .unwrap()
        .attachment
        .unwrap();
    team.worker_device.sync().unwrap();
    team.phone.sync().unwrap();
    let c = team.server.db();
    let blob: Vec<u8> = c
        .query_row("SELECT blob FROM attachment", [], |r| r.get(0))
        .unwrap();
    // A server (or someone with its database) alters one byte, then swaps in another blob.
    for bad in [
        {
            let mut b = blob.clone();
            let mid = b.len() / 2;
            b[mid] ^= 0x40;
            b
        },
        vec![0u8; blob.len()],
    ] {
        c.execute("UPDATE attachment SET blob = ?1", [&bad])
            .unwrap();
        let e = block_on(team.phone.polku.messaging().fetch_attachment(&a.id)).unwrap_err();
        assert!(matches!(e, Error::Crypto(_)), "{e}");
        assert_eq!(e.code(), "crypto");
        assert!(!attachment_of(&team.phone, &conv).on_device);
    }
    c.execute("UPDATE attachment SET blob = ?1", [&blob])
        .unwrap();
    assert_eq!(
        block_on(team.phone.polku.messaging().fetch_attachment(&a.id)).unwrap(),
        file
    );
}

#[test]
fn the_server_keeps_attachments_within_its_limits_and_only_for_their_recipients() {
    let limits = Limits {
        attachments: AttachmentRules {
            max_bytes: 40_000,
            ..AttachmentRules::default()
        },
        ..Limits::default()
    };
    let team = CareTeam::with_limits(Role::Professional, limits);
    let stranger = team.server.user(Role::Citizen, "Vieras");
    let outsider = Device::enrolled(&team.server.url(), &team.server.code(&stranger));
    for d in [&team.phone, &team.worker_device, &outsider] {
        d.sync().unwrap();
    }
    let conv = team.citizen.clone();
    let m = team.phone.polku.messaging();
    // Over this server's limit: refused for good at upload, shown undeliverable, not retried.
    let big = m
        .attach(&conv, "iso.pdf", None, &vec![1u8; 60_000])
        .unwrap();
    let small = m.attach(&conv, "pieni.pdf", None, &photo()).unwrap();
    team.phone.sync().unwrap();
    let states: Vec<(String, String)> = m
        .messages(&conv)
        .unwrap()
        .into_iter()
        .map(|x| (x.id, x.state))
        .collect();
    assert_eq!(
        states,
        vec![
            (big.id.clone(), "undeliverable".into()),
            (small.id.clone(), "sent".into())
        ]
    );
    team.phone.sync().unwrap();
    team.worker_device.sync().unwrap();
    let bodies: Vec<String> = team
        .worker_device
        .polku
        .messaging()
        .messages(&conv)
        .unwrap()
        .into_iter()
        .map(|x| x.body)
        .collect();
    assert_eq!(bodies, ["pieni.pdf"]);
    // The typed refusals, as a device speaking HTTP directly meets them.
    let api = Api::new(&team.server);
    let token = team.phone.token();
    let put = |id: &str, q: &str, n: usize| {
        api.call(
            "PUT",
            &format!("/v1/attachments/{id}{q}"),
            Some(&token),
            Some(vec![0u8; n]),
        )
    };
    let id = uuid::Uuid::new_v4().to_string();
    let q = format!("?conversation={conv}");
    let unit = polku_protocol::attachment::PAD_UNIT;
    let (s, v) = put(&id, &q, 4 * unit + 16);
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (413, Some("body_too_large")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 40000 bytes"),
        "{v}"
    );
    let (s, v) = put(&id, &q, unit + 17);
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_attachment")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("16384-byte units"),
        "{v}"
    );
    let (s, v) = put("not-a-uuid", &q, unit + 16);
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_id")),
        "{v}"
    );
    let (s, v) = put(&id, "", unit + 16);
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_conversation")),
        "{v}"
    );
    // Uploading to another citizen's conversation is forbidden.
    let (s, _) = put(&id, &format!("?conversation={stranger}"), unit + 16);
    assert_eq!(s, 403);
    // A retry of the same blob is harmless; another blob under a taken id is a conflict.
    let (s, v) = put(&id, &q, unit + 16);
    assert_eq!((s, v["recipients"].as_u64()), (200, Some(1)), "{v}");
    let (s, _) = put(&id, &q, unit + 16);
    assert_eq!(s, 200);
    let (s, v) = api.call(
        "PUT",
        &format!("/v1/attachments/{id}{q}"),
        Some(&token),
        Some(vec![1u8; unit + 16]),
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("attachment_id_taken")),
        "{v}"
    );
    // Someone outside the conversation is told there is no such attachment.
    let (s, _) = api.call(
        "GET",
        &format!("/v1/attachments/{id}"),
        Some(&outsider.token()),
        None,
    );
    assert_eq!(s, 404);
    let (s, _) = api.call(
        "POST",
        &format!("/v1/attachments/{id}/fetched"),
        Some(&outsider.token()),
        Some(b"{}".to_vec()),
    );
    assert_eq!(s, 404);
    // The nurse's assignment ends: her device can no longer fetch, and the blobs stop waiting for
    // it (nobody else was waiting, so they are gone).
    assert_eq!(stored(&team).len(), 2);
    team.server
        .storage
        .unassign(&team.worker, &team.citizen)
        .unwrap();
    assert!(stored(&team).is_empty());
    let (s, _) = api.call(
        "GET",
        &format!("/v1/attachments/{id}"),
        Some(&team.worker_device.token()),
        None,
    );
    assert_eq!(s, 404);
}

#[test]
fn an_unfetched_blob_is_deleted_after_the_retention_period() {
    let limits = Limits {
        attachments: AttachmentRules {
            retention: std::time::Duration::from_millis(1),
            ..AttachmentRules::default()
        },
        ..Limits::default()
    };
    let team = CareTeam::with_limits(Role::Professional, limits);
    for d in [&team.phone, &team.worker_device] {
        d.sync().unwrap();
    }
    let conv = team.citizen.clone();
    let a = team
        .phone
        .polku
        .messaging()
        .attach(&conv, "haava.jpg", None, &photo())
        .unwrap()
        .attachment
        .unwrap();
    team.phone.sync().unwrap();
    assert_eq!(stored(&team).len(), 1);
    std::thread::sleep(std::time::Duration::from_millis(20));
    team.worker_device.sync().unwrap();
    let e = block_on(team.worker_device.polku.messaging().fetch_attachment(&a.id)).unwrap_err();
    assert!(matches!(&e, Error::Server { status: 404, .. }), "{e}");
    assert!(stored(&team).is_empty());
    // The sender still has the file.
    assert_eq!(
        block_on(team.phone.polku.messaging().fetch_attachment(&a.id)).unwrap(),
        photo()
    );
}
