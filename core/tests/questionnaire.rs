mod common;

use common::*;
use polku_core::questionnaire::{score, InstrumentId, Lang};
use polku_core::Error;

/// Every possible answer vector of an instrument with its total (FINDRISC: 1 728; small ones only).
fn all_answer_vectors(id: InstrumentId) -> Vec<(Vec<i64>, u32)> {
    let items = id.instrument().items;
    let mut out = vec![(Vec::new(), 0u32)];
    for item in items {
        out = out
            .into_iter()
            .flat_map(|(v, t)| {
                item.options.iter().map(move |o| {
                    (
                        [v.clone(), vec![o.value as i64]].concat(),
                        t + o.points as u32,
                    )
                })
            })
            .collect();
    }
    out
}

/// Answers reaching `total` for the scales whose points rise by one per value step.
fn answers_for(id: InstrumentId, total: u32) -> Vec<i64> {
    let items = id.instrument().items;
    let mut left = total;
    items
        .iter()
        .map(|item| {
            // The option with the most points not exceeding what is left.
            let o = item
                .options
                .iter()
                .filter(|o| o.points as u32 <= left)
                .max_by_key(|o| (o.points, o.value))
                .unwrap();
            left -= o.points as u32;
            o.value as i64
        })
        .collect()
}

fn band_of(id: InstrumentId, answers: &[i64]) -> (u32, String) {
    let s = score(id, answers).unwrap();
    (s.total, s.band)
}

#[test]
fn every_band_boundary() {
    let cases: &[(InstrumentId, &[(u32, &str)])] = &[
        (
            InstrumentId::Phq9,
            &[
                (0, "minimal"),
                (4, "minimal"),
                (5, "mild"),
                (9, "mild"),
                (10, "moderate"),
                (14, "moderate"),
                (15, "moderately_severe"),
                (19, "moderately_severe"),
                (20, "severe"),
                (27, "severe"),
            ],
        ),
        (
            InstrumentId::Gad7,
            &[
                (0, "minimal"),
                (4, "minimal"),
                (5, "mild"),
                (9, "mild"),
                (10, "moderate"),
                (14, "moderate"),
                (15, "severe"),
                (21, "severe"),
            ],
        ),
        (
            InstrumentId::Rbdi,
            &[
                (0, "none"),
                (4, "none"),
                (5, "mild"),
                (7, "mild"),
                (8, "moderate"),
                (15, "moderate"),
                (16, "severe"),
                (39, "severe"),
            ],
        ),
    ];
    for (id, bounds) in cases {
        for (total, band) in *bounds {
            let a = answers_for(*id, *total);
            assert_eq!(
                band_of(*id, &a),
                (*total, band.to_string()),
                "{id:?} total {total}"
            );
        }
    }
    // FINDRISC points are not contiguous per item: find an answer set for every boundary total.
    let all = all_answer_vectors(InstrumentId::Findrisc);
    assert_eq!(all.len(), 4 * 3 * 3 * 2 * 2 * 2 * 2 * 3);
    assert_eq!(all.iter().map(|(_, t)| *t).max(), Some(26), "maximum 26");
    for (total, band) in [
        (0, "low"),
        (6, "low"),
        (7, "slightly_elevated"),
        (11, "slightly_elevated"),
        (12, "moderate"),
        (14, "moderate"),
        (15, "high"),
        (20, "high"),
        (21, "very_high"),
        (26, "very_high"),
    ] {
        let (a, _) = all
            .iter()
            .find(|(_, t)| *t == total)
            .unwrap_or_else(|| panic!("no FINDRISC answers total {total}"));
        assert_eq!(
            band_of(InstrumentId::Findrisc, a),
            (total, band.to_string())
        );
    }
    // And every reachable total falls in exactly one band.
    for (a, t) in &all {
        assert_eq!(score(InstrumentId::Findrisc, a).unwrap().total, *t);
    }
}

#[test]
fn findrisc_points_per_item_as_published() {
    // Age <45/45–54/55–64/>64: 0/2/3/4; BMI <25/25–30/>30: 0/1/3; waist: 0/3/4; activity yes/no: 0/2;
    // vegetables daily/not: 0/1; BP medication no/yes: 0/2; high glucose no/yes: 0/5;
    // family none/second-degree/first-degree: 0/3/5.
    let expected: [&[u8]; 8] = [
        &[0, 2, 3, 4],
        &[0, 1, 3],
        &[0, 3, 4],
        &[0, 2],
        &[0, 1],
        &[0, 2],
        &[0, 5],
        &[0, 3, 5],
    ];
    for (item, pts) in InstrumentId::Findrisc
        .instrument()
        .items
        .iter()
        .zip(expected)
    {
        assert_eq!(
            item.options.iter().map(|o| o.points).collect::<Vec<_>>(),
            pts,
            "{}",
            item.link_id
        );
    }
}

