//! `polku pathway ...`: care pathways from the terminal.

use polku_core::pathway::{Actor, Progress};
use polku_core::questionnaire::Lang;
use polku_core::{Error, Polku};
use serde_json::json;
use uuid::Uuid;

use crate::args::PathwayCmd;

fn actor(professional: bool) -> Actor {
    if professional {
        Actor::Professional
    } else {
        Actor::Citizen
    }
}

fn print_json(v: &impl serde::Serialize) -> Result<(), Error> {
    println!(
        "{}",
        serde_json::to_string_pretty(v).map_err(|e| Error::Io(e.to_string()))?
    );
    Ok(())
}

fn enrollment_id(s: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(s.trim()).map_err(|_| {
        Error::validation(
            "enrollment",
            s,
            "an enrollment id as printed by `polku pathway steps`",
        )
    })
}

/// The enrollment given, or the only one holding `step`.
fn enrollment_for(p: &Polku, given: Option<&str>, step: &str) -> Result<Uuid, Error> {
    if let Some(id) = given {
        return enrollment_id(id);
    }
    let paths = p.pathways();
    let mut holding = Vec::new();
    for e in paths.enrollments()? {
        if paths
            .progress(e.id)?
            .steps
            .iter()
            .any(|s| s.step_id == step)
        {
            holding.push(e.id);
        }
    }
    match holding.as_slice() {
        [one] => Ok(*one),
        [] => Err(Error::NotFound {
            what: "enrollment with step",
            id: step.to_owned(),
        }),
        _ => Err(Error::validation(
            "enrollment",
            "(not given)",
            "--enrollment ID: several enrollments have this step",
        )),
    }
}

pub fn run(p: &Polku, cmd: &PathwayCmd, json_out: bool) -> Result<(), Error> {
    let paths = p.pathways();
    match cmd {
        PathwayCmd::ListDefinitions { lang } => {
            let lang = Lang::parse(lang)?;
            let defs = paths.definitions();
            if json_out {
                return print_json(&defs);
            }
            for d in defs {
                println!(
                    "{}@{}  {}{}\n    {}",
                    d.id,
                    d.version,
                    d.title.get(lang),
                    if d.self_enroll {
                        ""
                    } else {
                        "  (assigned by the care team)"
                    },
                    d.description.get(lang)
                );
            }
            Ok(())
        }
        PathwayCmd::Enroll { id, professional } => {
            let e = paths.enroll(id, actor(*professional))?;
            if json_out {
                return print_json(&e);
            }
            println!(
                "Enrolled in {}@{} ({})",
                e.definition_id, e.definition_version, e.id
            );
            Ok(())
        }
        PathwayCmd::Steps { enrollment, lang } => {
            let lang = Lang::parse(lang)?;
            let ids = match enrollment {
                Some(e) => vec![enrollment_id(e)?],
                None => paths.enrollments()?.into_iter().map(|e| e.id).collect(),
            };
            let all = ids
                .into_iter()
                .map(|id| paths.progress(id))
                .collect::<Result<Vec<_>, _>>()?;
            if json_out {
                return print_json(&all);
            }
            for pr in &all {
                print_progress(pr, p.time_zone(), lang);
            }
            if all.is_empty() {
                println!("(no enrollments: see `polku pathway list-definitions`)");
            }
            Ok(())
        }
        PathwayCmd::Caseload { lang } => {
            let lang = Lang::parse(lang)?;
            let all = p.caseload()?;
            if json_out {
                return print_json(&all);
            }
            print_caseload(&all, lang);
            if all.is_empty() {
                println!("(nobody on this device is enrolled in a pathway)");
            }
            Ok(())
        }
        PathwayCmd::Complete {
            step,
            enrollment,
            professional,
        } => {
            let id = enrollment_for(p, enrollment.as_deref(), step)?;
            let pr = paths.complete(id, step, actor(*professional))?;
            if json_out {
                return print_json(&pr);
            }
            print_progress(&pr, p.time_zone(), Lang::Fi);
            Ok(())
        }
        PathwayCmd::Skip {
            step,
            reason,
            enrollment,
        } => {
            let id = enrollment_for(p, enrollment.as_deref(), step)?;
            let pr = paths.skip(id, step, reason)?;
            if json_out {
                return print_json(&pr);
            }
            print_progress(&pr, p.time_zone(), Lang::Fi);
            Ok(())
        }
        PathwayCmd::Migrate {
            enrollment,
            to_version,
        } => {
            let pr = paths.migrate(enrollment_id(enrollment)?, *to_version)?;
            if json_out {
                return print_json(&pr);
            }
            print_progress(&pr, p.time_zone(), Lang::Fi);
            Ok(())
        }
        PathwayCmd::Reminders { days } => {
            if *days > 60 {
                return Err(Error::validation("days", days, "1–60"));
            }
            let r = paths.reminders(chrono::Duration::days(i64::from(*days)))?;
            let tz = p.time_zone();
            if json_out {
                let v: Vec<_> = r
                    .iter()
                    .map(|(e, x)| json!({ "enrollment": e, "step": x.step_id, "at": polku_core::time::from_ms(x.at_ms).with_timezone(&tz).fixed_offset().to_rfc3339() }))
                    .collect();
                return print_json(&v);
            }
            for (_, x) in &r {
                println!(
                    "{}  {}",
                    polku_core::time::from_ms(x.at_ms)
                        .with_timezone(&tz)
                        .format("%Y-%m-%d %H:%M"),
                    x.step_id
                );
            }
            Ok(())
        }
    }
}

