//! FHIR R4 export: a `Bundle` of type `collection` with one `Observation` per exported measurement,
//! conforming to the Kanta PHR (Omatietovaranto) profiles in ../shared/kanta-phr-profiles:
//! `fiphr-sd-bloodglucose` (meter: LOINC 15074-8 and 14743-9 together, PHR-2/PHR-3; CGM: 14745-4),
//! `fiphr-sd-bloodpressure` (85354-9, exactly two components 8480-6/8462-4, no top-level value; the
//! pulse measured with it becomes its own heart-rate Observation), `fiphr-sd-bodyweight` (29463-7)
//! and the base `fiphr-sd-vitalsigns` for heart rate (8867-4) and body temperature (8310-5).
//! Every Observation has status final, an `urn:uuid` identifier, `issued`, one performer,
//! `meta.profile`, `language` and a generated narrative. Symptoms, medications, mood and notes have
//! no Kanta PHR vital-signs profile and are not exported.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::context::Context;
use crate::diary::{
    Diary, Entry, EntryData, EntryQuery, GlucoseReading, GlucoseSource, GlucoseUnit, MealContext,
    MAX_PAGE,
};
use crate::error::Result;

const PHR: &str = "http://phr.kanta.fi/StructureDefinition/";
const LOINC: &str = "http://loinc.org";
const UCUM: &str = "http://unitsofmeasure.org";

pub struct FhirExport<'a> {
    pub(crate) cx: &'a Context,
    pub(crate) wordings: &'a crate::questionnaire::Wordings,
}

impl FhirExport<'_> {
    /// The bundle of live entries measured in [from, to) (unbounded when `None`), oldest first.
    pub fn bundle(&self, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Result<Value> {
        let diary = Diary { cx: self.cx };
        let mut entries = diary.list_all(EntryQuery {
            from,
            to,
            ..Default::default()
        })?;
        entries.reverse();
        let mut resources: Vec<Value> = entries
            .iter()
            .flat_map(|e| observations(e, &self.cx.subject))
            .collect();
        // Questionnaire responses authored in the period (fiphr-sd-questionnaireresponse-r4).
        let questionnaires = crate::questionnaire::Questionnaires {
            cx: self.cx,
            wordings: self.wordings,
        };
        let in_period = |t: DateTime<Utc>| from.is_none_or(|f| t >= f) && to.is_none_or(|e| t < e);
        let mut responses = questionnaires.list(None, MAX_PAGE)?;
        responses.retain(|r| in_period(r.authored.to_utc()));
        responses.reverse();
        resources.extend(responses.iter().map(|r| questionnaires.fhir(r)));
        Ok(json!({
            "resourceType": "Bundle",
            "id": Uuid::new_v4().to_string(),
            "type": "collection",
            "timestamp": self.cx.clock.now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "entry": resources.into_iter().map(|r| {
                let id = r["id"].as_str().unwrap_or_default().to_owned();
                json!({ "fullUrl": format!("urn:uuid:{id}"), "resource": r })
            }).collect::<Vec<_>>(),
        }))
    }
}