#[test]
fn rbdi_scores_1_2_as_0_then_1_2_3() {
    let one = |v: i64| {
        score(InstrumentId::Rbdi, &[v, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1])
            .unwrap()
            .total
    };
    assert_eq!([one(1), one(2), one(3), one(4), one(5)], [0, 0, 1, 2, 3]);
    assert_eq!(score(InstrumentId::Rbdi, &[5; 13]).unwrap().total, 39);
    assert_eq!(score(InstrumentId::Rbdi, &[2; 13]).unwrap().total, 0);
}

#[test]
fn every_items_allowed_answers_and_neighbours() {
    for id in InstrumentId::ALL {
        let items = id.instrument().items;
        let lowest: Vec<i64> = items.iter().map(|i| i.options[0].value as i64).collect();
        for (k, item) in items.iter().enumerate() {
            for o in item.options {
                let mut a = lowest.clone();
                a[k] = o.value as i64;
                let s = score(id, &a).unwrap();
                assert_eq!(s.item_points[k], o.points);
            }
            let lo = item.options.first().unwrap().value as i64 - 1;
            let hi = item.options.last().unwrap().value as i64 + 1;
            for bad in [lo, hi, -100, 1000] {
                let mut a = lowest.clone();
                a[k] = bad;
                match score(id, &a) {
                    Err(Error::Validation {
                        field,
                        value,
                        allowed,
                    }) => {
                        assert_eq!(field, format!("answers[{}] ({})", k + 1, item.link_id));
                        assert_eq!(value, bad.to_string());
                        assert!(allowed.contains('–'), "{allowed}");
                    }
                    other => panic!("{id:?} item {k} value {bad}: {other:?}"),
                }
            }
        }
        let e = score(id, &lowest[1..]).unwrap_err();
        assert!(matches!(e, Error::Validation { ref field, .. } if field == "answers"));
    }
}

