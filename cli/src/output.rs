//! Human-readable and JSON output.

use chrono::{DateTime, Utc};
use polku_core::analytics::{BpReport, GlucoseReport, GlucoseSummary};
use polku_core::diary::*;
use polku_core::import::ImportReport;
use polku_core::Error;
use serde_json::{json, Value};

pub fn error_json(e: &Error) -> Value {
    let mut err = json!({ "code": e.code(), "message": e.to_string() });
    match e {
        Error::Validation {
            field,
            value,
            allowed,
        } => {
            err["field"] = json!(field);
            err["value"] = json!(value);
            err["allowed"] = json!(allowed);
        }
        Error::Import(problems) => err["problems"] = json!(problems),
        Error::Corrupt { moved_to } => err["moved_to"] = json!(moved_to),
        Error::IdentityChanged { devices } => err["devices"] = json!(devices),
        Error::Server { status, code, .. } => {
            err["status"] = json!(status);
            err["server_code"] = json!(code);
        }
        _ => {}
    }
    json!({ "error": err })
}

pub fn error_text(e: &Error) -> String {
    match e {
        Error::Import(problems) => {
            let mut s = format!(
                "import rejected, nothing was imported ({} problem(s)):",
                problems.len()
            );
            for p in problems {
                s.push_str(&format!("\n  line {}: {}", p.line, p.message));
            }
            s
        }
        Error::WrongKey { .. } => {
            "wrong passphrase for this profile (the database was not changed)".into()
        }
        other => other.to_string(),
    }
}

pub fn print_value(v: &serde_json::Value) {
    print_json(v)
}

fn print_json(v: &impl serde::Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    );
}

pub fn describe(d: &EntryData, note: Option<&str>) -> String {
    let mut s = match d {
        EntryData::Glucose(g) => {
            let v = match g.reading {
                GlucoseReading::Value { mmol_l } => match g.unit {
                    GlucoseUnit::MmolL => format!("{mmol_l:.1} mmol/L"),
                    GlucoseUnit::MgDl => format!(
                        "{} mg/dL ({mmol_l:.1} mmol/L)",
                        polku_core::diary::mg_dl(mmol_l)
                    ),
                },
                GlucoseReading::Low => "LO (below 0.6 mmol/L)".into(),
                GlucoseReading::High => "HI (above 33.3 mmol/L)".into(),
            };
            let ctx = match (g.context, g.hours_after_meal) {
                (MealContext::AfterMeal, Some(h)) => format!("after meal +{h} h"),
                (c, _) => format!("{c:?}").to_lowercase(),
            };
            format!("glucose      {v}, {ctx}, {}", g.source.as_str())
        }
        EntryData::BloodPressure(bp) => {
            let mut s = format!("bp           {}/{} mmHg", bp.systolic, bp.diastolic);
            if let Some(p) = bp.pulse {
                s.push_str(&format!(", pulse {p}"));
            }
            if let Some(series) = bp.series {
                s.push_str(&format!(", {}", series.as_str()));
            }
            s
        }
        EntryData::Weight { kg } => format!("weight       {kg:.1} kg"),
        EntryData::HeartRate { bpm } => format!("pulse        {bpm} /min"),
        EntryData::Temperature { celsius } => format!("temperature  {celsius:.1} °C"),
        EntryData::Symptom { code, severity } => format!(
            "symptom      {} ({}), severity {severity}/10",
            code.as_str().replace('_', "-"),
            code.label_fi()
        ),
        EntryData::Medication { name, dose } => format!(
            "medication   {name}{}",
            dose.as_deref().map(|d| format!(" {d}")).unwrap_or_default()
        ),
        EntryData::Mood { score } => format!("mood         {score}/5"),
        EntryData::Note => "note        ".to_owned(),
    };
    if let Some(n) = note {
        s.push_str(&format!("  “{n}”"));
    }
    s
}

fn line(e: &Entry) -> String {
    let state = match (&e.deleted, e.is_head) {
        (Some(d), _) => format!("  [deleted: {}]", d.reason),
        (None, false) => "  [superseded]".into(),
        _ => String::new(),
    };
    format!(
        "{}  v{}  {}  {}{state}",
        e.at.format("%Y-%m-%d %H:%M %:z"),
        e.version,
        describe(&e.data, e.note.as_deref()),
        e.id
    )
}

pub fn entry(e: &Entry, json_out: bool) {
    if json_out {
        print_json(e);
    } else {
        println!("{}", line(e));
    }
}

