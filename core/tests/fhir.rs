//! Validates the FHIR export against the Kanta PHR StructureDefinitions in ../shared: every
//! snapshot element's cardinality (min, max 0/1), fixed values, and the required slices (an array
//! item must carry all the slice's fixed values), plus the FHIRPath constraints PHR-1..3.
mod common;

use std::path::PathBuf;

use chrono::Duration;
use common::*;
use polku_core::diary::*;
use serde_json::Value;

fn profiles_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/kanta-phr-profiles")
}

fn load(file: &str) -> Value {
    let path = profiles_dir().join(file);
    serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

/// Children of `node` named by one path segment (`value[x]` matches valueQuantity etc.), arrays flattened.
fn step<'a>(node: &'a Value, seg: &str) -> Vec<&'a Value> {
    let Some(obj) = node.as_object() else {
        return vec![];
    };
    let mut out = Vec::new();
    let mut push = |v: &'a Value| match v {
        Value::Array(a) => out.extend(a.iter()),
        other => out.push(other),
    };
    if let Some(prefix) = seg.strip_suffix("[x]") {
        for (k, v) in obj {
            if k.len() > prefix.len()
                && k.starts_with(prefix)
                && k[prefix.len()..].starts_with(|c: char| c.is_ascii_uppercase())
            {
                push(v);
            }
        }
    } else if let Some(v) = obj.get(seg) {
        push(v);
    }
    out
}

fn resolve<'a>(roots: Vec<&'a Value>, segs: &[String]) -> Vec<&'a Value> {
    segs.iter().fold(roots, |nodes, s| {
        nodes.into_iter().flat_map(|n| step(n, s)).collect()
    })
}

/// `Observation.value[x]:valueQuantity.unit` → segments with slice names; a type slice on `[x]`
/// becomes the concrete element name.
fn segments(id: &str) -> Vec<(String, Option<String>)> {
    id.split('.')
        .skip(1)
        .map(|s| match s.split_once(':') {
            Some((p, slice)) if p.ends_with("[x]") => (slice.to_owned(), None),
            Some((p, slice)) => (p.to_owned(), Some(slice.to_owned())),
            None => (s.to_owned(), None),
        })
        .collect()
}

fn fixed_of(el: &Value) -> Option<&Value> {
    el.as_object()?
        .iter()
        .find(|(k, _)| k.starts_with("fixed") || k.starts_with("pattern"))
        .map(|(_, v)| v)
}

fn validate(resource: &Value, sd: &Value) -> Vec<String> {
    let elements = sd["snapshot"]["element"].as_array().unwrap();
    let mut errors = Vec::new();
    for el in elements {
        let id = el["id"].as_str().unwrap();
        let segs = segments(id);
        if segs.is_empty() {
            continue;
        }
        let slice_pos = segs.iter().position(|(_, s)| s.is_some());
        let min = el["min"].as_u64().unwrap_or(0);
        let max = el["max"].as_str().unwrap_or("*");
        match slice_pos {
            None => {
                let names: Vec<String> = segs.iter().map(|(n, _)| n.clone()).collect();
                let parents = resolve(vec![resource], &names[..names.len() - 1]);
                for parent in parents {
                    let here = step(parent, &names[names.len() - 1]);
                    if (here.len() as u64) < min {
                        errors.push(format!("{id}: min {min}, found {}", here.len()));
                    }
                    if max == "0" && !here.is_empty() {
                        errors.push(format!("{id}: must be absent"));
                    }
                    if max == "1" && here.len() > 1 {
                        errors.push(format!("{id}: max 1, found {}", here.len()));
                    }
                    if let Some(f) = fixed_of(el) {
                        for v in here {
                            if v != f {
                                errors.push(format!("{id}: expected {f}, found {v}"));
                            }
                        }
                    }
                }
            }
            // A required slice root: among the array items, one must carry every fixed value that
            // the slice's descendants declare.
            Some(pos) if pos == segs.len() - 1 && min >= 1 => {
                let names: Vec<String> = segs.iter().map(|(n, _)| n.clone()).collect();
                let parents = resolve(vec![resource], &names[..names.len() - 1]);
                let min_of = |eid: &str| {
                    elements
                        .iter()
                        .find(|e| e["id"] == eid)
                        .and_then(|e| e["min"].as_u64())
                        .unwrap_or(0)
                };
                // (relative path, fixed value, required): required when every element from the
                // slice root down to it has min >= 1; otherwise the value binds only if present.
                let fixed: Vec<(Vec<String>, &Value, bool)> = elements
                    .iter()
                    .filter_map(|e| {
                        let eid = e["id"].as_str()?;
                        let rest = eid.strip_prefix(id)?.strip_prefix('.')?;
                        let f = fixed_of(e)?;
                        let rel: Vec<String> = segments(&format!("X.{rest}"))
                            .into_iter()
                            .map(|(n, _)| n)
                            .collect();
                        let parts: Vec<&str> = rest.split('.').collect();
                        let required = (1..=parts.len())
                            .all(|k| min_of(&format!("{id}.{}", parts[..k].join("."))) >= 1);
                        Some((rel, f, required))
                    })
                    .collect();
                for parent in parents {
                    let items = step(parent, &names[names.len() - 1]);
                    let matching = items
                        .iter()
                        .filter(|item| fixed_of(el).is_none_or(|f| **item == f))
                        .filter(|item| {
                            fixed.iter().all(|(rel, f, required)| {
                                let found = resolve(vec![**item], rel);
                                if found.is_empty() {
                                    !required
                                } else {
                                    found.contains(f)
                                }
                            })
                        })
                        .count() as u64;
                    if matching < min {
                        errors.push(format!("{id}: required slice missing (needs {fixed:?})"));
                    }
                    if max == "1" && matching > 1 {
                        errors.push(format!("{id}: slice max 1, found {matching}"));
                    }
                }
            }
            _ => {}
        }
    }
    errors
}

