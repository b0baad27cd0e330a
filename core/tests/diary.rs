mod common;

use chrono::{Duration, TimeZone, Utc};
use common::*;
use polku_core::diary::*;
use polku_core::Error;

fn one_of_each() -> Vec<NewEntry> {
    let at = hki(2026, 11, 23, 8, 0);
    vec![
        NewEntry::new(EntryData::Glucose(Glucose {
            reading: GlucoseReading::Value { mmol_l: 6.2 },
            unit: GlucoseUnit::MmolL,
            context: MealContext::AfterMeal,
            hours_after_meal: Some(2),
            source: GlucoseSource::Meter,
        }))
        .at(at),
        NewEntry::new(EntryData::BloodPressure(BloodPressure {
            systolic: 128,
            diastolic: 82,
            pulse: Some(66),
            arm: Some(Arm::Left),
            series: Some(BpSeries::Morning),
        }))
        .at(at + Duration::minutes(1)),
        NewEntry::new(EntryData::Weight { kg: 82.4 }).at(at + Duration::minutes(2)),
        NewEntry::new(EntryData::HeartRate { bpm: 64 }).at(at + Duration::minutes(3)),
        NewEntry::new(EntryData::Temperature { celsius: 36.8 }).at(at + Duration::minutes(4)),
        NewEntry::new(EntryData::Symptom {
            code: SymptomCode::ShortnessOfBreath,
            severity: 3,
        })
        .at(at + Duration::minutes(5))
        .note("portaissa"),
        NewEntry::new(EntryData::Medication {
            name: "Metformin".into(),
            dose: Some("500 mg".into()),
        })
        .at(at + Duration::minutes(6)),
        NewEntry::new(EntryData::Mood { score: 4 }).at(at + Duration::minutes(7)),
        NewEntry::new(EntryData::Note)
            .at(at + Duration::minutes(8))
            .note("Kävelylenkki 30 min"),
    ]
}

#[test]
fn every_kind_round_trips() {
    let p = profile();
    let d = p.polku.diary();
    let added = d.add_many(one_of_each()).unwrap();
    assert_eq!(added.len(), 9);
    for e in &added {
        let back = d.get(e.id).unwrap();
        assert_eq!(&back, e, "{:?} reads back as written", e.kind());
        assert_eq!(back.version, 1);
        assert_eq!(back.subject, p.polku.subject_id());
        assert_eq!(
            back.at.offset().local_minus_utc(),
            2 * 3600,
            "the wall-clock offset is kept"
        );
    }
    let page = d.list(&EntryQuery::default()).unwrap();
    let kinds: Vec<EntryKind> = page.entries.iter().map(|e| e.kind()).collect();
    assert_eq!(
        kinds,
        EntryKind::ALL.iter().rev().copied().collect::<Vec<_>>(),
        "newest first"
    );
}

#[test]
fn mg_dl_input_is_stored_in_mmol_and_remembers_unit() {
    let p = profile();
    let reading = validate::glucose_reading(126.0, GlucoseUnit::MgDl).unwrap();
    let e = p
        .polku
        .diary()
        .add(NewEntry::new(EntryData::Glucose(Glucose {
            reading,
            unit: GlucoseUnit::MgDl,
            context: MealContext::Fasting,
            hours_after_meal: None,
            source: GlucoseSource::Meter,
        })))
        .unwrap();
    let EntryData::Glucose(g) = p.polku.diary().get(e.id).unwrap().data else {
        panic!()
    };
    assert!((g.mmol_l().unwrap() - 126.0 / 18.016).abs() < 1e-12);
    assert_eq!(g.unit, GlucoseUnit::MgDl);
}