/// `next`: `Some(cursor)` for a paged listing.
pub fn entries(es: &[Entry], next: Option<Option<&str>>, json_out: bool) {
    if json_out {
        match next {
            Some(n) => print_json(&json!({ "entries": es, "next": n })),
            None => print_json(&es),
        }
        return;
    }
    if es.is_empty() {
        println!("(no entries)");
    }
    for e in es {
        println!("{}", line(e));
    }
    if let Some(Some(n)) = next {
        println!("(more: --after {n})");
    }
}

pub fn import_report(r: &ImportReport, json_out: bool) {
    if json_out {
        print_json(r);
    } else {
        println!(
            "Imported {} new readings ({} already present) from a {} file; {} other rows skipped.",
            r.added,
            r.duplicates,
            r.format.as_str(),
            r.skipped_other_rows
        );
    }
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or("–".into(), |x| format!("{x:.decimals$}"))
}

fn summary_lines(title: &str, s: &GlucoseSummary) -> Vec<String> {
    let mut out = vec![format!("{title}: {} readings", s.readings)];
    if let Some(suf) = &s.sufficiency {
        out[0].push_str(&format!(
            ", {:.0} % of possible captured over {:.1} days — {}",
            suf.percent_captured,
            suf.period_days,
            if suf.sufficient {
                "sufficient".to_owned()
            } else {
                format!("insufficient: {}", suf.reason.as_deref().unwrap_or(""))
            }
        ));
    }
    out.push(format!(
        "  mean {} mmol/L, SD {}, CV {} % (target ≤ 36 %)",
        opt(s.mean_mmol_l, 1),
        opt(s.sd_mmol_l, 1),
        opt(s.cv_percent, 0)
    ));
    if let Some(g) = &s.gmi {
        out.push(format!(
            "  GMI {:.1} % ({:.0} mmol/mol)",
            g.percent, g.mmol_mol
        ));
    } else if s.sufficiency.as_ref().is_some_and(|x| !x.sufficient) {
        out.push("  GMI withheld: the data are insufficient for it".to_owned());
    }
    let b = &s.bands;
    let what = if s.basis == polku_core::analytics::Basis::TimeWeighted {
        "of time"
    } else {
        "of readings"
    };
    out.push(format!(
        "  very high >13.9   {:5.1} % {what} (target < 5 %)",
        b.very_high
    ));
    out.push(format!(
        "  high 10.1–13.9    {:5.1} %      (above range together < 25 %)",
        b.high
    ));
    out.push(format!(
        "  in range 3.9–10.0 {:5.1} %      (target > 70 %)",
        b.in_range
    ));
    out.push(format!(
        "  low 3.0–3.8       {:5.1} %      (below range together < 4 %)",
        b.low
    ));
    out.push(format!(
        "  very low <3.0     {:5.1} %      (target < 1 %)",
        b.very_low
    ));
    if s.lo_markers + s.hi_markers > 0 {
        out.push(format!(
            "  LO markers {}, HI markers {} (counted in the outer bands)",
            s.lo_markers, s.hi_markers
        ));
    }
    if s.basis == polku_core::analytics::Basis::TimeWeighted {
        let l1 = s.hypo_events.iter().filter(|e| e.level == 1).count();
        let l2 = s.hypo_events.iter().filter(|e| e.level == 2).count();
        out.push(format!(
            "  hypoglycaemic events: {l1} below 3.9, of which {l2} reached below 3.0 for ≥ 15 min"
        ));
        for e in &s.hypo_events {
            let start = polku_core::time::wall_clock(e.start_ms, e.start_offset_s);
            out.push(format!(
                "    level {} {} for {:.0} min, nadir {}",
                e.level,
                start.format("%Y-%m-%d %H:%M"),
                e.duration_minutes,
                e.nadir_mmol_l
                    .map_or("LO".into(), |v| format!("{v:.1} mmol/L"))
            ));
        }
        if !s.agp.is_empty() {
            out.push("  AGP (local hour: 5 / 25 / 50 / 75 / 95th percentile, mmol/L)".into());
            for h in &s.agp {
                out.push(format!(
                    "    {:02}  {:4.1} {:4.1} {:4.1} {:4.1} {:4.1}",
                    h.hour, h.p5, h.p25, h.p50, h.p75, h.p95
                ));
            }
        }
    } else {
        out.push(format!(
            "  readings below 3.9: {}, below 3.0: {}",
            s.readings_below_3_9, s.readings_below_3_0
        ));
    }
    out
}

