//! `polku flags` and the guidance printed after an answer or a measurement that raised an urgent
//! flag. Two audiences: on the person's own record the person's guidance (what to do now, whom
//! to call), with `--subject` (a professional's device) the care team's clinical text.

use polku_core::questionnaire::Lang;
use polku_core::safety::{Guidance, SafetyFlag};
use polku_core::{Error, Polku};
use serde_json::{json, Value};

use crate::args::FlagsCmd;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audience {
    /// The person whose record this is.
    Person,
    /// A professional acting on someone else's record (`--subject`).
    CareTeam,
}

/// The language of the person's guidance after `diary add` and `import`: `POLKU_LANG`, else
/// Finnish (questionnaires use the language the form was shown in).
pub(crate) fn guidance_lang() -> Lang {
    std::env::var("POLKU_LANG")
        .ok()
        .and_then(|l| Lang::parse(&l).ok())
        .unwrap_or(Lang::Fi)
}

/// Prints what the new `flags` mean for `audience`: nothing when there are none.
pub(crate) fn print_raised(p: &Polku, flags: &[SafetyFlag], audience: Audience, lang: Lang) {
    match audience {
        Audience::Person => {
            for g in p.safety().guidance(flags, lang) {
                print_guidance(&g);
            }
        }
        Audience::CareTeam => {
            for f in flags {
                println!(
                    "  URGENT FLAG {} ({}): {}",
                    f.rule.code(),
                    f.detail,
                    f.rule.care_team_text().get(lang)
                );
            }
        }
    }
}

fn print_guidance(g: &Guidance) {
    println!();
    println!("!! {}", g.title);
    for (i, s) in g.steps.iter().enumerate() {
        println!("   {}. {s}", i + 1);
    }
}

/// `value` (a printed entry or response) with what its new `flags` mean for `audience`, under
/// `safety`: the person's guidance, or the care team's flags. Unchanged when there are none.
pub(crate) fn with_raised(
    mut value: Value,
    p: &Polku,
    flags: &[SafetyFlag],
    audience: Audience,
    lang: Lang,
) -> Value {
    if flags.is_empty() {
        return value;
    }
    let codes: Vec<&str> = flags.iter().map(|f| f.rule.code()).collect();
    value["safety"] = match audience {
        Audience::Person => json!({
            "flags": codes,
            "guidance": p.safety().guidance(flags, lang),
        }),
        Audience::CareTeam => json!({
            "flags": codes,
            "care_team": flags.iter().map(|f| care_team_json(f, lang)).collect::<Vec<_>>(),
        }),
    };
    value
}

fn care_team_json(f: &SafetyFlag, lang: Lang) -> Value {
    let mut v = serde_json::to_value(f).unwrap_or(Value::Null);
    v["code"] = f.rule.code().into();
    v["message"] = f.rule.care_team_text().get(lang).into();
    v["source_of_rule"] = f.rule.source().into();
    v
}

/// `flags rules`: what every rule checks and both of its texts. It needs no profile (main.rs
/// answers it before opening one).
pub(crate) fn rules(lang: Lang, json_out: bool) {
    use polku_core::safety::{guidance::guidance, Numbers, Rule};
    let numbers = Numbers::default();
    if json_out {
        let out: Vec<Value> = Rule::ALL
            .iter()
            .map(|r| {
                json!({
                    "code": r.code(),
                    "threshold": r.threshold(),
                    "source": r.source(),
                    "care_team": r.care_team_text().get(lang),
                    "person": guidance(r.advice(), lang, &numbers),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return;
    }
    for r in Rule::ALL {
        let g = guidance(r.advice(), lang, &numbers);
        println!("{}: {}", r.code(), r.threshold());
        println!("  source: {}", r.source());
        println!("  care team: {}", r.care_team_text().get(lang));
        println!("  person: {}", g.title);
        g.steps.iter().for_each(|s| println!("    - {s}"));
    }
}

pub(crate) fn run(
    p: &Polku,
    cmd: &FlagsCmd,
    json_out: bool,
    audience: Audience,
) -> Result<(), Error> {
    match cmd {
        FlagsCmd::Rules { lang } => {
            rules(Lang::parse(lang)?, json_out);
            Ok(())
        }
        FlagsCmd::List { all, lang } => {
            let lang = Lang::parse(lang)?;
            let flags = p.safety().flags(*all)?;
            if json_out {
                let out: Vec<Value> = flags
                    .iter()
                    .map(|f| match audience {
                        Audience::CareTeam => care_team_json(f, lang),
                        Audience::Person => {
                            let mut v = serde_json::to_value(f).unwrap_or(Value::Null);
                            v["code"] = f.rule.code().into();
                            v
                        }
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&out).map_err(|e| Error::Io(e.to_string()))?
                );
                return Ok(());
            }
            if flags.is_empty() {
                println!("(no {}safety flags)", if *all { "" } else { "open " });
            }
            for f in &flags {
                print_flag(f, audience, lang);
            }
            Ok(())
        }
        FlagsCmd::Acknowledge { flag, note } => {
            let id = uuid::Uuid::parse_str(flag.trim()).map_err(|_| {
                Error::validation("flag", flag, "a flag id from `polku flags list`")
            })?;
            let done = p.safety().acknowledge(id, note)?;
            if json_out {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &done
                            .iter()
                            .map(|f| care_team_json(f, Lang::En))
                            .collect::<Vec<_>>()
                    )
                    .map_err(|e| Error::Io(e.to_string()))?
                );
                return Ok(());
            }
            println!("Acknowledged {} flag(s):", done.len());
            for f in &done {
                print_flag(f, Audience::CareTeam, Lang::En);
            }
            Ok(())
        }
    }
}

fn print_flag(f: &SafetyFlag, audience: Audience, lang: Lang) {
    let state = if f.is_open() { "OPEN" } else { "acknowledged" };
    let text = match audience {
        Audience::CareTeam => f.rule.care_team_text().get(lang).to_owned(),
        Audience::Person => String::new(),
    };
    println!(
        "{}  {:<12} {:<18} {}  {}  {}",
        f.at.format("%Y-%m-%d %H:%M %:z"),
        state,
        f.rule.code(),
        f.detail,
        f.id,
        text
    );
    for a in &f.acknowledgements {
        println!(
            "    acknowledged by {} at {}: {}",
            a.by,
            a.at.format("%Y-%m-%d %H:%M UTC"),
            a.note
        );
    }
}