/// The Observations of one entry (none for kinds without a profile; two for BP with a pulse).
pub fn observations(e: &Entry, subject: &str) -> Vec<Value> {
    match &e.data {
        EntryData::Glucose(g) => {
            let (codes, kind) = match g.source {
                GlucoseSource::Cgm => (
                    vec![coding("14745-4", "Glucose [Moles/volume] in Body fluid")],
                    "jatkuva sensorimittaus",
                ),
                GlucoseSource::Meter | GlucoseSource::Manual => (
                    vec![
                        coding("15074-8", "Glucose [Moles/volume] in Blood"),
                        coding(
                            "14743-9",
                            "Glucose [Moles/volume] in Capillary blood by Glucometer",
                        ),
                    ],
                    "verensokerimittari",
                ),
            };
            let mut value = match g.reading {
                GlucoseReading::Value { mmol_l } => json!({ "value": round(mmol_l, 1) }),
                // LO/HI: the meter's limit with a comparator, never an invented number.
                GlucoseReading::Low => json!({ "value": 0.6, "comparator": "<" }),
                GlucoseReading::High => json!({ "value": 33.3, "comparator": ">" }),
            };
            value["unit"] = json!("mmol/l");
            value["system"] = json!(UCUM);
            value["code"] = json!("mmol/L");
            if let (GlucoseUnit::MgDl, GlucoseReading::Value { mmol_l }) = (g.unit, g.reading) {
                value["extension"] = json!([{
                    "url": format!("{PHR}fiphr-ext-pq-translation"),
                    "valueQuantity": { "value": crate::diary::mg_dl(mmol_l) as f64, "unit": "mg/dl", "system": UCUM, "code": "mg/dL" }
                }]);
            }
            let shown = match g.reading {
                GlucoseReading::Value { mmol_l } => format!("{} mmol/l", fi_decimal(mmol_l, 1)),
                GlucoseReading::Low => "LO (alle 0,6 mmol/l)".to_owned(),
                GlucoseReading::High => "HI (yli 33,3 mmol/l)".to_owned(),
            };
            let mut o = base(
                e,
                subject,
                "fiphr-sd-bloodglucose",
                codes,
                &format!("Verensokeri {shown}, {}, {kind}", context_fi(g.context)),
            );
            o["valueQuantity"] = value;
            if let Some(h) = g.hours_after_meal {
                o["extension"] =
                    json!([{ "url": format!("{PHR}fiphr-unsignedint"), "valueUnsignedInt": h }]);
            }
            vec![o]
        }
        EntryData::BloodPressure(bp) => {
            let mut o = base(
                e,
                subject,
                "fiphr-sd-bloodpressure",
                vec![coding(
                    "85354-9",
                    "Blood pressure panel with all children optional",
                )],
                &format!("Verenpaine {}/{} mmHg", bp.systolic, bp.diastolic),
            );
            o["component"] = json!([
                component("8480-6", "Systolic blood pressure", bp.systolic),
                component("8462-4", "Diastolic blood pressure", bp.diastolic),
            ]);
            let mut out = vec![o];
            if let Some(p) = bp.pulse {
                out.push(heart_rate(
                    e,
                    subject,
                    p,
                    Some(Uuid::new_v5(&e.version_id, b"pulse")),
                ));
            }
            out
        }
        EntryData::Weight { kg } => {
            let mut o = base(
                e,
                subject,
                "fiphr-sd-bodyweight",
                vec![coding("29463-7", "Body weight")],
                &format!("Paino {} kg", fi_decimal(*kg, 1)),
            );
            o["valueQuantity"] = quantity(round(*kg, 2), "kg", "kg");
            vec![o]
        }
        EntryData::HeartRate { bpm } => vec![heart_rate(e, subject, *bpm, None)],
        EntryData::Temperature { celsius } => {
            let mut o = base(
                e,
                subject,
                "fiphr-sd-vitalsigns",
                vec![coding("8310-5", "Body temperature")],
                &format!("Ruumiinlämpö {} °C", fi_decimal(*celsius, 1)),
            );
            o["valueQuantity"] = quantity(round(*celsius, 2), "Cel", "Cel");
            vec![o]
        }
        EntryData::Symptom { .. }
        | EntryData::Medication { .. }
        | EntryData::Mood { .. }
        | EntryData::Note => Vec::new(),
    }
}

fn heart_rate(e: &Entry, subject: &str, bpm: u16, id: Option<Uuid>) -> Value {
    let mut o = base(
        e,
        subject,
        "fiphr-sd-vitalsigns",
        vec![coding("8867-4", "Heart rate")],
        &format!("Syke {bpm} /min"),
    );
    o["valueQuantity"] = quantity(bpm.into(), "/min", "/min");
    if let Some(id) = id {
        o["id"] = json!(id.to_string());
        o["identifier"] =
            json!([{ "system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{id}") }]);
        // A pulse taken with a BP reading carries no note of its own.
        if let Some(obj) = o.as_object_mut() {
            obj.remove("note");
        }
    }
    o
}

fn base(e: &Entry, subject: &str, profile: &str, codes: Vec<Value>, text: &str) -> Value {
    let patient = format!("Patient/{subject}");
    let mut o = json!({
        "resourceType": "Observation",
        "id": e.version_id.to_string(),
        "meta": { "profile": [format!("{PHR}{profile}")] },
        "language": "fi",
        "text": { "status": "generated", "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{}</div>", xml_escape(text)) },
        "identifier": [{ "system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{}", e.version_id) }],
        "status": "final",
        "category": [{ "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs",
            "display": "Vital Signs"
        }] }],
        "code": { "coding": codes },
        "subject": { "reference": patient },
        "effectiveDateTime": e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        "issued": e.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        // The citizen who recorded it (self-measured): Kanta PHR allows only a patient performer.
        "performer": [{ "reference": patient }],
    });
    if let Some(note) = e.note.as_deref().filter(|n| !n.trim().is_empty()) {
        o["note"] = json!([{ "text": note }]);
    }
    o
}

fn coding(code: &str, display: &str) -> Value {
    json!({ "system": LOINC, "code": code, "display": display })
}

fn quantity(value: f64, unit: &str, code: &str) -> Value {
    json!({ "value": value, "unit": unit, "system": UCUM, "code": code })
}

fn component(code: &str, display: &str, mmhg: u16) -> Value {
    json!({ "code": { "coding": [coding(code, display)] }, "valueQuantity": quantity(mmhg.into(), "mm[Hg]", "mm[Hg]") })
}

fn context_fi(c: MealContext) -> &'static str {
    match c {
        MealContext::Fasting => "paastoarvo",
        MealContext::BeforeMeal => "ennen ateriaa",
        MealContext::AfterMeal => "aterian jälkeen",
        MealContext::Bedtime => "iltapala/nukkumaan mennessä",
        MealContext::Night => "yöllä",
        MealContext::Other => "muu ajankohta",
    }
}

fn round(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (v * f).round() / f
}

fn fi_decimal(v: f64, decimals: usize) -> String {
    format!("{v:.decimals$}").replace('.', ",")
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
