//! Command-line grammar. Every command has help text; clap reports bad arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use polku_core::diary::{Arm, BpSeries, GlucoseSource, GlucoseUnit, MealContext};

#[derive(Parser, Debug)]
#[command(
    name = "polku",
    version,
    about = "Polku self-care diary: encrypted local profile, clinical analytics, CGM import, FHIR export"
)]
pub struct Cli {
    /// Profile directory (default: the user's data directory, polku/).
    #[arg(long, global = true, value_name = "DIR", env = "POLKU_HOME")]
    pub home: Option<PathBuf>,
    /// Read the passphrase from this environment variable instead of prompting.
    #[arg(long, global = true, value_name = "NAME")]
    pub passphrase_env: Option<String>,
    /// Machine-readable JSON on stdout; errors as JSON on stderr.
    #[arg(long, global = true)]
    pub json: bool,
    /// Time zone for "now", days and local timestamps.
    #[arg(
        long,
        global = true,
        value_name = "IANA_ZONE",
        default_value = "Europe/Helsinki"
    )]
    pub tz: String,
    /// Act on this subject's record (a professional's or outreach worker's device; see `subjects`).
    #[arg(long, global = true, value_name = "ID")]
    pub subject: Option<String>,
    /// The county's published content: `pathways/` (pathway definitions) and `questionnaires/`
    /// (licensed questionnaire wording; docs/questionnaires.md).
    #[arg(long, global = true, value_name = "DIR", env = "POLKU_CONTENT_DIR")]
    pub content_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create the encrypted profile (asks for a new passphrase).
    Init,
    /// Add, list, edit and delete diary entries.
    #[command(subcommand)]
    Diary(DiaryCmd),
    /// Clinical summaries over a period.
    #[command(subcommand)]
    Stats(StatsCmd),
    /// Import measurements from files.
    #[command(subcommand)]
    Import(ImportCmd),
    /// Export the diary.
    #[command(subcommand)]
    Export(ExportCmd),
    /// Digital care pathways: definitions, enrollment, steps, reminders.
    #[command(subcommand)]
    Pathway(PathwayCmd),
    /// Scored questionnaires: PHQ-9, GAD-7, R-BDI, FINDRISC.
    #[command(subcommand)]
    Questionnaire(QuestionnaireCmd),
    /// Fill a temporary profile with 30 days of realistic data and print a summary.
    Demo(DemoArgs),
    /// Enroll this profile with the county's sync server using a one-time code.
    Enroll {
        /// Server address, e.g. https://polku.example.fi
        #[arg(long)]
        server: String,
        /// The one-time code from the care team.
        #[arg(long)]
        code: String,
        /// A name for this device in the server's device list.
        #[arg(long)]
        device_name: Option<String>,
        /// Trust only this CA certificate (PEM file) for the server, now and on every sync: for
        /// a county that runs its own certificate authority.
        #[arg(long)]
        ca_file: Option<std::path::PathBuf>,
    },
    /// Upload what this device wrote and download what it may see (`sync status` to inspect).
    Sync {
        #[command(subcommand)]
        cmd: Option<SyncCmd>,
    },
    /// The subjects this device may see (from the server).
    Subjects,
    /// Client details (phone, address, access instructions, ...), merged per field across devices.
    #[command(subcommand)]
    Details(DetailsCmd),
    /// Urgent safety flags (self-harm answers, danger values): list, and acknowledge on a
    /// professional's device.
    #[command(subcommand)]
    Flags(FlagsCmd),
    /// End-to-end encrypted messages with the care team: written offline, sent and received by
    /// `polku sync`.
    #[command(subcommand)]
    Messages(MessagesCmd),
    /// Home-care and outreach visits: a worker's day, arriving, tasks, notes, measurements,
    /// leaving, handovers. Works offline; `polku sync` shares them.
    #[command(subcommand)]
    Visits(VisitsCmd),
    /// A client's service plan: the visits they get and the tasks of each.
    #[command(subcommand)]
    Serviceplan(ServiceplanCmd),
    /// A school nurse's contacts with students: questionnaires given, follow-ups, referrals.
    #[command(subcommand)]
    Outreach(OutreachCmd),
}