pub(crate) fn print_progress(pr: &Progress, tz: chrono_tz::Tz, lang: Lang) {
    let when = |ms: Option<i64>| {
        ms.map(|m| {
            polku_core::time::from_ms(m)
                .with_timezone(&tz)
                .format("%Y-%m-%d")
                .to_string()
        })
        .unwrap_or_default()
    };
    println!(
        "{}@{}  {}  ({}/{} steps finished)",
        pr.enrollment.definition_id,
        pr.enrollment.definition_version,
        pr.enrollment.id,
        pr.finished,
        pr.total
    );
    if pr.latest_version > pr.enrollment.definition_version {
        println!(
            "  version {} is published: polku pathway migrate {} --to-version {}",
            pr.latest_version, pr.enrollment.id, pr.latest_version
        );
    }
    for s in &pr.steps {
        let progress = s
            .progress
            .map(|(a, b)| format!(" {a}/{b}"))
            .unwrap_or_default();
        let due = if s.state.is_open() && s.due_ms.is_some() {
            format!(" due {}", when(s.due_ms))
        } else {
            String::new()
        };
        println!("  {:<12} {}{progress}{due}", s.state.as_str(), s.step_id);
    }
    print_flags(&pr.flags, "  ", lang);
}

/// The care team's list, a few lines per enrollment.
pub(crate) fn print_caseload(all: &[polku_core::pathway::ClientSummary], lang: Lang) {
    for c in all {
        let mark = if c.urgent() {
            "URGENT "
        } else if !c.overdue_steps.is_empty() {
            "OVERDUE"
        } else {
            "       "
        };
        match &c.enrollment {
            Some(e) => println!(
                "{mark} {}  {}@{}  {}/{} steps finished",
                c.subject, e.definition_id, e.definition_version, c.finished, c.total
            ),
            None => println!("{mark} {}  (no pathway)", c.subject),
        }
        if c.visit_concerns > 0 {
            println!(
                "        URGENT: {} concern(s) raised at visits this week (`polku visits today`)",
                c.visit_concerns
            );
        }
        if c.unread_messages > 0 {
            println!(
                "        {} unread message(s): polku messages read {}",
                c.unread_messages, c.subject
            );
        }
        // One line per rule: a night of sensor readings below 3.0 is one matter (the newest
        // flag's id acknowledges the earlier ones too).
        let mut rules: Vec<polku_core::safety::Rule> =
            c.safety_flags.iter().map(|f| f.rule).collect();
        rules.sort_by_key(|r| r.code());
        rules.dedup();
        for rule in rules {
            let of: Vec<_> = c.safety_flags.iter().filter(|f| f.rule == rule).collect();
            let Some(newest) = of.iter().max_by_key(|f| f.at) else {
                continue;
            };
            let count = if of.len() > 1 {
                format!(" ×{}", of.len())
            } else {
                String::new()
            };
            println!(
                "        URGENT SAFETY {}{count} ({}, {}): {}  [{}]",
                rule.code(),
                newest.detail,
                newest.at.format("%Y-%m-%d %H:%M"),
                rule.care_team_text().get(lang),
                newest.id
            );
        }
        if !c.open_steps.is_empty() {
            println!("        open: {}", c.open_steps.join(", "));
        }
        if !c.overdue_steps.is_empty() {
            println!("        overdue: {}", c.overdue_steps.join(", "));
        }
        if !c.expired_steps.is_empty() {
            println!("        expired: {}", c.expired_steps.join(", "));
        }
        print_flags(&c.flags, "        ", lang);
    }
}

fn print_flags(flags: &[polku_core::pathway::RaisedFlag], indent: &str, lang: Lang) {
    for f in flags {
        println!(
            "{indent}{}FLAG {}: {}",
            if f.urgent { "URGENT " } else { "" },
            f.code,
            f.message.get(lang)
        );
    }
}