#[test]
fn lo_hi_markers_are_kept_as_markers() {
    let p = profile();
    for r in [GlucoseReading::Low, GlucoseReading::High] {
        let e = p
            .polku
            .diary()
            .add(NewEntry::new(EntryData::Glucose(Glucose {
                reading: r,
                unit: GlucoseUnit::MmolL,
                context: MealContext::Other,
                hours_after_meal: None,
                source: GlucoseSource::Meter,
            })))
            .unwrap();
        let EntryData::Glucose(g) = p.polku.diary().get(e.id).unwrap().data else {
            panic!()
        };
        assert_eq!(g.reading, r);
        assert_eq!(g.mmol_l(), None);
    }
}

#[test]
fn edit_appends_a_version_and_history_keeps_both() {
    let p = profile();
    let d = p.polku.diary();
    let v1 = d
        .add(
            NewEntry::new(glucose(12.5, GlucoseSource::Meter))
                .at(hki(2026, 11, 23, 7, 30))
                .note("typo"),
        )
        .unwrap();
    p.clock.set(p.clock_now() + Duration::minutes(5));
    let v2 = d
        .edit(
            v1.id,
            NewEntry::new(glucose(5.2, GlucoseSource::Meter)).note("korjattu"),
        )
        .unwrap();
    assert_eq!(v2.id, v1.id);
    assert_eq!(v2.version, 2);
    assert_eq!(
        v2.at, v1.at,
        "edit without a time keeps the measurement time"
    );
    assert!(v2.created_at > v1.created_at);

    let h = d.history(v1.id).unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[0].data, glucose(12.5, GlucoseSource::Meter));
    assert!(!h[0].is_head);
    assert_eq!(h[1], v2);
    let listed = d.list(&EntryQuery::default()).unwrap().entries;
    assert_eq!(listed, vec![v2.clone()], "only the head is listed");

    let e = d
        .edit(v1.id, NewEntry::new(EntryData::Weight { kg: 80.0 }))
        .unwrap_err();
    assert!(
        matches!(e, Error::Validation { ref field, .. } if field == "kind"),
        "{e}"
    );
}