#[derive(Subcommand, Debug)]
pub enum VisitsCmd {
    /// Today's visits of every client on this device (or --date's): urgent and overdue first.
    Today {
        #[arg(long)]
        date: Option<String>,
    },
    /// The visits of the coming days, from the plans on this device.
    Plan {
        #[arg(long, default_value_t = 3)]
        days: u32,
        #[arg(long)]
        from: Option<String>,
    },
    /// One visit: its tasks, notes, arrivals, conflicts.
    Show { visit: String },
    /// At the client's door now.
    Arrive { visit: String },
    /// How a task went: done, not-done or done-differently (the last two with --note).
    Task {
        visit: String,
        task: String,
        #[arg(value_parser = ["done", "not-done", "done-differently"])]
        outcome: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// A note of the visit; with --category, a structured observation (`polku visits tasks`
    /// lists the categories too).
    Note {
        visit: String,
        text: String,
        #[arg(long)]
        category: Option<String>,
    },
    /// An urgent concern: the client goes to the top of the care team's caseload.
    Concern { visit: String, text: String },
    /// A measurement at the visit, into the client's own diary (as `polku diary add`).
    Measure {
        visit: String,
        #[command(subcommand)]
        entry: AddKind,
    },
    /// Leaving: the visit is finished.
    Finish { visit: String },
    /// The visit did not happen.
    NotDone {
        visit: String,
        /// not_at_home, in_hospital, refused, cancelled or other
        #[arg(long)]
        reason: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Give the visit to a worker (a coordinator's planning).
    Assign {
        visit: String,
        #[arg(long)]
        to: String,
    },
    /// Hand the visit over to a colleague, with a note for them.
    Handover {
        visit: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        note: String,
    },
    /// Settle a conflict (two outcomes recorded offline): keep one event's outcome.
    Resolve {
        visit: String,
        /// `visit`, or `task:<code>`
        #[arg(long)]
        about: String,
        #[arg(long)]
        keep: String,
        #[arg(long)]
        note: String,
    },
    /// The county's task categories.
    Tasks,
}

#[derive(Subcommand, Debug)]
pub enum OutreachCmd {
    /// Record a contact with a student now.
    Contact {
        student: String,
        /// individual, group or with_guardian
        #[arg(long)]
        kind: String,
        /// Where (a school, the health office, a home visit).
        #[arg(long)]
        setting: Option<String>,
        #[arg(long)]
        note: Option<String>,
        /// A questionnaire response given at the contact (repeat for several).
        #[arg(long = "questionnaire")]
        questionnaires: Vec<String>,
        /// YYYY-MM-DD
        #[arg(long)]
        follow_up: Option<String>,
        #[arg(long)]
        referral: Option<String>,
    },
    /// A student's contacts, newest first.
    List { student: String },
    /// Students whose follow-up is due by --until (today).
    FollowUps {
        #[arg(long)]
        until: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ServiceplanCmd {
    /// The plan in effect (or on --date) and its earlier versions.
    Show {
        client: String,
        #[arg(long)]
        date: Option<String>,
    },
    /// A new version of the client's plan from a JSON file, in effect from --from (today).
    Set {
        client: String,
        file: std::path::PathBuf,
        #[arg(long)]
        from: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum MessagesCmd {
    /// Conversations on this device, those with unread messages first.
    List,
    /// A conversation's messages, oldest first (the newest `--limit`, or those before `--before`).
    Read {
        /// The conversation: the citizen's id.
        conversation: String,
        /// Show the messages written before this message id (scrolling back).
        #[arg(long)]
        before: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Write a message; it is encrypted for every device of every member on the next sync.
    Send { conversation: String, text: String },
    /// Send a file (at most 10 MB): sealed with a fresh key now, uploaded on the next sync.
    Attach {
        conversation: String,
        file: std::path::PathBuf,
        /// Its media type (guessed from the extension when left out).
        #[arg(long)]
        mime: Option<String>,
    },
    /// Save an attachment's file (downloaded, checked and opened the first time).
    Fetch {
        attachment: String,
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Mark a conversation's messages read (read receipts go with the next sync).
    MarkRead { conversation: String },
    /// This device's identity key and the members' devices as this device trusts them.
    Devices,
    /// Accept the new identity keys a device shows, after checking with its owner.
    Accept { device: String },
    /// Verify a member's device with its owner: run this on both devices (each names the other),
    /// compare the three numbers both show, and answer y if they are the same.
    Verify {
        device: String,
        /// Give up (and tell the other device) after this many seconds.
        #[arg(long, default_value_t = 300)]
        timeout_seconds: u64,
    },
    /// Received ciphertexts that failed a check (tampered, re-routed or replayed), and why.
    Rejected,
}

#[derive(Subcommand, Debug)]
pub enum FlagsCmd {
    /// Open flags of this record (with --all also the acknowledged ones and who acknowledged).
    List {
        #[arg(long)]
        all: bool,
        #[arg(long, default_value = "fi")]
        lang: String,
    },
    /// Every safety rule: threshold, source, the care team's text and the person's guidance.
    Rules {
        #[arg(long, default_value = "en")]
        lang: String,
    },
    /// Acknowledge a flag with what was done (a professional's device): that flag and the open
    /// flags of the same rule before it.
    Acknowledge {
        /// The flag id from `flags list`.
        flag: String,
        /// What was done ("called, appointment tomorrow").
        #[arg(long)]
        note: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum DetailsCmd {
    /// Current values; fields edited concurrently on different devices show every value.
    Show,
    /// Set a field (replaces every value this device sees, settling a conflict).
    Set {
        /// preferred_name, phone, address, access_instructions, emergency_contact, language
        field: String,
        value: String,
    },
    /// Clear a field.
    Clear { field: String },
    /// Every edit of a field, oldest first.
    History { field: String },
}

#[derive(Subcommand, Debug)]
pub enum SyncCmd {
    /// Pending uploads, quarantined operations with reasons, last success and error, conflicts.
    Status,
}

#[derive(Subcommand, Debug)]
pub enum PathwayCmd {
    /// The pathways this app knows (latest versions).
    ListDefinitions {
        #[arg(long, default_value = "fi")]
        lang: String,
    },
    /// Start a pathway for this profile.
    Enroll {
        /// Definition id (see list-definitions).
        id: String,
        /// Enrolled by a professional (required for pathways the care team assigns).
        #[arg(long)]
        professional: bool,
    },
    /// Enrollments and the state of their steps.
    Steps {
        /// Only this enrollment (default: all).
        #[arg(long)]
        enrollment: Option<String>,
        #[arg(long, default_value = "fi")]
        lang: String,
    },
    /// The care team's list: every enrollment of every person on this device, urgent flags
    /// first, then overdue steps.
    Caseload {
        #[arg(long, default_value = "fi")]
        lang: String,
    },
    /// Mark a step done.
    Complete {
        step: String,
        /// The enrollment (default: the only one that has this step).
        #[arg(long)]
        enrollment: Option<String>,
        #[arg(long)]
        professional: bool,
    },
    /// Skip a step with a reason.
    Skip {
        step: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        enrollment: Option<String>,
    },
    /// Move an enrollment to another published version of its pathway (done and skipped steps
    /// stay where the new version has them).
    Migrate {
        /// The enrollment id (see `pathway steps`).
        enrollment: String,
        #[arg(long)]
        to_version: u32,
    },
    /// When to remind (for the shells' local notifications).
    Reminders {
        /// How many days ahead.
        #[arg(long, default_value_t = 7)]
        days: u32,
    },
}

#[derive(Subcommand, Debug)]
pub enum QuestionnaireCmd {
    /// Print an instrument's items and answer options (phq9, gad7, rbdi, findrisc).
    Show {
        instrument: String,
        #[arg(long, default_value = "fi")]
        lang: String,
    },
    /// Score and store a response: the answer values in item order, comma-separated.
    Answer {
        instrument: String,
        /// e.g. 0,1,2,0,1,0,0,1,0 for PHQ-9 (values as on the form: PHQ-9/GAD-7 0–3, R-BDI 1–5,
        /// FINDRISC the option number from 0).
        answers: String,
        #[arg(long, value_name = "RFC3339")]
        at: Option<String>,
        /// The language the form was shown in (its wording version is recorded).
        #[arg(long, default_value = "fi")]
        lang: String,
    },
    /// Check the county's questionnaire wording files before publishing them.
    CheckWording {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Stored responses, newest first.
    List {
        #[arg(long)]
        instrument: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[derive(Subcommand, Debug)]
pub enum DiaryCmd {
    /// Add an entry.
    #[command(subcommand)]
    Add(AddKind),
    /// List entries, newest first.
    List(ListArgs),
    /// Entries of today (local day).
    Today,
    /// Replace an entry's content with a new version (the old one stays in history).
    Edit {
        /// Entry id.
        id: String,
        #[command(subcommand)]
        entry: AddKind,
    },
    /// Mark an entry as entered in error (kept in history with the reason).
    Delete {
        id: String,
        /// Why the entry is removed.
        #[arg(long)]
        reason: String,
    },
    /// Every version of an entry, oldest first.
    History { id: String },
}

#[derive(Args, Debug, Clone)]
pub struct Common {
    /// When it was measured (RFC 3339); default now.
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    /// Free-text note.
    #[arg(long)]
    pub note: Option<String>,
}

#[derive(Subcommand, Debug, Clone)]
pub enum AddKind {
    /// Blood glucose: a value, or LO / HI as the meter shows outside its range.
    Glucose {
        /// The value in --unit, or LO / HI.
        value: String,
        #[arg(long, value_parser = closed(&GlucoseUnit::ALL, GlucoseUnit::as_str, &[("mmol", "mmol/L"), ("mgdl", "mg/dL")]), default_value = "mmol/L")]
        unit: GlucoseUnit,
        #[arg(long, value_parser = closed(&MealContext::ALL, MealContext::as_str, &[]), default_value = "other")]
        context: MealContext,
        /// Hours since the meal (only with --context after-meal).
        #[arg(long, value_name = "N")]
        hours_after_meal: Option<i64>,
        #[arg(long, value_parser = closed(&GlucoseSource::ALL, GlucoseSource::as_str, &[]), default_value = "meter")]
        source: GlucoseSource,
        #[command(flatten)]
        common: Common,
    },
    /// Blood pressure in mmHg.
    Bp {
        systolic: i64,
        diastolic: i64,
        #[arg(long)]
        pulse: Option<i64>,
        #[arg(long, value_parser = closed(&Arm::ALL, Arm::as_str, &[]))]
        arm: Option<Arm>,
        /// Home-measurement series (default: from the time of day).
        #[arg(long, value_parser = closed(&BpSeries::ALL, BpSeries::as_str, &[]))]
        series: Option<BpSeries>,
        #[command(flatten)]
        common: Common,
    },
    /// Body weight in kg.
    Weight {
        kg: f64,
        #[command(flatten)]
        common: Common,
    },
    /// Heart rate in beats per minute.
    Pulse {
        bpm: i64,
        #[command(flatten)]
        common: Common,
    },
    /// Body temperature in °C.
    Temperature {
        celsius: f64,
        #[command(flatten)]
        common: Common,
    },
    /// A symptom from the catalogue (chest-pain, shortness-of-breath, palpitations, dizziness,
    /// leg-swelling, fatigue, hypoglycaemia-symptoms, low-mood, anxiety, other).
    Symptom {
        code: String,
        /// 0 (none) – 10 (worst).
        #[arg(long)]
        severity: i64,
        #[command(flatten)]
        common: Common,
    },
    /// A medication taken.
    Medication {
        name: String,
        #[arg(long)]
        dose: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Mood from 1 (very low) to 5 (very good).
    Mood {
        score: i64,
        #[command(flatten)]
        common: Common,
    },
    /// A free-text diary note.
    Note {
        text: String,
        #[arg(long, value_name = "RFC3339")]
        at: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only these kinds (glucose, bp, weight, pulse, temperature, symptom, medication, mood, note).
    #[arg(long = "kind", value_name = "KIND")]
    pub kinds: Vec<String>,
    #[arg(long, value_name = "RFC3339")]
    pub from: Option<String>,
    #[arg(long, value_name = "RFC3339")]
    pub to: Option<String>,
    /// Page size (1–5000).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Cursor printed by the previous page.
    #[arg(long)]
    pub after: Option<String>,
}

#[derive(Args, Debug)]
pub struct Period {
    #[arg(long, value_name = "RFC3339")]
    pub from: String,
    #[arg(long, value_name = "RFC3339")]
    pub to: String,
}

#[derive(Subcommand, Debug)]
pub enum StatsCmd {
    /// Time in range, mean, SD, CV, GMI, hypoglycaemic events, AGP.
    Glucose(Period),
    /// Blood-pressure means and the home-measurement series (Käypä hoito).
    Bp(Period),
}

#[derive(Subcommand, Debug)]
pub enum ImportCmd {
    /// CGM readings from a CSV file (all or nothing; re-importing adds nothing).
    Cgm {
        file: PathBuf,
        /// Default: detected from the header.
        #[arg(long, value_enum)]
        format: Option<FormatArg>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ExportCmd {
    /// A FHIR R4 Bundle of Kanta PHR Observations.
    Fhir {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[arg(long, value_name = "RFC3339")]
        from: Option<String>,
        #[arg(long, value_name = "RFC3339")]
        to: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Keep the demo profile in DIR instead of a temporary directory.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
    /// Seed of the synthetic data.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
}

/// A parser for one of the core's closed vocabularies (`before_meal`, typed `before-meal` as well),
/// listing its names in help and errors; `aliases` are (typed, name) pairs. One list: the core's.
fn closed<T: Copy + Send + Sync + 'static>(
    all: &'static [T],
    name: fn(T) -> &'static str,
    aliases: &'static [(&'static str, &'static str)],
) -> clap::builder::ValueParser {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    let values = all.iter().map(move |v| {
        let n = name(*v);
        let shown: &'static str = Box::leak(n.replace('_', "-").into_boxed_str());
        let mut p = PossibleValue::new(shown).alias(n);
        for (typed, of) in aliases {
            if *of == n {
                p = p.alias(*typed);
            }
        }
        p
    });
    let parser = PossibleValuesParser::new(values.collect::<Vec<_>>()).map(move |s: String| {
        let s = aliases
            .iter()
            .find(|(typed, _)| *typed == s)
            .map_or(s.replace('-', "_"), |(_, of)| (*of).to_owned());
        *all.iter()
            .find(|v| name(**v) == s)
            .expect("clap admitted a listed value")
    });
    clap::builder::ValueParser::new(parser)
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum FormatArg {
    Generic,
    Libreview,
}
