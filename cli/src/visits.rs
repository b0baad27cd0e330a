//! `polku visits` and `polku serviceplan`: a home-care or outreach worker's day on this device.
//! Everything is local and works offline; `polku sync` shares it.

use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use polku_core::visits::Visit;
use polku_core::{Error, Polku};
use serde_json::json;

use crate::args::{OutreachCmd, ServiceplanCmd, VisitsCmd};
use crate::output::print_value;

fn date_arg(field: &str, s: Option<&str>, tz: Tz) -> Result<NaiveDate, Error> {
    match s {
        Some(s) => Ok(polku_core::visits::parse_date(field, s)?),
        None => Ok(chrono::Utc::now().with_timezone(&tz).date_naive()),
    }
}

fn hhmm(ms: i64, tz: Tz) -> String {
    tz.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%H:%M").to_string())
        .unwrap_or_default()
}

fn line(v: &Visit, tz: Tz) -> String {
    let mut flags = Vec::new();
    if !v.concerns.is_empty() {
        flags.push("URGENT CONCERN".to_owned());
    }
    if v.overdue {
        flags.push("overdue".to_owned());
    }
    if !v.conflicts.is_empty() {
        flags.push(format!("{} conflict(s)", v.conflicts.len()));
    }
    if let Some(to) = &v.assigned_to {
        flags.push(format!("handed to {to}"));
    }
    let state = match (&v.state[..], v.arrivals.first(), v.finished_ms) {
        ("finished", Some(a), Some(f)) => format!("finished {}–{}", hhmm(a.at_ms, tz), hhmm(f, tz)),
        ("arrived", Some(a), _) => format!("arrived {}", hhmm(a.at_ms, tz)),
        ("not_done", ..) => format!("not done: {}", v.not_done_reason.as_deref().unwrap_or("-")),
        (s, ..) => s.to_owned(),
    };
    format!(
        "{} {}–{}  {}  {}  [{}] {} task(s) left{}\n    {}",
        v.date,
        v.from.format("%H:%M"),
        v.to.format("%H:%M"),
        v.subject,
        v.name,
        state,
        v.tasks_left,
        if flags.is_empty() {
            String::new()
        } else {
            format!("  ({})", flags.join(", "))
        },
        v.id
    )
}

fn show(v: &Visit, tz: Tz) {
    println!("{}", line(v, tz));
    for t in &v.tasks {
        println!(
            "    task {:<16} {:<18} {}{}",
            t.code,
            t.outcome.as_deref().unwrap_or("open"),
            t.name,
            t.note
                .as_deref()
                .map(|n| format!(" — {n}"))
                .unwrap_or_default()
        );
    }
    for a in &v.arrivals {
        println!("    arrived {} by {}", hhmm(a.at_ms, tz), a.author);
    }
    for n in v.notes.iter().chain(&v.concerns) {
        println!(
            "    {}{} {} by {}: {}",
            n.kind,
            n.category
                .as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default(),
            hhmm(n.at_ms, tz),
            n.author,
            n.note.as_deref().unwrap_or("")
        );
    }
    if let Some(n) = &v.handover_note {
        println!("    handover note: {n}");
    }
    for c in &v.conflicts {
        println!("    CONFLICT about {}:", c.about);
        for o in &c.outcomes {
            println!(
                "      {} {} by {} at {} (event {})",
                o.kind,
                o.outcome.as_deref().or(o.reason.as_deref()).unwrap_or(""),
                o.author,
                hhmm(o.at_ms, tz),
                o.event_id
            );
        }
    }
}

pub(crate) fn run(p: &Polku, cmd: &VisitsCmd, json: bool, tz: Tz) -> Result<(), Error> {
    let done = |v: Visit| {
        if json {
            print_value(&json!({ "visit": v }));
        } else {
            show(&v, tz);
        }
        Ok(())
    };
    match cmd {
        VisitsCmd::Today { date } => {
            let day = p.worker_day(date_arg("date", date.as_deref(), tz)?)?;
            if json {
                print_value(&json!({ "visits": day }));
            } else if day.is_empty() {
                println!(
                    "No visits (a client's service plan makes them: `polku serviceplan set`)."
                );
            } else {
                for v in &day {
                    println!("{}", line(v, tz));
                }
            }
            Ok(())
        }
        VisitsCmd::Plan { days, from } => {
            if !(1..=31).contains(days) {
                return Err(Error::validation("days", days, "1–31"));
            }
            let from = date_arg("from", from.as_deref(), tz)?;
            let mut all = p.visits_between(from, *days, true)?;
            all.sort_by_key(|v| (v.date, v.from, v.subject.clone()));
            if json {
                print_value(&json!({ "visits": all }));
            } else {
                for v in &all {
                    println!("{}", line(v, tz));
                }
            }
            Ok(())
        }
        VisitsCmd::Tasks => {
            let (tasks, notes) = (p.visit_tasks().all(), p.visit_note_categories().all());
            if json {
                print_value(&json!({ "tasks": tasks, "note_categories": notes }));
            } else {
                println!("Tasks:");
                for t in tasks {
                    println!("  {:<16} {}", t.code, t.name);
                }
                println!("Note categories:");
                for t in notes {
                    println!("  {:<16} {}", t.code, t.name);
                }
            }
            Ok(())
        }
        VisitsCmd::Show { visit } => done(p.for_visit(visit)?.visits().visit(visit)?),
        VisitsCmd::Arrive { visit } => done(p.for_visit(visit)?.visits().arrive(visit)?),
        VisitsCmd::Finish { visit } => done(p.for_visit(visit)?.visits().finish(visit)?),
        VisitsCmd::Task {
            visit,
            task,
            outcome,
            note,
        } => done(p.for_visit(visit)?.visits().task(
            visit,
            task,
            &outcome.replace('-', "_"),
            note.as_deref(),
        )?),
        VisitsCmd::Note {
            visit,
            text,
            category,
        } => done(
            p.for_visit(visit)?
                .visits()
                .note(visit, text, category.as_deref())?,
        ),
        VisitsCmd::Concern { visit, text } => {
            let raised = p.raise_concern(visit, text)?;
            if json {
                print_value(
                    &json!({ "visit": raised.visit, "message": raised.message, "message_error": raised.message_error }),
                );
            } else {
                show(&raised.visit, tz);
                match (&raised.message, &raised.message_error) {
                    (Some(_), _) => println!("Written into the care team's conversation; sent with the next `polku sync`."),
                    (None, Some(code)) => println!("Not written into the conversation ({code}); the concern is on the visit."),
                    _ => {}
                }
            }
            Ok(())
        }
        VisitsCmd::Measure { visit, entry } => {
            let e = crate::entry::new_entry(entry)?;
            done(p.for_visit(visit)?.visits().measure(visit, e)?)
        }
        VisitsCmd::NotDone {
            visit,
            reason,
            note,
        } => done(
            p.for_visit(visit)?
                .visits()
                .not_done(visit, reason, note.as_deref())?,
        ),
        VisitsCmd::Assign { visit, to } => done(p.for_visit(visit)?.visits().assign(visit, to)?),
        VisitsCmd::Handover { visit, to, note } => {
            done(p.for_visit(visit)?.visits().handover(visit, to, note)?)
        }
        VisitsCmd::Resolve {
            visit,
            about,
            keep,
            note,
        } => done(
            p.for_visit(visit)?
                .visits()
                .resolve(visit, about, keep, note)?,
        ),
    }
}