fn profile_file(url: &str) -> &'static str {
    match url.rsplit('/').next().unwrap() {
        "fiphr-sd-bloodglucose" => "FIPHRSDBloodglucose.json",
        "fiphr-sd-bloodpressure" => "FIPHRSDBloodpressure.json",
        "fiphr-sd-bodyweight" => "FIPHRSDBodyWeight.json",
        "fiphr-sd-vitalsigns" => "FIPHRsdVitalsigns.json",
        other => panic!("unexpected profile {other}"),
    }
}

fn codes(o: &Value) -> Vec<&str> {
    o["code"]["coding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect()
}

#[test]
fn export_conforms_to_kanta_phr_profiles() {
    let p = profile();
    let d = p.polku.diary();
    let at = hki(2026, 11, 22, 8, 0);
    let g = |reading, unit, source, context, hours| {
        EntryData::Glucose(Glucose {
            reading,
            unit,
            context,
            hours_after_meal: hours,
            source,
        })
    };
    d.add_many(vec![
        NewEntry::new(g(
            GlucoseReading::Value { mmol_l: 6.24 },
            GlucoseUnit::MmolL,
            GlucoseSource::Meter,
            MealContext::Fasting,
            None,
        ))
        .at(at)
        .note("aamulla <ennen> kahvia & leipää"),
        NewEntry::new(g(
            validate::glucose_reading(126.0, GlucoseUnit::MgDl).unwrap(),
            GlucoseUnit::MgDl,
            GlucoseSource::Meter,
            MealContext::AfterMeal,
            Some(2),
        ))
        .at(at + Duration::minutes(1)),
        NewEntry::new(g(
            GlucoseReading::Value { mmol_l: 7.9 },
            GlucoseUnit::MmolL,
            GlucoseSource::Cgm,
            MealContext::Other,
            None,
        ))
        .at(at + Duration::minutes(2)),
        NewEntry::new(g(
            GlucoseReading::Low,
            GlucoseUnit::MmolL,
            GlucoseSource::Meter,
            MealContext::Night,
            None,
        ))
        .at(at + Duration::minutes(3)),
        NewEntry::new(EntryData::BloodPressure(BloodPressure {
            systolic: 138,
            diastolic: 86,
            pulse: Some(71),
            arm: Some(Arm::Left),
            series: Some(BpSeries::Morning),
        }))
        .at(at + Duration::minutes(4)),
        NewEntry::new(EntryData::Weight { kg: 84.35 }).at(at + Duration::minutes(5)),
        NewEntry::new(EntryData::HeartRate { bpm: 64 }).at(at + Duration::minutes(6)),
        NewEntry::new(EntryData::Temperature { celsius: 37.2 }).at(at + Duration::minutes(7)),
        NewEntry::new(EntryData::Mood { score: 3 }).at(at + Duration::minutes(8)),
        NewEntry::new(EntryData::Symptom {
            code: SymptomCode::ChestPain,
            severity: 2,
        })
        .at(at + Duration::minutes(9)),
    ])
    .unwrap();
    let deleted = d
        .add(NewEntry::new(EntryData::Weight { kg: 120.0 }).at(at + Duration::minutes(10)))
        .unwrap();
    d.delete(deleted.id, "väärä mittaus").unwrap();

    let bundle = p.polku.fhir().bundle(None, None).unwrap();
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "collection");
    let entries = bundle["entry"].as_array().unwrap();
    // 4 glucose + BP + its pulse + weight + heart rate + temperature; mood, symptom and the deleted weight are not exported.
    assert_eq!(entries.len(), 9);

    for entry in entries {
        let o = &entry["resource"];
        assert_eq!(
            entry["fullUrl"].as_str().unwrap(),
            format!("urn:uuid:{}", o["id"].as_str().unwrap())
        );
        let url = o["meta"]["profile"][0].as_str().unwrap();
        let mut errors = validate(o, &load(profile_file(url)));
        if url.ends_with("bloodglucose")
            || url.ends_with("bloodpressure")
            || url.ends_with("bodyweight")
        {
            // Derived profiles must satisfy the base vital-signs profile too.
            errors.extend(validate(o, &load("FIPHRsdVitalsigns.json")));
        }
        assert!(errors.is_empty(), "{url} {}:\n{}", o, errors.join("\n"));
        // PHR-1..3 for glucose: 15074-8 and 14743-9 always together; CGM uses 14745-4.
        if url.ends_with("bloodglucose") {
            let c = codes(o);
            assert!(
                c.contains(&"15074-8") == c.contains(&"14743-9"),
                "PHR-2/3: {c:?}"
            );
            assert!(
                c.contains(&"15074-8") || c.contains(&"14745-4"),
                "PHR-1: {c:?}"
            );
        }
        assert_eq!(
            o["identifier"][0]["value"].as_str().unwrap(),
            format!("urn:uuid:{}", o["id"].as_str().unwrap())
        );
        assert!(o["text"]["div"]
            .as_str()
            .unwrap()
            .starts_with("<div xmlns=\"http://www.w3.org/1999/xhtml\">"));
    }

    let res: Vec<&Value> = entries.iter().map(|e| &e["resource"]).collect();
    // Meter reading: both codings, value rounded to 0.1 mmol/L, note kept and narrative escaped.
    assert_eq!(codes(res[0]), vec!["15074-8", "14743-9"]);
    assert_eq!(res[0]["valueQuantity"]["value"], 6.2);
    assert_eq!(res[0]["note"][0]["text"], "aamulla <ennen> kahvia & leipää");
    assert!(res[0]["text"]["div"]
        .as_str()
        .unwrap()
        .contains("paastoarvo"));
    assert_eq!(res[0]["effectiveDateTime"], "2026-11-22T08:00:00+02:00");
    // mg/dL typed: the original travels in the pq-translation extension; hours after meal too.
    assert_eq!(res[1]["valueQuantity"]["value"], 7.0);
    assert_eq!(
        res[1]["valueQuantity"]["extension"][0]["valueQuantity"]["value"],
        126.0
    );
    assert_eq!(
        res[1]["valueQuantity"]["extension"][0]["valueQuantity"]["code"],
        "mg/dL"
    );
    assert_eq!(res[1]["extension"][0]["valueUnsignedInt"], 2);
    // CGM: 14745-4 only.
    assert_eq!(codes(res[2]), vec!["14745-4"]);
    // LO: a comparator on the meter limit.
    assert_eq!(res[3]["valueQuantity"]["comparator"], "<");
    assert_eq!(res[3]["valueQuantity"]["value"], 0.6);
    // BP: components and no top-level value; pulse as its own heart-rate Observation.
    assert!(res[4].get("valueQuantity").is_none());
    assert_eq!(res[4]["component"][0]["valueQuantity"]["value"], 138.0);
    assert_eq!(
        res[4]["component"][1]["code"]["coding"][0]["code"],
        "8462-4"
    );
    assert_eq!(codes(res[5]), vec!["8867-4"]);
    assert_eq!(res[5]["valueQuantity"]["value"], 71.0);
    assert_ne!(res[5]["id"], res[4]["id"]);
    assert_eq!(res[6]["valueQuantity"]["unit"], "kg");
    assert_eq!(codes(res[8]), vec!["8310-5"]);
    assert_eq!(res[8]["valueQuantity"]["code"], "Cel");
}

