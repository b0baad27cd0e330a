//! `polku demo`: a temporary encrypted profile filled with 30 days of synthetic but physiologically
//! shaped data for a person with type 2 diabetes and hypertension: 5-minute CGM (meal peaks, dawn
//! rise, two nocturnal hypoglycaemias, a sensor change gap) imported through the CGM importer,
//! finger-stick readings, a week of home blood-pressure double measurements, weight, medication,
//! mood and symptoms. Then it prints what a nurse would look at.

use std::f64::consts::PI;
use std::fmt::Write as _;

use chrono::{DateTime, Duration, Timelike, Utc};
use chrono_tz::Tz;
use polku_core::diary::*;
use polku_core::pathway::Actor;
use polku_core::questionnaire::Lang;
use polku_core::{keys, DbKey, Error};
use serde_json::json;

use crate::args::DemoArgs;
use crate::output;

/// splitmix64: a tiny deterministic generator, so the same seed gives the same demo.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn gauss(&mut self) -> f64 {
        let (u1, u2) = (self.uniform().max(1e-12), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
    }
}

const DAYS: i64 = 30;
const HYPO_NIGHTS: [i64; 2] = [6, 19];

/// The glucose model: fasting level, dawn rise, meal responses peaking an hour after eating.
struct Model {
    rng: Rng,
    noise: f64,
    meal_scale: Vec<[f64; 4]>,
}

impl Model {
    fn new(seed: u64) -> Self {
        let mut rng = Rng(seed);
        let meal_scale = (0..=DAYS)
            .map(|_| {
                [
                    0.7 + 0.6 * rng.uniform(),
                    0.7 + 0.6 * rng.uniform(),
                    0.7 + 0.6 * rng.uniform(),
                    0.5 * rng.uniform(),
                ]
            })
            .collect();
        Model {
            rng,
            noise: 0.0,
            meal_scale,
        }
    }

    fn value(&mut self, day: i64, local_hours: f64) -> f64 {
        let meals = [(7.5, 3.0), (12.0, 3.4), (17.5, 4.2), (20.5, 2.0)];
        let mut g = 6.1 + 1.0 * (-((local_hours - 6.5) / 1.3).powi(2)).exp();
        for (i, (at, amp)) in meals.iter().enumerate() {
            let dt = local_hours - at;
            if dt > 0.0 {
                let mut a = amp * self.meal_scale[day as usize][i];
                if day == 11 && i == 2 {
                    a *= 2.4; // a festive dinner: above 13.9 for a while
                }
                g += a * dt * (1.0 - dt).exp();
            }
        }
        if HYPO_NIGHTS.contains(&day) {
            g -= 4.2 * (-((local_hours - 3.0) / 0.7).powi(2)).exp();
        }
        self.noise = 0.85 * self.noise + 0.22 * self.rng.gauss();
        (g + self.noise).clamp(2.2, 22.0)
    }
}

fn local_hours(t: DateTime<Utc>, tz: Tz) -> f64 {
    let l = t.with_timezone(&tz);
    l.hour() as f64 + l.minute() as f64 / 60.0
}