pub fn glucose_text(r: &GlucoseReport) -> String {
    let mut out = vec![format!(
        "Glucose {} – {}",
        r.from.format("%Y-%m-%d %H:%M UTC"),
        r.to.format("%Y-%m-%d %H:%M UTC")
    )];
    match &r.cgm {
        Some(s) => out.extend(summary_lines("CGM (time-weighted)", s)),
        None => out.push("CGM: no readings".into()),
    }
    match &r.meter {
        Some(s) => out.extend(summary_lines("Meter and manual (per reading)", s)),
        None => out.push("Meter: no readings".into()),
    }
    out.join("\n")
}

pub fn glucose_report(r: &GlucoseReport, json_out: bool) {
    if json_out {
        print_json(r);
    } else {
        println!("{}", glucose_text(r));
    }
}

pub fn bp_text(r: &BpReport, from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let mut out = vec![format!(
        "Blood pressure {} – {}: {} readings",
        from.format("%Y-%m-%d"),
        to.format("%Y-%m-%d"),
        r.readings
    )];
    if let (Some(s), Some(d)) = (r.mean_systolic, r.mean_diastolic) {
        out.push(format!("  mean of all readings {s:.0}/{d:.0} mmHg"));
    }
    out.push(format!(
        "  days with morning and evening double measurements: {}",
        r.qualifying_days
    ));
    match &r.home_series {
        Some(s) => {
            out.push(format!(
                "  home series {} – {} ({} days, {} readings{}): mean {:.0}/{:.0} mmHg — {}",
                s.first_day,
                s.last_day,
                s.days,
                s.readings,
                if s.complete { "" } else { ", incomplete: 4–7 days needed" },
                s.mean_systolic,
                s.mean_diastolic,
                if s.at_target { "below the home target 135/85" } else { "at or above the home target 135/85" }
            ));
            if s.at_target && !s.at_high_risk_target {
                out.push("  (above the high-risk target 125/80)".into());
            }
        }
        None => out.push("  no home series yet (measure twice in the morning and twice in the evening, 4–7 days)".into()),
    }
    out.join("\n")
}

pub fn bp_report(r: &BpReport, from: DateTime<Utc>, to: DateTime<Utc>, json_out: bool) {
    if json_out {
        print_json(r);
    } else {
        println!("{}", bp_text(r, from, to));
    }
}

pub fn form(f: &polku_core::questionnaire::Form, json_out: bool) {
    if json_out {
        print_json(f);
        return;
    }
    println!("{}\n{}\n", f.title, f.instructions);
    for (n, i) in f.items.iter().enumerate() {
        println!("{}. {}", n + 1, i.text);
        for o in &i.options {
            println!("     {} = {}", o.value, o.text);
        }
    }
    println!("\nSource: {}", f.scoring_source);
    println!(
        "Wording: {} ({}){}",
        f.version,
        f.wording_source,
        if f.validated {
            ""
        } else {
            "\nNOTICE: not a validated version of this questionnaire"
        }
    );
}

pub fn wordings_checked(checked: &[(String, polku_core::questionnaire::Wording)], json_out: bool) {
    use polku_core::questionnaire::wording::lang_code;
    if json_out {
        let v: Vec<Value> = checked
            .iter()
            .map(|(file, w)| json!({ "file": file, "instrument": w.instrument, "language": lang_code(w.language), "version": w.version, "validated": w.validated }))
            .collect();
        print_json(&v);
        return;
    }
    for (file, w) in checked {
        println!(
            "{file}: ok, {} in {}, version {}{}",
            w.instrument.as_str(),
            lang_code(w.language),
            w.version,
            if w.validated {
                ", validated"
            } else {
                ", NOT marked validated"
            }
        );
    }
}

pub fn response(r: &polku_core::questionnaire::Response, json_out: bool) {
    if json_out {
        print_json(r);
        return;
    }
    let ins = r.scored.instrument.instrument();
    let label = ins
        .bands
        .iter()
        .find(|b| b.code == r.scored.band)
        .map(|b| b.label.en)
        .unwrap_or("");
    println!(
        "{}  {}  {} / {} ({label})  answers {:?}  {}",
        r.authored.format("%Y-%m-%d %H:%M %:z"),
        r.scored.instrument.as_str(),
        r.scored.total,
        r.scored.max_total,
        r.scored.answers,
        r.id
    );
    // The flags' texts are the care team's: `safety::print_raised` prints what the reader
    // should see (the person's guidance, or the clinical flag with --subject).
}
