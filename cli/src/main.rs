//! `polku`: a terminal shell over the Polku core and a scriptable client. With `--json`, results
//! go to stdout as JSON and errors to stderr as `{"error": {...}}`; the exit code tells the kind
//! of failure (see `exit_code`).

mod args;
mod demo;
mod entry;
mod messages;
mod output;
mod pathway;
mod safety;
mod visits;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use polku_core::diary::EntryQuery;
use polku_core::{keys, time, Error, OpenOptions, Polku};
use serde_json::json;

use args::*;

fn main() -> ExitCode {
    let wants_json = std::env::args().any(|a| a == "--json");
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind::*;
            if !wants_json
                || matches!(
                    e.kind(),
                    DisplayHelp | DisplayVersion | DisplayHelpOnMissingArgumentOrSubcommand
                )
            {
                e.exit();
            }
            let msg = e
                .kind()
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| "invalid arguments".into());
            eprintln!(
                "{}",
                json!({ "error": { "code": "usage", "message": msg, "detail": e.render().to_string().trim() } })
            );
            return ExitCode::from(2);
        }
    };
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if cli.json {
                eprintln!("{}", output::error_json(&e));
            } else {
                eprintln!("polku: {}", output::error_text(&e));
            }
            ExitCode::from(exit_code(&e))
        }
    }
}

/// 2 bad input, 3 wrong passphrase, 4 not found, 5 unusable database, 6 conflict,
/// 7 sync: not enrolled, server unreachable or refused, 8 a device's identity keys changed,
/// 9 an integrity check failed (an altered attachment, a verification that does not match),
/// 1 anything else.
fn exit_code(e: &Error) -> u8 {
    match e {
        Error::Validation { .. } | Error::Import(_) => 2,
        Error::WrongKey { .. } => 3,
        Error::NotFound { .. } => 4,
        Error::Corrupt { .. } | Error::NewerSchema { .. } | Error::EncryptionUnavailable => 5,
        Error::Conflict(_) => 6,
        Error::NotEnrolled | Error::Network(_) | Error::Server { .. } => 7,
        Error::IdentityChanged { .. } => 8,
        Error::Crypto(_) => 9,
        Error::Storage(_) | Error::Io(_) => 1,
    }
}