pub fn run(a: &DemoArgs, tz: Tz, json_out: bool) -> Result<(), Error> {
    let temp;
    let home = match &a.keep {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::tempdir().map_err(|e| Error::Io(e.to_string()))?;
            temp.path().to_owned()
        }
    };
    std::fs::create_dir_all(&home)?;
    let (db, salt) = crate::paths(&home);
    // A kept demo profile opens with the passphrase "demo"; a temporary one uses a random key.
    let key = match a.keep {
        Some(_) => keys::derive_from_passphrase("demo", &salt, true)?,
        None => DbKey::generate()?,
    };
    let p = crate::open_db(&db, &key, tz)?;

    let end = p.now() - Duration::minutes(5);
    let start_day = (end - Duration::days(DAYS)).with_timezone(&tz).date_naive();
    let start = polku_core::time::local_day_bounds(start_day, tz).0;
    let mut model = Model::new(a.seed);

    // 1. CGM through the importer, as a generic CSV export would arrive.
    let mut csv = String::from("timestamp,glucose_mmol_l\n");
    let mut t = start;
    let gap = (
        start + Duration::days(14) + Duration::hours(8),
        start + Duration::days(14) + Duration::hours(14),
    );
    while t < end {
        let day = (t - start).num_days();
        let v = model.value(day, local_hours(t, tz));
        if !(t >= gap.0 && t < gap.1) {
            let _ = writeln!(
                csv,
                "{},{v:.1}",
                polku_core::time::in_zone(t, tz).to_rfc3339()
            );
        }
        t += Duration::minutes(5);
    }
    let imported = p
        .import()
        .cgm(csv.as_bytes(), Some(polku_core::import::CgmFormat::Generic))?;

    // 2. Everything a person types in.
    let mut news = Vec::new();
    let at = |day: i64, h: u32, m: u32| {
        polku_core::time::in_zone(
            start + Duration::days(day) + Duration::hours(h.into()) + Duration::minutes(m.into()),
            tz,
        )
    };
    let mut rng = Rng(a.seed ^ 0xA5A5);
    for day in 0..DAYS {
        let fasting = model.value(day, 7.0) + 0.3 * rng.gauss();
        news.push(NewEntry::new(meter(fasting, MealContext::Fasting, None)).at(at(day, 7, 0)));
        let post = model.value(day, 19.5) + 0.3 * rng.gauss();
        news.push(NewEntry::new(meter(post, MealContext::AfterMeal, Some(2))).at(at(day, 19, 30)));
        for (h, m) in [(8, 0), (20, 0)] {
            news.push(
                NewEntry::new(EntryData::Medication {
                    name: "Metformin".into(),
                    dose: Some("500 mg".into()),
                })
                .at(at(day, h, m)),
            );
        }
        news.push(
            NewEntry::new(EntryData::Medication {
                name: "Ramipril".into(),
                dose: Some("5 mg".into()),
            })
            .at(at(day, 8, 1)),
        );
        news.push(
            NewEntry::new(EntryData::Mood {
                score: (3.0 + 1.6 * rng.uniform()).floor() as u8,
            })
            .at(at(day, 21, 30)),
        );
        if day % 7 == 2 {
            news.push(
                NewEntry::new(EntryData::Weight {
                    kg: ((92.4 - 0.25 * day as f64 / 7.0) * 10.0).round() / 10.0,
                })
                .at(at(day, 7, 5)),
            );
        }
        if day >= DAYS - 7 {
            // Käypä hoito home series: two readings 1–2 minutes apart, morning and evening.
            for (h, m, series, s0, d0) in [
                (7, 10, BpSeries::Morning, 139.0, 87.0),
                (7, 12, BpSeries::Morning, 136.0, 86.0),
                (21, 0, BpSeries::Evening, 134.0, 84.0),
                (21, 2, BpSeries::Evening, 132.0, 83.0),
            ] {
                let sys = (s0 + 5.0 * rng.gauss()).round() as u16;
                let dia = (d0 + 3.5 * rng.gauss()).round() as u16;
                let pulse = Some((66.0 + 4.0 * rng.gauss()).round() as u16);
                news.push(
                    NewEntry::new(EntryData::BloodPressure(BloodPressure {
                        systolic: sys,
                        diastolic: dia,
                        pulse,
                        arm: Some(Arm::Left),
                        series: Some(series),
                    }))
                    .at(at(day, h, m)),
                );
            }
        }
    }
    for night in HYPO_NIGHTS {
        news.push(
            NewEntry::new(EntryData::Symptom {
                code: SymptomCode::HypoglycaemiaSymptoms,
                severity: 6,
            })
            .at(at(night, 3, 20))
            .note("Heräsin hikisenä, join mehua"),
        );
    }
    news.push(
        NewEntry::new(EntryData::Symptom {
            code: SymptomCode::ShortnessOfBreath,
            severity: 3,
        })
        .at(at(DAYS - 4, 16, 40))
        .note("Portaissa kolmanteen kerrokseen"),
    );
    news.push(
        NewEntry::new(EntryData::Note)
            .at(at(DAYS - 2, 18, 0))
            .note("Kävelylenkki 40 min"),
    );
    let typo = NewEntry::new(EntryData::Weight { kg: 29.4 }).at(at(DAYS - 1, 7, 6));
    let double = NewEntry::new(meter(7.4, MealContext::Fasting, None)).at(at(DAYS - 1, 7, 1));
    news.push(typo);
    news.push(double);
    let added = p.diary().add_many(news)?;

    // 3. Corrections keep history: a mistyped weight is edited, a double entry deleted.
    let typo_id = added[added.len() - 2].id;
    p.diary().edit(
        typo_id,
        NewEntry::new(EntryData::Weight { kg: 92.4 }).note("korjattu näppäilyvirhe"),
    )?;
    p.diary()
        .delete(added[added.len() - 1].id, "kirjattu kahteen kertaan")?;
    let history = p.diary().history(typo_id)?;

    // 4. What the nurse looks at.
    let from14 = end - Duration::days(14);
    let glucose = p.analytics().glucose(from14, end)?;
    let bp = p.analytics().blood_pressure(end - Duration::days(8), end)?;
    let bundle = p.fhir().bundle(Some(end - Duration::days(7)), Some(end))?;
    let export = home.join("export-7d.fhir.json");
    std::fs::write(
        &export,
        serde_json::to_vec_pretty(&bundle).map_err(|e| Error::Io(e.to_string()))?,
    )?;
    let observations = bundle["entry"].as_array().map_or(0, Vec::len);

    // 5. A care pathway the citizen started herself: two steps read, the 7-day glucose profile
    // and the home blood-pressure series now open.
    let paths = p.pathways();
    let enrollment = paths.enroll("t2d-care-path", Actor::Citizen)?;
    for step in ["welcome", "t2d-basics"] {
        paths.complete(enrollment.id, step, Actor::Citizen)?;
    }
    let progress = paths.progress(enrollment.id)?;
    // The second night's sensor readings below 3.0 mmol/L raised urgent safety flags on the
    // phone (the first night is older than two weeks: history, not a same-day matter).
    let raised = p.safety().flags(false)?;
    let guidance = p.safety().guidance(&raised, Lang::En);

    // 6. Sync through an embedded server on loopback: the phone uploads, the nurse's device
    // downloads and sees the same figures and the pathway in her caseload; her reads are audited.
    let synced = sync_demo(p, &db, &key, &home, tz, from14, end, &glucose)?;

    let header = std::fs::read(&db)?
        .get(..16)
        .map(|h| h == b"SQLite format 3\0")
        .unwrap_or(false);

    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "profile": db, "kept": a.keep.is_some(), "encrypted_header": !header,
                "cgm_import": imported, "entries_typed": added.len(),
                "glucose_last_14_days": glucose, "blood_pressure_last_8_days": bp,
                "corrected_entry_history": history, "fhir_export": { "file": export, "observations": observations },
                "pathway": progress, "sync": synced,
                "safety": { "raised_on_phone": raised.len(), "rules": raised.iter().map(|f| f.rule.code()).collect::<std::collections::BTreeSet<_>>() },
            }))
            .map_err(|e| Error::Io(e.to_string()))?
        );
        return Ok(());
    }
    println!(
        "Polku demo — 30 days of synthetic self-care data (seed {}), time zone {tz}",
        a.seed
    );
    println!(
        "Profile: {} — encrypted with SQLCipher (file header {} \"SQLite format 3\")",
        db.display(),
        if header { "IS" } else { "is not" }
    );
    println!(
        "CGM import: {} readings added ({} duplicates), 5-minute sensor with a 6-hour gap at a sensor change",
        imported.added, imported.duplicates
    );
    println!("Typed entries: {} (finger-stick glucose, blood pressure, weight, medication, mood, symptoms, notes)", added.len());
    println!("\nCorrections keep history — entry {typo_id}:");
    for e in &history {
        println!(
            "  v{} {}",
            e.version,
            output::describe(&e.data, e.note.as_deref())
        );
    }
    println!("\n{}", output::glucose_text(&glucose));
    println!("\n{}", output::bp_text(&bp, end - Duration::days(8), end));
    println!(
        "\nFHIR: {observations} Kanta PHR Observations of the last 7 days written to {}",
        export.display()
    );
    println!("\nCare pathway (type 2 diabetes), started by the citizen:");
    crate::pathway::print_progress(&progress, tz, Lang::En);
    println!(
        "\nSync (embedded server on {}): the phone uploaded {} operations in {} requests; the nurse's device\n\
         downloaded {} and shows the same 14-day time in range ({:.1} %); audit log of the citizen: {}",
        synced.server, synced.uploaded, synced.upload_requests, synced.downloaded, synced.nurse_tir_percent, synced.audit.join("; ")
    );
    println!(
        "\nSafety: {} sensor readings below 3.0 mmol/L in the night of {} raised urgent flags on the phone; the citizen was told:",
        raised.len(),
        raised.iter().map(|f| f.at.format("%-d.%-m.").to_string()).next().unwrap_or_default()
    );
    for g in &guidance {
        println!("  {}", g.title);
        g.steps.iter().for_each(|s| println!("   - {s}"));
    }
    println!("The nurse's caseload on her device (urgent safety flags first):");
    crate::pathway::print_caseload(&synced.caseload, Lang::En);
    println!(
        "The nurse acknowledged {} flag(s) (\"{}\"); after the next sync the phone shows them acknowledged by {}.",
        synced.acknowledged,
        ACK_NOTE,
        synced.acknowledged_by
    );
    println!("\nMessages, end-to-end encrypted (Olm) through the same server:");
    for m in &synced.messages.conversation {
        let who = if m.sender_user == synced.messages.conversation[0].sender_user {
            "Aino"
        } else {
            "Nurse"
        };
        println!("  {who} [{}]: {}", m.state, m.body);
    }
    println!(
        "The server's database, opened with its key, holds the text of neither message ({} rows with it).",
        synced.messages.server_rows_with_text
    );
    let hc = &synced.home_care;
    println!(
        "\nHome care: the nurse's morning round, recorded without a connection and synced once: {} visits finished, {} client not at home.",
        hc.finished, hc.not_at_home
    );
    for (who, state) in &hc.visits {
        println!("  {who}: {}", state.replace('_', " "));
    }
    if let Some(bp) = &hc.blood_pressure_on_phone {
        println!("The blood pressure taken at Aino's visit ({bp}) is in her own diary on her phone, recorded by the nurse.");
    }
    match &a.keep {
        Some(dir) => println!("\nThe profile is kept: polku --home {} --passphrase-env VAR diary list   (with VAR=demo)", dir.display()),
        None => println!("\n(The demo profile was temporary and has been removed; use --keep DIR to keep it.)"),
    }
    Ok(())
}