pub(crate) fn plan(p: &Polku, cmd: &ServiceplanCmd, json: bool, tz: Tz) -> Result<(), Error> {
    match cmd {
        ServiceplanCmd::Show { client, date } => {
            let view = p.for_subject(client)?;
            let date = date_arg("date", date.as_deref(), tz)?;
            let current = view.visits().plan(date)?;
            let all = view.visits().plans()?;
            if json {
                print_value(&json!({ "in_effect": current, "versions": all }));
            } else {
                match current {
                    None => println!("No service plan in effect on {date}."),
                    Some(v) => {
                        println!(
                            "In effect on {date}: version from {} by {}",
                            v.effective_from, v.author
                        );
                        for pv in &v.plan.visits {
                            println!(
                                "  {:<10} {}–{}  {:<20} {}  tasks: {}",
                                pv.slot,
                                pv.from,
                                pv.to,
                                pv.name,
                                pv.days.join(","),
                                pv.tasks.join(", ")
                            );
                        }
                    }
                }
                println!("{} version(s) in all.", all.len());
            }
            Ok(())
        }
        ServiceplanCmd::Set { client, file, from } => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| Error::Io(format!("{}: {e}", file.display())))?;
            let from = date_arg("from", from.as_deref(), tz)?;
            let v = p.for_subject(client)?.visits().set_plan(&text, from)?;
            if json {
                print_value(&json!({ "plan": v }));
            } else {
                println!(
                    "Service plan of {client} set from {} ({} visit(s)); shared with the next `polku sync`.",
                    v.effective_from,
                    v.plan.visits.len()
                );
            }
            Ok(())
        }
    }
}

pub(crate) fn outreach(p: &Polku, cmd: &OutreachCmd, json: bool, tz: Tz) -> Result<(), Error> {
    let print = |list: &[polku_core::visits::Contact]| {
        if json {
            print_value(&json!({ "contacts": list }));
        } else if list.is_empty() {
            println!("No contacts.");
        } else {
            for c in list {
                let when = tz
                    .timestamp_millis_opt(c.at_ms)
                    .single()
                    .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_default();
                println!(
                    "{when}  {}  {}{}{}{}",
                    c.subject,
                    c.kind.replace('_', " "),
                    c.setting
                        .as_deref()
                        .map(|s| format!(" at {s}"))
                        .unwrap_or_default(),
                    c.follow_up
                        .map(|d| format!(", follow-up {d}"))
                        .unwrap_or_default(),
                    c.referral
                        .as_deref()
                        .map(|r| format!(", referred: {r}"))
                        .unwrap_or_default(),
                );
                if let Some(n) = &c.note {
                    println!("    {n}");
                }
                if !c.questionnaires.is_empty() {
                    println!("    questionnaires: {}", c.questionnaires.join(", "));
                }
            }
        }
    };
    match cmd {
        OutreachCmd::Contact {
            student,
            kind,
            setting,
            note,
            questionnaires,
            follow_up,
            referral,
        } => {
            let follow_up = follow_up
                .as_deref()
                .map(|d| polku_core::visits::parse_date("follow_up", d))
                .transpose()?;
            let c = p
                .for_subject(student)?
                .outreach()
                .record(polku_core::visits::NewContact {
                    kind: kind.replace('-', "_"),
                    setting: setting.clone(),
                    note: note.clone(),
                    questionnaires: questionnaires.clone(),
                    follow_up,
                    referral: referral.clone(),
                })?;
            if json {
                print_value(&json!({ "contact": c }));
            } else {
                println!(
                    "Recorded contact {} with {student}; shared with the next `polku sync`.",
                    c.id
                );
            }
        }
        OutreachCmd::List { student } => print(&p.for_subject(student)?.outreach().contacts()?),
        OutreachCmd::FollowUps { until } => {
            print(&p.follow_ups(date_arg("until", until.as_deref(), tz)?)?)
        }
    }
    Ok(())
}
