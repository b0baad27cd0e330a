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
            &[1, 2, 1, 0, 0, 3, 1],
            Some(hki(2026, 11, 20, 14, 0)),
        )
        .unwrap();
    assert_eq!(a.scored.total, 8);
    assert_eq!(a.scored.band, "mild");
    let b = q
        .answer(InstrumentId::Phq9, &[1, 1, 1, 1, 1, 1, 1, 1, 1], None)
        .unwrap();
    assert_eq!(q.get(a.id).unwrap(), a);
    assert_eq!(
        q.list(None, 0).unwrap(),
        vec![b.clone(), a.clone()],
        "newest first"
    );
    assert_eq!(q.list(Some(InstrumentId::Gad7), 0).unwrap(), vec![a]);
    assert!(matches!(
        q.answer(InstrumentId::Gad7, &[9, 0, 0, 0, 0, 0, 0], None),
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