#[test]
fn validator_catches_violations() {
    // The checker itself must fail on broken resources, or the test above proves nothing.
    let p = profile();
    p.polku
        .diary()
        .add(NewEntry::new(EntryData::BloodPressure(BloodPressure {
            systolic: 120,
            diastolic: 80,
            pulse: None,
            arm: None,
            series: None,
        })))
        .unwrap();
    let bundle = p.polku.fhir().bundle(None, None).unwrap();
    let good = bundle["entry"][0]["resource"].clone();
    let sd = load("FIPHRSDBloodpressure.json");
    assert!(validate(&good, &sd).is_empty());

    let mut bad = good.clone();
    bad["status"] = "preliminary".into();
    assert!(validate(&bad, &sd)
        .iter()
        .any(|e| e.starts_with("Observation.status")));
    let mut bad = good.clone();
    bad["valueQuantity"] = serde_json::json!({"value": 1});
    assert!(
        !validate(&bad, &sd).is_empty(),
        "BP must not have a top-level value"
    );
    let mut bad = good.clone();
    bad["component"][0]["code"]["coding"][0]["code"] = "0000-0".into();
    assert!(validate(&bad, &sd)
        .iter()
        .any(|e| e.contains("component:systolic")));
    let mut bad = good.clone();
    bad.as_object_mut().unwrap().remove("issued");
    assert!(validate(&bad, &sd)
        .iter()
        .any(|e| e.starts_with("Observation.issued")));
    let mut bad = good;
    bad["meta"]["profile"][0] = "http://example.org/x".into();
    assert!(validate(&bad, &sd)
        .iter()
        .any(|e| e.contains("meta.profile:fiphrProfile")));
}