#[test]
fn phq9_item9_raises_an_urgent_flag() {
    let s = score(InstrumentId::Phq9, &[0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
    assert!(s.flags.is_empty());
    for v in 1..=3 {
        let s = score(InstrumentId::Phq9, &[0, 0, 0, 0, 0, 0, 0, 0, v]).unwrap();
        assert_eq!(s.band, "minimal", "a low total does not hide the flag");
        assert_eq!(s.flags.len(), 1);
        assert!(s.flags[0].urgent);
        assert_eq!(s.flags[0].code, "phq9_item9");
    }
    // Item 8 high does not raise it.
    assert!(score(InstrumentId::Phq9, &[0, 0, 0, 0, 0, 0, 0, 3, 0])
        .unwrap()
        .flags
        .is_empty());
}

#[test]
fn responses_are_stored_and_read_back() {
    let p = profile();
    let q = p.polku.questionnaires();
    let a = q
        .answer(
            InstrumentId::Gad7,
            Lang::Fi,
            &[1, 2, 1, 0, 0, 3, 1],
            Some(hki(2026, 11, 20, 14, 0)),
        )
        .unwrap();
    assert_eq!(a.scored.total, 8);
    assert_eq!(a.scored.band, "mild");
    let b = q
        .answer(
            InstrumentId::Phq9,
            Lang::Fi,
            &[1, 1, 1, 1, 1, 1, 1, 1, 1],
            None,
        )
        .unwrap();
    assert_eq!(q.get(a.id).unwrap(), a);
    assert_eq!(
        q.list(None, 0).unwrap(),
        vec![b.clone(), a.clone()],
        "newest first"
    );
    assert_eq!(q.list(Some(InstrumentId::Gad7), 0).unwrap(), vec![a]);
    assert!(matches!(
        q.answer(InstrumentId::Gad7, Lang::Fi, &[9, 0, 0, 0, 0, 0, 0], None),
        Err(Error::Validation { .. })
    ));
    assert_eq!(
        q.list(None, 0).unwrap().len(),
        2,
        "an invalid answer stores nothing"
    );
    // Texts exist in all three languages for every item and option.
    for id in InstrumentId::ALL {
        let ins = id.instrument();
        for lang in [Lang::Fi, Lang::Sv, Lang::En] {
            assert!(!ins.title.get(lang).is_empty() && !ins.instructions.get(lang).is_empty());
            for item in ins.items {
                assert!(!item.text.get(lang).is_empty(), "{} {lang:?}", item.link_id);
                assert!(
                    item.options.iter().all(|o| !o.text.get(lang).is_empty()),
                    "{} {lang:?}",
                    item.link_id
                );
            }
        }
    }
}

// ---- wording: the county's licensed texts replace the built-in ones -----------------------------

use polku_core::questionnaire::{Wording, Wordings};
use polku_core::OpenOptions;

/// A wording file in the published format (docs/questionnaires.md). The texts are test markers,
/// not any publisher's wording.
fn wording_file(instrument: InstrumentId, language: &str, version: &str) -> serde_json::Value {
    let ins = instrument.instrument();
    serde_json::json!({
        "instrument": instrument.as_str(),
        "language": language,
        "version": version,
        "source": "Test publisher, licensed to the test county",
        "validated": true,
        "title": format!("{} (county text)", instrument.as_str()),
        "instructions": "County instructions",
        "items": ins.items.iter().enumerate().map(|(n, item)| serde_json::json!({
            "text": format!("county item {}", n + 1),
            "options": item.options.iter().map(|o| format!("county choice {}", o.value)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

fn messages(e: Error) -> Vec<String> {
    match e {
        Error::Import(p) => p.into_iter().map(|p| p.message).collect(),
        other => panic!("expected the file's problems, got {other:?}"),
    }
}

#[test]
fn builtin_wording_says_which_texts_are_validated() {
    let w = Wordings::builtin();
    for id in InstrumentId::ALL {
        for lang in [Lang::Fi, Lang::Sv, Lang::En] {
            let f = w.form(id, lang);
            assert_eq!(f.version, "polku-1");
            // Only the published English PHQ-9 and GAD-7 are the validated text.
            let published =
                lang == Lang::En && matches!(id, InstrumentId::Phq9 | InstrumentId::Gad7);
            assert_eq!(f.validated, published, "{id:?} {lang:?}");
            assert!(published || f.wording_source.contains("not a validated version"));
            // The form carries the instrument's values and points whatever the wording.
            let ins = id.instrument();
            assert_eq!(f.items.len(), ins.items.len());
            for (fi, ii) in f.items.iter().zip(ins.items) {
                assert_eq!(fi.link_id, ii.link_id);
                let vp: Vec<(u8, u8)> = fi.options.iter().map(|o| (o.value, o.points)).collect();
                let ivp: Vec<(u8, u8)> = ii.options.iter().map(|o| (o.value, o.points)).collect();
                assert_eq!(vp, ivp);
            }
        }
    }
    assert_eq!(
        w.form(InstrumentId::Phq9, Lang::En).items[8].text,
        "Thoughts that you would be better off dead or of hurting yourself in some way"
    );
}

#[test]
fn county_wording_replaces_the_builtin_and_is_recorded_on_responses() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("content");
    std::fs::create_dir_all(content.join("questionnaires")).unwrap();
    std::fs::write(
        content.join("questionnaires/phq9-fi.json"),
        wording_file(InstrumentId::Phq9, "fi", "county-2026-1").to_string(),
    )
    .unwrap();
    let db = dir.path().join("polku.db");
    let open = |content_dir: Option<&std::path::Path>| {
        let mut opts = OpenOptions::default();
        if let Some(d) = content_dir {
            opts = opts.with_content_dir(d);
        }
        polku_core::Polku::open_with(&db, &key(), opts).unwrap()
    };
    let p = open(Some(&content));
    let q = p.questionnaires();
    let fi = q.form(InstrumentId::Phq9, Lang::Fi);
    assert_eq!(fi.version, "county-2026-1");
    assert!(fi.validated);
    assert_eq!(fi.title, "phq9 (county text)");
    assert_eq!(fi.items[8].text, "county item 9");
    assert_eq!(fi.items[8].options[3].text, "county choice 3");
    assert_eq!(fi.items[8].options[3].points, 3);
    // Other languages and instruments keep the built-in wording.
    assert_eq!(q.form(InstrumentId::Phq9, Lang::Sv).version, "polku-1");
    assert_eq!(q.form(InstrumentId::Gad7, Lang::Fi).version, "polku-1");

    // Scoring does not depend on wording: item 9 still raises the urgent flag.
    let r = q
        .answer(
            InstrumentId::Phq9,
            Lang::Fi,
            &[1, 1, 1, 1, 1, 1, 1, 1, 1],
            None,
        )
        .unwrap();
    assert_eq!(
        (r.language, r.wording.as_str()),
        (Some(Lang::Fi), "county-2026-1")
    );
    assert_eq!(r.scored.total, 9);
    assert_eq!(r.scored.flags[0].code, "phq9_item9");
    assert_eq!(q.get(r.id).unwrap(), r, "language and wording are stored");
    let sv = q
        .answer(InstrumentId::Phq9, Lang::Sv, &[0; 9], None)
        .unwrap();
    assert_eq!(sv.wording, "polku-1");

    // The export shows the texts the person read and names the wording version.
    let qr = q.fhir(&r);
    assert_eq!(qr["language"], "fi");
    assert_eq!(
        qr["questionnaire"],
        "urn:polku:questionnaire:phq9|county-2026-1"
    );
    assert_eq!(qr["item"][8]["text"], "county item 9");
    assert_eq!(
        qr["item"][8]["answer"][0]["valueCoding"]["display"],
        "county choice 1"
    );
    drop(p);

    // A device without that wording never shows another text in its place.
    let p = open(None);
    let qr = p.questionnaires().fhir(&r);
    assert_eq!(
        qr["questionnaire"],
        "urn:polku:questionnaire:phq9|county-2026-1"
    );
    assert!(qr["item"][8].get("text").is_none(), "{qr}");
    assert!(qr["item"][8]["answer"][0]["valueCoding"]
        .get("display")
        .is_none());
    assert_eq!(qr["item"][8]["answer"][0]["valueCoding"]["code"], "1");
    let qr_sv = p.questionnaires().fhir(&sv);
    assert_eq!(qr_sv["language"], "sv");
    assert_eq!(
        qr_sv["item"][0]["text"],
        Wordings::builtin().form(InstrumentId::Phq9, Lang::Sv).items[0]
            .text
            .as_str()
    );
}

#[test]
fn bad_wording_files_name_the_file_item_and_field() {
    let parse = |v: serde_json::Value| Wording::parse("phq9-fi.json", &v.to_string());
    assert!(parse(wording_file(InstrumentId::Rbdi, "sv", "county-1")).is_ok());

    let mut v = wording_file(InstrumentId::Phq9, "fi", "county-1");
    v["items"].as_array_mut().unwrap().pop();
    let m = messages(parse(v).unwrap_err());
    assert_eq!(
        m,
        ["phq9-fi.json: field `items`: 8 items, but phq9 has 9 (in the published order)"]
    );

    let mut v = wording_file(InstrumentId::Phq9, "fi", "county-1");
    v["items"][2]["options"].as_array_mut().unwrap().pop();
    v["items"][4]["text"] = " ".into();
    let m = messages(parse(v).unwrap_err());
    assert_eq!(
        m,
        [
            "phq9-fi.json: item 3 (phq9-3), field `options`: 3 answer texts for 4 choices (values 0–3)",
            "phq9-fi.json: item 5 (phq9-5), field `text`: must be 1–2000 characters, found 0",
        ]
    );

    let mut v = wording_file(InstrumentId::Findrisc, "fi", "polku-2");
    v["instrument"] = "audit".into();
    v["language"] = "de".into();
    let m = messages(parse(v).unwrap_err());
    assert!(
        m.iter().any(|s| s.contains("field `instrument`: `audit`")),
        "{m:?}"
    );
    assert!(m
        .iter()
        .any(|s| s.contains("field `language`: `de` is not fi, sv or en")));

    let m = messages(parse(wording_file(InstrumentId::Gad7, "en", "polku-2")).unwrap_err());
    assert!(
        m[0].contains("field `version`: `polku-2`: names starting with `polku-` are the app's own")
    );

    // A misspelt field is refused, not ignored.
    let mut v = wording_file(InstrumentId::Gad7, "en", "county-1");
    v["instuctions"] = "x".into();
    let m = messages(parse(v).unwrap_err());
    assert!(
        m[0].starts_with("phq9-fi.json: unknown field `instuctions`"),
        "{m:?}"
    );

    // Two files for one instrument and language: refused, and nothing is replaced.
    let dir = tempfile::tempdir().unwrap();
    for name in ["a.json", "b.json"] {
        std::fs::write(
            dir.path().join(name),
            wording_file(InstrumentId::Gad7, "fi", "county-1").to_string(),
        )
        .unwrap();
    }
    let mut w = Wordings::builtin();
    let m = messages(w.load_dir(dir.path()).unwrap_err());
    assert_eq!(m.len(), 1);
    assert!(
        m[0].contains("b.json: gad7 in `fi` is already given by") && m[0].contains("a.json"),
        "{m:?}"
    );
    assert_eq!(w.form(InstrumentId::Gad7, Lang::Fi).version, "polku-1");

    // Opening a profile with a broken content folder is a typed error, not a silent fallback.
    std::fs::create_dir_all(dir.path().join("content/questionnaires")).unwrap();
    std::fs::write(dir.path().join("content/questionnaires/x.json"), "{").unwrap();
    let e = polku_core::Polku::open_with(
        &dir.path().join("p.db"),
        &key(),
        OpenOptions::default().with_content_dir(&dir.path().join("content")),
    )
    .unwrap_err();
    assert!(messages(e)[0].contains("x.json: EOF while parsing"));
}