fn run(cli: &Cli) -> Result<(), Error> {
    let tz = time::parse_tz(&cli.tz)?;
    match &cli.command {
        Command::Init => init(cli, tz),
        Command::Demo(a) => demo::run(a, tz, cli.json),
        Command::Diary(cmd) => {
            let p = open(cli, tz)?;
            diary(&p, cmd, cli.json, audience(cli))
        }
        Command::Stats(cmd) => {
            let p = open(cli, tz)?;
            match cmd {
                StatsCmd::Glucose(period) => {
                    let (from, to) = period_of(period)?;
                    output::glucose_report(&p.analytics().glucose(from, to)?, cli.json);
                }
                StatsCmd::Bp(period) => {
                    let (from, to) = period_of(period)?;
                    output::bp_report(&p.analytics().blood_pressure(from, to)?, from, to, cli.json);
                }
            }
            Ok(())
        }
        Command::Questionnaire(cmd) => questionnaire(cli, tz, cmd),
        Command::Enroll {
            server,
            code,
            device_name,
            ca_file,
        } => {
            let ca = match ca_file {
                Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                    polku_core::Error::validation(
                        "ca-file",
                        path.display().to_string(),
                        format!("a readable PEM file ({e})"),
                    )
                })?),
                None => None,
            };
            let p = open_profile(cli, tz)?;
            let e = runtime()?.block_on(p.sync().enroll_with_ca(
                server,
                code,
                device_name.as_deref(),
                ca.as_deref(),
            ))?;
            if cli.json {
                println!("{}", serde_json::to_string(&e)?);
            } else {
                println!(
                    "enrolled as {} ({}) on {}; device {}",
                    e.name, e.role, e.server, e.device_id
                );
            }
            Ok(())
        }
        Command::Sync { cmd: None } => {
            let p = open_profile(cli, tz)?;
            let rt = runtime()?;
            let r = rt.block_on(p.sync().sync_with_retry(Default::default(), None))?;
            if cli.json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!(
                    "pushed {} (duplicates {}, quarantined {}), pulled {}, conflicts {}, held {}; {} requests, {} bytes",
                    r.pushed, r.duplicates, r.quarantined, r.pulled, r.conflicts, r.held, r.requests, r.bytes
                );
                for s in &r.removed_subjects {
                    println!("removed from this device (no longer assigned): {s}");
                }
            }
            Ok(())
        }
        Command::Sync {
            cmd: Some(SyncCmd::Status),
        } => {
            let p = open_profile(cli, tz)?;
            let s = p.sync().status()?;
            if cli.json {
                println!("{}", serde_json::to_string(&s)?);
            } else {
                match &s.enrollment {
                    Some(e) => println!("enrolled as {} ({}) on {}", e.name, e.role, e.server),
                    None => println!("not enrolled (polku enroll --server URL --code CODE)"),
                }
                println!("pending uploads: {}", s.pending);
                println!("open conflicts: {}", s.conflicts);
                println!("kept for a newer app version: {}", s.held);
                match s.last_success {
                    Some(t) => println!("last successful sync: {}", t.to_rfc3339()),
                    None => println!("last successful sync: never"),
                }
                if let Some(e) = &s.last_error {
                    println!("last error: {e}");
                }
                for q in &s.quarantined {
                    println!(
                        "quarantined #{} {} {}: {} ({})",
                        q.device_seq, q.kind, q.record_id, q.reason, q.code
                    );
                }
            }
            Ok(())
        }
        Command::Details(cmd) => {
            let p = open(cli, tz)?;
            let d = p.details();
            let print_edit = |e: &polku_core::details::DetailEdit| {
                format!(
                    "{} (by {} at {})",
                    e.value.as_deref().unwrap_or("(cleared)"),
                    e.author,
                    e.at.to_rfc3339()
                )
            };
            match cmd {
                DetailsCmd::Show => {
                    let values = d.get()?;
                    if cli.json {
                        println!("{}", serde_json::to_string(&values)?);
                    } else {
                        for v in values {
                            println!("{}: {}", v.field, print_edit(&v.current));
                            for c in &v.conflicting {
                                println!("  CONFLICT, also: {}", print_edit(c));
                            }
                        }
                    }
                }
                DetailsCmd::Set { field, value } => {
                    let e = d.set(field, Some(value))?;
                    if cli.json {
                        println!("{}", serde_json::to_string(&e)?);
                    }
                }
                DetailsCmd::Clear { field } => {
                    let e = d.set(field, None)?;
                    if cli.json {
                        println!("{}", serde_json::to_string(&e)?);
                    }
                }
                DetailsCmd::History { field } => {
                    let h = d.history(field)?;
                    if cli.json {
                        println!("{}", serde_json::to_string(&h)?);
                    } else {
                        for e in &h {
                            println!("{}", print_edit(e));
                        }
                    }
                }
            }
            Ok(())
        }
        Command::Subjects => {
            let p = open_profile(cli, tz)?;
            let subjects = runtime()?.block_on(p.sync().remote_subjects())?;
            if cli.json {
                println!("{}", serde_json::to_string(&subjects)?);
            } else {
                for s in subjects {
                    println!("{}  {}", s.id, s.name);
                }
            }
            Ok(())
        }
        Command::Pathway(cmd) => pathway::run(&open(cli, tz)?, cmd, cli.json),
        Command::Flags(FlagsCmd::Rules { lang }) => {
            safety::rules(polku_core::questionnaire::Lang::parse(lang)?, cli.json);
            Ok(())
        }
        Command::Flags(cmd) => safety::run(&open(cli, tz)?, cmd, cli.json, audience(cli)),
        Command::Messages(cmd) => messages::run(&open(cli, tz)?, cmd, cli.json, tz),
        Command::Visits(cmd) => visits::run(&open_profile(cli, tz)?, cmd, cli.json, tz),
        Command::Serviceplan(cmd) => visits::plan(&open_profile(cli, tz)?, cmd, cli.json, tz),
        Command::Outreach(cmd) => visits::outreach(&open_profile(cli, tz)?, cmd, cli.json, tz),
        Command::Import(ImportCmd::Cgm { file, format }) => {
            let p = open(cli, tz)?;
            let format = format.map(|f| match f {
                FormatArg::Generic => polku_core::import::CgmFormat::Generic,
                FormatArg::Libreview => polku_core::import::CgmFormat::LibreView,
            });
            let before = p.safety().flags(true)?;
            output::import_report(&p.import().cgm_file(file, format)?, cli.json);
            // Readings of the last days below 3.0 or above 20 mmol/L raise flags (safety.md).
            let raised: Vec<_> = p
                .safety()
                .flags(true)?
                .into_iter()
                .filter(|f| !before.iter().any(|b| b.id == f.id))
                .collect();
            if !cli.json {
                safety::print_raised(&p, &raised, audience(cli), safety::guidance_lang());
            }
            Ok(())
        }
        Command::Export(ExportCmd::Fhir { out, from, to }) => {
            let p = open(cli, tz)?;
            let from = from
                .as_deref()
                .map(|s| time::parse_rfc3339("from", s))
                .transpose()?;
            let to = to
                .as_deref()
                .map(|s| time::parse_rfc3339("to", s))
                .transpose()?;
            let bundle = p
                .fhir()
                .bundle(from.map(|t| t.to_utc()), to.map(|t| t.to_utc()))?;
            let n = bundle["entry"].as_array().map_or(0, Vec::len);
            let text =
                serde_json::to_string_pretty(&bundle).map_err(|e| Error::Io(e.to_string()))?;
            std::fs::write(out, text)
                .map_err(|e| Error::Io(format!("cannot write {}: {e}", out.display())))?;
            if cli.json {
                println!("{}", json!({ "out": out, "observations": n }));
            } else {
                println!("Wrote {n} FHIR Observations to {}", out.display());
            }
            Ok(())
        }
    }
}