fn meter(v: f64, context: MealContext, hours: Option<u8>) -> EntryData {
    EntryData::Glucose(Glucose {
        reading: GlucoseReading::Value {
            mmol_l: (v.clamp(0.6, 33.3) * 10.0).round() / 10.0,
        },
        unit: GlucoseUnit::MmolL,
        context,
        hours_after_meal: hours,
        source: GlucoseSource::Meter,
    })
}

const ACK_NOTE: &str = "Called Aino: medication reviewed with the doctor, re-check in 3 days";

#[derive(Debug, serde::Serialize)]
struct SyncDemo {
    server: String,
    uploaded: u64,
    upload_requests: u64,
    downloaded: u64,
    nurse_tir_percent: f64,
    audit: Vec<String>,
    caseload: Vec<polku_core::pathway::ClientSummary>,
    /// Safety flags the nurse acknowledged, and whom the phone shows as acknowledging them.
    acknowledged: usize,
    acknowledged_by: String,
    phone_open_flags_after: usize,
    messages: MessagesDemo,
    home_care: HomeCareDemo,
}

#[allow(clippy::too_many_arguments)]
fn sync_demo(
    p: polku_core::Polku,
    db: &std::path::Path,
    key: &DbKey,
    home: &std::path::Path,
    tz: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    citizen_view: &polku_core::analytics::GlucoseReport,
) -> Result<SyncDemo, Error> {
    use polku_server::{Role, SqliteStorage, Storage};
    let server_err = |e: polku_server::ApiError| Error::Storage(format!("demo server: {e}"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Io(e.to_string()))?;
    // The server's key beside its data folder, never in it (docs/operations.md).
    let server_key = polku_server::ServerKey::generate().map_err(server_err)?;
    server_key
        .write_new(&home.join("server.key"), &home.join("server"))
        .map_err(server_err)?;
    let storage = std::sync::Arc::new(
        SqliteStorage::init(&home.join("server"), &server_key).map_err(server_err)?,
    );
    let citizen = storage
        .create_user(Role::Citizen, "Aino (demo)")
        .map_err(server_err)?
        .id;
    let nurse = storage
        .create_user(Role::Professional, "Hoitaja (demo)")
        .map_err(server_err)?
        .id;
    storage.assign(&nurse, &citizen).map_err(server_err)?;
    let ttl = std::time::Duration::from_secs(600);
    let (phone_code, nurse_code) = (
        storage.invite(&citizen, ttl).map_err(server_err)?,
        storage.invite(&nurse, ttl).map_err(server_err)?,
    );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .map_err(|e| Error::Io(e.to_string()))?;
    let url = format!(
        "http://{}",
        listener
            .local_addr()
            .map_err(|e| Error::Io(e.to_string()))?
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served: std::sync::Arc<dyn Storage> = storage.clone();
    rt.spawn(polku_server::serve(listener, served, async {
        let _ = stopped.await;
    }));

    rt.block_on(p.sync().enroll(&url, &phone_code, Some("demo phone")))?;
    drop(p);
    let phone = crate::open_db(db, key, tz)?;
    let up = rt.block_on(phone.sync().sync(None))?;

    let nurse_key = DbKey::generate()?;
    let nurse_db = home.join("nurse-device.db");
    let device = crate::open_db(&nurse_db, &nurse_key, tz)?;
    rt.block_on(
        device
            .sync()
            .enroll(&url, &nurse_code, Some("nurse laptop")),
    )?;
    drop(device);
    let device = crate::open_db(&nurse_db, &nurse_key, tz)?;
    let down = rt.block_on(device.sync().sync(None))?;
    let seen = device
        .for_subject(&citizen)?
        .analytics()
        .glucose(from, to)?;
    let tir = |r: &polku_core::analytics::GlucoseReport| r.cgm.as_ref().map(|s| s.bands.in_range);
    if tir(&seen) != tir(citizen_view) {
        return Err(Error::Storage(
            "the nurse's device shows different figures".into(),
        ));
    }
    let rows = storage.audit(&citizen).map_err(server_err)?;
    let readers: std::collections::BTreeSet<String> = rows
        .iter()
        .filter(|a| a.action == "read")
        .map(|a| {
            format!(
                "{} {} (device {})",
                a.actor_role,
                a.actor_id,
                a.device_id.as_deref().unwrap_or("-")
            )
        })
        .collect();
    let audit = vec![format!(
        "{} read requests by {}",
        rows.iter().filter(|a| a.action == "read").count(),
        readers.into_iter().collect::<Vec<_>>().join(", ")
    )];
    let caseload = device.caseload()?;
    // The nurse handles the urgent flag: acknowledged with what was done, synced to the phone.
    let mut acknowledged = 0;
    let view = device.for_subject(&citizen)?;
    if let Some(latest) = caseload
        .first()
        .and_then(|c| c.safety_flags.iter().max_by_key(|f| f.at))
    {
        acknowledged = view.safety().acknowledge(latest.id, ACK_NOTE)?.len();
    }
    rt.block_on(device.sync().sync(None))?;
    rt.block_on(phone.sync().sync(None))?;
    let on_phone = phone.safety().flags(true)?;
    let acknowledged_by = on_phone
        .iter()
        .flat_map(|f| &f.acknowledgements)
        .map(|a| a.by.clone())
        .next()
        .unwrap_or_default();
    let phone_open_flags_after = on_phone.iter().filter(|f| f.is_open()).count();

    // 7. The citizen asks the nurse about the low night; the nurse answers. End-to-end
    // encrypted: the server relays ciphertext and its database holds no word of either.
    let asked = phone.messaging().send(&citizen, QUESTION)?;
    rt.block_on(phone.sync().sync(None))?;
    rt.block_on(device.sync().sync(None))?;
    device.messaging().mark_read(&citizen)?;
    device.messaging().send(&citizen, ANSWER)?;
    rt.block_on(device.sync().sync(None))?;
    rt.block_on(phone.sync().sync(None))?;
    let conversation = phone.messaging().messages(&citizen)?;
    let question_state = conversation
        .iter()
        .find(|m| m.id == asked.id)
        .map(|m| m.state.clone())
        .unwrap_or_default();
    let home_care = home_care_morning(&rt, &storage, &nurse, &citizen, &phone, &device, tz)?;
    let _ = stop.send(());
    let server_rows_with_text = rows_containing(
        &home.join("server").join("polku-server.db"),
        &home.join("server.key"),
        &[QUESTION, ANSWER],
    )?;
    // The same scan finds what the server does hold in the clear (the user's name): it reads.
    let server_rows_with_user_name = rows_containing(
        &home.join("server").join("polku-server.db"),
        &home.join("server.key"),
        &["Aino (demo)"],
    )?;
    Ok(SyncDemo {
        server: url,
        uploaded: up.pushed,
        upload_requests: up.requests,
        downloaded: down.pulled,
        nurse_tir_percent: tir(&seen).unwrap_or(f64::NAN),
        audit,
        caseload,
        acknowledged,
        acknowledged_by,
        phone_open_flags_after,
        messages: MessagesDemo {
            conversation,
            question_state,
            server_rows_with_text,
            server_rows_with_user_name,
        },
        home_care,
    })
}

/// A home-care visit plan the nurse gives Aino and four neighbours (docs/visits.md).
const MORNING_PLAN: &str = r#"{"visits": [{"slot": "morning", "name": "Morning visit", "days": ["daily"],
    "from": "07:00", "to": "10:00", "tasks": ["medication", "blood_pressure", "meal"]}]}"#;