#[test]
fn questionnaire_response_conforms_to_kanta_phr_profile() {
    use polku_core::questionnaire::{InstrumentId, Lang};
    let p = profile();
    let sd = load("FIPHRSDQuestionnairesResponsesR4.json");
    for (id, answers) in [
        (InstrumentId::Phq9, vec![1, 0, 2, 1, 0, 0, 1, 0, 1]),
        (InstrumentId::Gad7, vec![0, 1, 2, 3, 0, 1, 2]),
        (
            InstrumentId::Rbdi,
            vec![1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2, 3],
        ),
        (InstrumentId::Findrisc, vec![2, 1, 1, 0, 1, 1, 0, 2]),
    ] {
        for lang in [Lang::Fi, Lang::Sv, Lang::En] {
            let q = p.polku.questionnaires();
            let r = q
                .answer(id, lang, &answers, Some(hki(2026, 11, 21, 9, 30)))
                .unwrap();
            let qr = q.fhir(&r);
            let form = q.form(id, lang);
            assert_eq!(
                qr["language"],
                polku_core::questionnaire::wording::lang_code(lang)
            );
            assert_eq!(
                qr["questionnaire"],
                format!("urn:polku:questionnaire:{}|polku-1", id.as_str())
            );
            // The texts are those of the form the person answered.
            assert_eq!(qr["item"][0]["text"], form.items[0].text.as_str());
            let errors = validate(&qr, &sd);
            assert!(
                errors.is_empty(),
                "{id:?} {lang:?}: {}\n{qr}",
                errors.join("\n")
            );
            assert_eq!(qr["status"], "completed");
            assert_eq!(qr["subject"], qr["source"]);
            assert_eq!(qr["authored"], "2026-11-21T09:30:00+02:00");
            let items = qr["item"].as_array().unwrap();
            assert_eq!(items.len(), answers.len() + 1);
            assert_eq!(
                items.last().unwrap()["answer"][0]["valueInteger"],
                r.scored.total
            );
            for (item, a) in items.iter().zip(&answers) {
                assert_eq!(item["answer"][0]["valueCoding"]["code"], a.to_string());
            }
        }
    }
    // The validator rejects a response without `source` (1..1 in the profile).
    let r = p.polku.questionnaires().list(None, 1).unwrap().remove(0);
    let mut bad = p.polku.questionnaires().fhir(&r);
    bad.as_object_mut().unwrap().remove("source");
    assert!(validate(&bad, &sd)
        .iter()
        .any(|e| e.starts_with("QuestionnaireResponse.source")));
}