/// Who reads what the CLI prints about safety flags: the person on their own record, the care
/// team with `--subject`.
fn audience(cli: &Cli) -> safety::Audience {
    if cli.subject.is_some() {
        safety::Audience::CareTeam
    } else {
        safety::Audience::Person
    }
}

/// Prints a new or edited entry, with the guidance (or the care team's flags) it raised.
fn entry_written(
    p: &Polku,
    e: &polku_core::diary::Entry,
    json_out: bool,
    audience: safety::Audience,
) -> Result<(), Error> {
    // What this version raised (an edit's earlier versions keep their own flags).
    let raised: Vec<_> = p
        .safety()
        .raised_by(e.id)?
        .into_iter()
        .filter(|f| f.version_id == e.version_id)
        .collect();
    let lang = safety::guidance_lang();
    if json_out {
        let v = serde_json::to_value(e).map_err(|x| Error::Io(x.to_string()))?;
        output::print_value(&safety::with_raised(v, p, &raised, audience, lang));
    } else {
        output::entry(e, false);
        safety::print_raised(p, &raised, audience, lang);
    }
    Ok(())
}

fn diary(
    p: &Polku,
    cmd: &DiaryCmd,
    json_out: bool,
    audience: safety::Audience,
) -> Result<(), Error> {
    let d = p.diary();
    match cmd {
        DiaryCmd::Add(kind) => {
            entry_written(p, &d.add(entry::new_entry(kind)?)?, json_out, audience)?
        }
        DiaryCmd::Edit { id, entry: kind } => entry_written(
            p,
            &d.edit(entry::parse_id(id)?, entry::new_entry(kind)?)?,
            json_out,
            audience,
        )?,
        DiaryCmd::Delete { id, reason } => {
            output::entry(&d.delete(entry::parse_id(id)?, reason)?, json_out)
        }
        DiaryCmd::History { id } => {
            output::entries(&d.history(entry::parse_id(id)?)?, None, json_out)
        }
        DiaryCmd::Today => output::entries(&d.today()?, None, json_out),
        DiaryCmd::List(a) => {
            let kinds = a
                .kinds
                .iter()
                .map(|k| {
                    polku_core::diary::EntryKind::parse(k)
                        .ok_or_else(|| Error::validation("kind", k, "glucose, bp, weight, pulse, temperature, symptom, medication, mood, note"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let q = EntryQuery {
                kinds,
                from: a
                    .from
                    .as_deref()
                    .map(|s| time::parse_rfc3339("from", s))
                    .transpose()?
                    .map(|t| t.to_utc()),
                to: a
                    .to
                    .as_deref()
                    .map(|s| time::parse_rfc3339("to", s))
                    .transpose()?
                    .map(|t| t.to_utc()),
                limit: a.limit,
                after: a.after.clone(),
            };
            let page = d.list(&q)?;
            output::entries(&page.entries, Some(page.next.as_deref()), json_out);
        }
    }
    Ok(())
}

fn questionnaire(cli: &Cli, tz: chrono_tz::Tz, cmd: &QuestionnaireCmd) -> Result<(), Error> {
    use polku_core::questionnaire::{InstrumentId, Lang, Wording, Wordings};
    match cmd {
        QuestionnaireCmd::Show { instrument, lang } => {
            let form = wordings(cli)?.form(InstrumentId::parse(instrument)?, Lang::parse(lang)?);
            output::form(&form, cli.json);
            Ok(())
        }
        QuestionnaireCmd::CheckWording { files } => {
            let mut all = Wordings::builtin();
            let mut checked = Vec::new();
            let mut problems = Vec::new();
            for f in files {
                let name = f.display().to_string();
                let text = std::fs::read_to_string(f)?;
                match Wording::parse(&name, &text).and_then(|w| {
                    let w2 = w.clone();
                    all.add(&name, w).map(|()| w2)
                }) {
                    Ok(w) => checked.push((name, w)),
                    Err(Error::Import(p)) => problems.extend(p),
                    Err(e) => return Err(e),
                }
            }
            if !problems.is_empty() {
                return Err(Error::Import(problems));
            }
            output::wordings_checked(&checked, cli.json);
            Ok(())
        }
        QuestionnaireCmd::Answer {
            instrument,
            answers,
            at,
            lang,
        } => {
            let id = InstrumentId::parse(instrument)?;
            let values = answers
                .split(',')
                .map(|a| {
                    a.trim().parse::<i64>().map_err(|_| {
                        Error::validation("answers", a.trim(), "whole numbers separated by commas")
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let at = at
                .as_deref()
                .map(|s| time::parse_rfc3339("at", s))
                .transpose()?;
            let p = open(cli, tz)?;
            let lang = Lang::parse(lang)?;
            let r = p.questionnaires().answer(id, lang, &values, at)?;
            let raised = p.safety().raised_by(r.id)?;
            if cli.json {
                let v = serde_json::to_value(&r).map_err(|x| Error::Io(x.to_string()))?;
                output::print_value(&safety::with_raised(v, &p, &raised, audience(cli), lang));
            } else {
                output::response(&r, false);
                safety::print_raised(&p, &raised, audience(cli), lang);
            }
            Ok(())
        }
        QuestionnaireCmd::List { instrument, limit } => {
            let id = instrument.as_deref().map(InstrumentId::parse).transpose()?;
            let p = open(cli, tz)?;
            let rs = p.questionnaires().list(id, *limit)?;
            if cli.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rs).map_err(|e| Error::Io(e.to_string()))?
                );
            } else {
                rs.iter().for_each(|r| output::response(r, false));
            }
            Ok(())
        }
    }
}

fn period_of(
    p: &Period,
) -> Result<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>), Error> {
    Ok((
        time::parse_rfc3339("from", &p.from)?.to_utc(),
        time::parse_rfc3339("to", &p.to)?.to_utc(),
    ))
}

fn home(cli: &Cli) -> Result<PathBuf, Error> {
    match &cli.home {
        Some(h) => Ok(h.clone()),
        None => dirs::data_dir().map(|d| d.join("polku")).ok_or_else(|| {
            Error::validation(
                "home",
                "(none)",
                "a directory: pass --home DIR or set POLKU_HOME",
            )
        }),
    }
}

pub(crate) fn paths(home: &Path) -> (PathBuf, PathBuf) {
    (home.join("polku.db"), home.join("polku.salt"))
}

fn init(cli: &Cli, tz: chrono_tz::Tz) -> Result<(), Error> {
    let home = home(cli)?;
    let (db, salt) = paths(&home);
    if db.exists() {
        return Err(Error::Conflict(format!(
            "a profile already exists in {}",
            home.display()
        )));
    }
    std::fs::create_dir_all(&home)
        .map_err(|e| Error::Io(format!("cannot create {}: {e}", home.display())))?;
    restrict_permissions(&home);
    let pass = passphrase(cli, true)?;
    keys::check_new_passphrase(&pass)?;
    let key = keys::derive_from_passphrase(&pass, &salt, true)?;
    let p = open_db(&db, &key, tz)?;
    if cli.json {
        println!(
            "{}",
            json!({ "home": home, "database": db, "subject_id": p.subject_id() })
        );
    } else {
        println!(
            "Created an encrypted profile in {} (subject {}).",
            home.display(),
            p.subject_id()
        );
    }
    Ok(())
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Io(e.to_string()))
}

/// The profile, or with `--subject` the view of that subject's record on this device.
fn open(cli: &Cli, tz: chrono_tz::Tz) -> Result<Polku, Error> {
    let p = open_profile(cli, tz)?;
    match &cli.subject {
        Some(id) => p.for_subject(id),
        None => Ok(p),
    }
}

fn open_profile(cli: &Cli, tz: chrono_tz::Tz) -> Result<Polku, Error> {
    let home = home(cli)?;
    let (db, salt) = paths(&home);
    if !db.exists() {
        return Err(Error::NotFound {
            what: "profile",
            id: format!("{} (run `polku init` first)", home.display()),
        });
    }
    let pass = passphrase(cli, false)?;
    let key = keys::derive_from_passphrase(&pass, &salt, false)?;
    let mut opts = OpenOptions {
        tz,
        ..Default::default()
    };
    if let Some(dir) = content_dir(cli)? {
        opts = opts.with_content_dir(&dir);
    }
    Polku::open_with(&db, &key, opts)
}

/// `--content-dir`, which must exist when given.
fn content_dir(cli: &Cli) -> Result<Option<std::path::PathBuf>, Error> {
    cli.content_dir
        .as_deref()
        .map(|d| polku_core::content::existing_dir("content-dir", d))
        .transpose()
}

/// The questionnaire wording in use: built-in, replaced by `--content-dir`'s questionnaires/.
fn wordings(cli: &Cli) -> Result<std::sync::Arc<polku_core::questionnaire::Wordings>, Error> {
    let dir = content_dir(cli)?
        .map(|d| d.join("questionnaires"))
        .filter(|d| d.is_dir());
    polku_core::questionnaire::Wordings::from_dir(dir.as_deref())
}

/// Opens the profile database `db` with `key`, days and "now" in `tz`.
pub(crate) fn open_db(
    db: &Path,
    key: &polku_core::DbKey,
    tz: chrono_tz::Tz,
) -> Result<Polku, Error> {
    Polku::open_with(
        db,
        key,
        OpenOptions {
            tz,
            ..Default::default()
        },
    )
}

fn passphrase(cli: &Cli, confirm: bool) -> Result<String, Error> {
    if let Some(name) = &cli.passphrase_env {
        return std::env::var(name).map_err(|_| {
            Error::validation(
                "passphrase-env",
                name,
                "the name of a set environment variable",
            )
        });
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::validation(
            "passphrase",
            "(no terminal)",
            "--passphrase-env NAME, or run in a terminal to be asked",
        ));
    }
    let p = rpassword::prompt_password("Passphrase: ").map_err(|e| Error::Io(e.to_string()))?;
    if confirm
        && rpassword::prompt_password("Repeat passphrase: ")
            .map_err(|e| Error::Io(e.to_string()))?
            != p
    {
        return Err(Error::validation(
            "passphrase",
            "(repeat differs)",
            "the same passphrase twice",
        ));
    }
    Ok(p)
}

fn restrict_permissions(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
}