#[test]
fn delete_is_a_tombstone_with_reason() {
    let p = profile();
    let d = p.polku.diary();
    let e = d
        .add(NewEntry::new(EntryData::Weight { kg: 90.0 }))
        .unwrap();
    assert!(matches!(
        d.delete(e.id, "  "),
        Err(Error::Validation { .. })
    ));
    let tomb = d.delete(e.id, "väärä henkilö punnittiin").unwrap();
    assert_eq!(
        tomb.deleted.as_ref().unwrap().reason,
        "väärä henkilö punnittiin"
    );
    assert_eq!(tomb.version, 2);
    assert!(d.list(&EntryQuery::default()).unwrap().entries.is_empty());
    let h = d.history(e.id).unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(
        h[0].data,
        EntryData::Weight { kg: 90.0 },
        "the deleted value is still in history"
    );
    assert!(matches!(
        d.edit(e.id, NewEntry::new(EntryData::Weight { kg: 1.0 })),
        Err(Error::Conflict(_))
    ));
    assert!(matches!(d.delete(e.id, "again"), Err(Error::Conflict(_))));
    assert!(matches!(
        d.get(uuid::Uuid::new_v4()),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn list_filters_by_kind_and_time_and_pages() {
    let p = profile();
    let d = p.polku.diary();
    let start = hki(2026, 11, 1, 8, 0);
    let mut news = Vec::new();
    for i in 0..25 {
        news.push(
            NewEntry::new(glucose(5.0 + i as f64 / 10.0, GlucoseSource::Meter))
                .at(start + Duration::hours(i)),
        );
        news.push(NewEntry::new(EntryData::Weight { kg: 80.0 }).at(start + Duration::hours(i)));
    }
    d.add_many(news).unwrap();

    let q = EntryQuery {
        kinds: vec![EntryKind::Glucose],
        from: Some((start + Duration::hours(5)).with_timezone(&Utc)),
        to: Some((start + Duration::hours(20)).with_timezone(&Utc)),
        limit: 4,
        after: None,
    };
    let mut seen = Vec::new();
    let mut q2 = q.clone();
    loop {
        let page = d.list(&q2).unwrap();
        assert!(page.entries.len() <= 4);
        seen.extend(page.entries);
        match page.next {
            Some(n) => q2.after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen.len(), 15, "hours 5..20, end exclusive");
    assert!(seen.iter().all(|e| e.kind() == EntryKind::Glucose));
    assert!(
        seen.windows(2).all(|w| w[0].at > w[1].at),
        "strictly newest first across pages"
    );
    assert_eq!(seen[0].at, start + Duration::hours(19));

    assert!(matches!(
        d.list(&EntryQuery {
            limit: 100_000,
            ..Default::default()
        }),
        Err(Error::Validation { .. })
    ));
    assert!(matches!(
        d.list(&EntryQuery {
            after: Some("nonsense".into()),
            ..Default::default()
        }),
        Err(Error::Validation { .. })
    ));
}

#[test]
fn future_timestamps_are_rejected() {
    let p = profile();
    let now = p.clock_now();
    let ok = (now + Duration::minutes(9)).fixed_offset();
    let bad = (now + Duration::minutes(11)).fixed_offset();
    p.polku
        .diary()
        .add(NewEntry::new(EntryData::Mood { score: 3 }).at(ok))
        .unwrap();
    let e = p
        .polku
        .diary()
        .add(NewEntry::new(EntryData::Mood { score: 3 }).at(bad))
        .unwrap_err();
    assert!(e.to_string().contains("10 minutes"), "{e}");
}

#[test]
fn add_many_is_all_or_nothing() {
    let p = profile();
    let e = p
        .polku
        .diary()
        .add_many(vec![
            NewEntry::new(EntryData::Mood { score: 3 }),
            NewEntry::new(EntryData::Mood { score: 9 }),
        ])
        .unwrap_err();
    assert!(matches!(e, Error::Validation { ref field, .. } if field == "mood.score"));
    assert!(p
        .polku
        .diary()
        .list(&EntryQuery::default())
        .unwrap()
        .entries
        .is_empty());
}

#[test]
fn today_uses_the_local_day() {
    // 2026-11-23 22:30 UTC is already 2026-11-24 00:30 in Helsinki.
    let p = profile_at(Utc.with_ymd_and_hms(2026, 11, 23, 22, 30, 0).unwrap());
    let d = p.polku.diary();
    d.add(NewEntry::new(EntryData::Mood { score: 2 }).at(hki(2026, 11, 23, 23, 59)))
        .unwrap();
    let today = d
        .add(NewEntry::new(EntryData::Mood { score: 4 }).at(hki(2026, 11, 24, 0, 1)))
        .unwrap();
    assert_eq!(d.today().unwrap(), vec![today]);
}

trait ClockNow {
    fn clock_now(&self) -> chrono::DateTime<Utc>;
}
impl ClockNow for Profile {
    fn clock_now(&self) -> chrono::DateTime<Utc> {
        self.polku.now()
    }
}

#[test]
fn what_add_returns_equals_what_is_read_back_with_the_system_clock() {
    // The real clock has nanoseconds; storage keeps milliseconds. Both must agree.
    let dir = tempfile::tempdir().unwrap();
    let polku = polku_core::Polku::open(&dir.path().join("p.db"), &key()).unwrap();
    let at = (Utc::now() - Duration::nanoseconds(123_456_789)).fixed_offset();
    let a = polku
        .diary()
        .add(NewEntry::new(EntryData::Mood { score: 3 }))
        .unwrap();
    let b = polku
        .diary()
        .add(NewEntry::new(EntryData::Mood { score: 4 }).at(at))
        .unwrap();
    assert_eq!(polku.diary().get(a.id).unwrap(), a);
    assert_eq!(polku.diary().get(b.id).unwrap(), b);
    let c = polku
        .diary()
        .edit(a.id, NewEntry::new(EntryData::Mood { score: 5 }))
        .unwrap();
    assert_eq!(polku.diary().get(a.id).unwrap(), c);
}