#[derive(Debug, serde::Serialize)]
struct HomeCareDemo {
    /// Each client's morning visit as the nurse's device shows it after the round.
    visits: Vec<(String, String)>,
    finished: usize,
    not_at_home: usize,
    /// The blood pressure taken at Aino's visit, as her own phone shows it after sync.
    blood_pressure_on_phone: Option<String>,
    blood_pressure_author: Option<String>,
}

/// Step 8, a home-care worker's morning: a morning visit planned for Aino and four neighbours,
/// done without a connection (one neighbour is not at home), then one sync; the blood pressure
/// taken at Aino's visit is in her own diary on her phone.
fn home_care_morning(
    rt: &tokio::runtime::Runtime,
    storage: &polku_server::SqliteStorage,
    nurse: &str,
    citizen: &str,
    phone: &polku_core::Polku,
    device: &polku_core::Polku,
    tz: Tz,
) -> Result<HomeCareDemo, Error> {
    use polku_server::{Role, Storage};
    let server_err = |e: polku_server::ApiError| Error::Storage(format!("demo server: {e}"));
    let mut clients = vec![citizen.to_owned()];
    for i in 1..=4 {
        let id = storage
            .create_user(Role::Citizen, &format!("Client {i} (demo)"))
            .map_err(server_err)?
            .id;
        storage.assign(nurse, &id).map_err(server_err)?;
        clients.push(id);
    }
    let today = Utc::now().with_timezone(&tz).date_naive();
    for c in &clients {
        device
            .for_subject(c)?
            .visits()
            .set_plan(MORNING_PLAN, today)?;
    }
    // Out of coverage from here until the sync.
    let mut names = Vec::new();
    for v in device.visits_on(today)? {
        let client = device.for_visit(&v.id)?;
        let x = client.visits();
        let name = if v.subject == citizen {
            "Aino".to_owned()
        } else {
            format!(
                "Client {}",
                clients.iter().position(|c| *c == v.subject).unwrap_or(0)
            )
        };
        if name == "Client 3" {
            x.not_done(
                &v.id,
                "not_at_home",
                Some("No answer at the door; called her daughter."),
            )?;
        } else {
            x.arrive(&v.id)?;
            if v.subject == citizen {
                x.measure(
                    &v.id,
                    NewEntry::new(EntryData::BloodPressure(BloodPressure {
                        systolic: 142,
                        diastolic: 88,
                        pulse: Some(72),
                        arm: None,
                        series: None,
                    })),
                )?;
            }
            for t in &v.tasks {
                x.task(&v.id, &t.code, "done", None)?;
            }
            x.finish(&v.id)?;
        }
        names.push((v.subject.clone(), name));
    }
    rt.block_on(device.sync().sync(None))?;
    rt.block_on(phone.sync().sync(None))?;
    let after = device.visits_on(today)?;
    let bp = phone
        .diary()
        .list_all(EntryQuery {
            kinds: vec![EntryKind::BloodPressure],
            ..Default::default()
        })?
        .into_iter()
        .filter(|e| e.author == nurse)
        .max_by_key(|e| e.at);
    let mut visits: Vec<(String, String)> = after
        .iter()
        .map(|v| {
            let name = names
                .iter()
                .find(|(s, _)| *s == v.subject)
                .map_or_else(|| v.subject.clone(), |(_, n)| n.clone());
            (name, v.state.clone())
        })
        .collect();
    visits.sort();
    Ok(HomeCareDemo {
        visits,
        finished: after.iter().filter(|v| v.state == "finished").count(),
        not_at_home: after
            .iter()
            .filter(|v| v.not_done_reason.as_deref() == Some("not_at_home"))
            .count(),
        blood_pressure_on_phone: bp.as_ref().and_then(|e| match &e.data {
            EntryData::BloodPressure(b) => Some(format!("{}/{} mmHg", b.systolic, b.diastolic)),
            _ => None,
        }),
        blood_pressure_author: bp.map(|e| e.author),
    })
}

const QUESTION: &str = "My sensor showed under 3 for two hours last night and 3.1 this morning. Should I change my evening insulin?";
const ANSWER: &str = "Thank you for telling me. Keep 15-20 g of fast sugar by your bed, and do not change the dose yourself: I booked you a call with the doctor tomorrow at 10.";

#[derive(Debug, serde::Serialize)]
struct MessagesDemo {
    /// The conversation as the phone shows it at the end.
    conversation: Vec<polku_core::messaging::Message>,
    /// The citizen's question: `read` once the nurse's read receipt came back.
    question_state: String,
    /// Rows of any table of the server's database holding either text (the demo expects none).
    server_rows_with_text: usize,
    /// The same scan for the citizen's name, which the server keeps: proves the scan reads.
    server_rows_with_user_name: usize,
}

/// Opens the server's database as its operator could (with its key) and counts the rows of any
/// table holding one of `texts` in any column.
fn rows_containing(
    db: &std::path::Path,
    key_file: &std::path::Path,
    texts: &[&str],
) -> Result<usize, Error> {
    let sql = |e: rusqlite::Error| Error::Storage(format!("demo server database: {e}"));
    let hex = std::fs::read_to_string(key_file)?;
    let c = rusqlite::Connection::open(db).map_err(sql)?;
    c.execute_batch(&format!("PRAGMA key = \"x'{}'\";", hex.trim()))
        .map_err(sql)?;
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .map_err(sql)?
        .query_map([], |r| r.get(0))
        .map_err(sql)?
        .collect::<Result<_, _>>()
        .map_err(sql)?;
    let mut found = 0;
    for t in tables {
        let mut stmt = c.prepare(&format!("SELECT * FROM \"{t}\"")).map_err(sql)?;
        let n = stmt.column_count();
        let mut rows = stmt.query([]).map_err(sql)?;
        while let Some(row) = rows.next().map_err(sql)? {
            let hit = (0..n).any(|i| {
                let bytes: &[u8] = match row.get_ref(i) {
                    Ok(rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b)) => {
                        b
                    }
                    _ => return false,
                };
                texts
                    .iter()
                    .any(|t| bytes.windows(t.len()).any(|w| w == t.as_bytes()))
            });
            found += hit as usize;
        }
    }
    Ok(found)
}
