//! The root object: one per profile database. Sub-APIs (`diary()`, `analytics()`, `import()`,
//! `fhir()`) borrow its context, so every operation sees the same store, clock and time zone.

use std::path::Path;
use std::sync::Arc;

use chrono_tz::Tz;
use polku_protocol::hlc::HlcClock;
use rusqlite::OptionalExtension;
use uuid::Uuid;

use crate::analytics::Analytics;
use crate::context::Context;
use crate::diary::Diary;
use crate::error::Result;
use crate::fhir::FhirExport;
use crate::import::Importer;
use crate::questionnaire::Wordings;
use crate::safety::Numbers;
use crate::store::keys::DbKey;
use crate::store::kind::{RecordKind, Registry};
use crate::store::{outbox, Store};
use crate::time::{Clock, SystemClock};

/// What the domains exchange with the server on every sync, after the records.
static EXCHANGES: &[&dyn crate::sync::Exchange] = &[
    &crate::messaging::KEY_PUBLISHER,
    &crate::messaging::MESSAGE_RELAY,
];

/// An urgent concern raised at a visit ([`Polku::raise_concern`]).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConcernRaised {
    pub visit: crate::visits::Visit,
    /// The message written into the client's conversation with the care team.
    pub message: Option<crate::messaging::Message>,
    /// Why no message was written (an error code), when none was.
    pub message_error: Option<String>,
}

/// The default time zone for day boundaries of new entries: Finland.
pub const DEFAULT_TZ: Tz = chrono_tz::Europe::Helsinki;

pub struct OpenOptions {
    /// Time zone of the device, used for "now" entries, "today" and imports of local timestamps.
    pub tz: Tz,
    pub clock: Arc<dyn Clock>,
    /// A folder of the county's published pathway definitions (`<id>@<version>.json`), added to
    /// the built-in ones.
    pub pathway_dir: Option<std::path::PathBuf>,
    /// A folder of the county's questionnaire wording files (docs/questionnaires.md): the
    /// licensed validated texts, replacing the built-in wording per instrument and language.
    pub questionnaire_dir: Option<std::path::PathBuf>,
    /// A folder holding the county's `safety.json` (the numbers the person's safety guidance
    /// gives, docs/safety.md); the national defaults without one.
    pub safety_dir: Option<std::path::PathBuf>,
    /// A folder holding the county's `visit-tasks.json` (task categories of visits,
    /// docs/visits.md); the built-in list without one.
    pub visits_dir: Option<std::path::PathBuf>,
    /// Record kinds synced besides the built-in ones (`builtin_kinds`): how a new kind is
    /// registered before it is built in (docs/architecture.md, "Adding a record kind").
    pub record_kinds: Vec<&'static dyn RecordKind>,
}

impl OpenOptions {
    /// Takes the county's published content from `dir`: `pathways/` (definitions),
    /// `questionnaires/` (wording) and `safety.json` (guidance numbers), each where present.
    pub fn with_content_dir(self, dir: &Path) -> OpenOptions {
        let sub = |name: &str| Some(dir.join(name)).filter(|d| d.is_dir());
        OpenOptions {
            pathway_dir: sub("pathways"),
            questionnaire_dir: sub("questionnaires"),
            safety_dir: Some(dir.to_owned()),
            visits_dir: Some(dir.to_owned()),
            ..self
        }
    }
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            tz: DEFAULT_TZ,
            clock: Arc::new(SystemClock),
            pathway_dir: None,
            questionnaire_dir: None,
            safety_dir: None,
            visits_dir: None,
            record_kinds: Vec::new(),
        }
    }
}

pub struct Polku {
    cx: Context,
    /// The pathway definitions this device knows (built-in, and the county's).
    registry: Arc<crate::pathway::Registry>,
    /// The questionnaire wording in use (built-in, or the county's licensed texts).
    wordings: Arc<Wordings>,
    /// The numbers the person's safety guidance gives.
    safety_numbers: Arc<Numbers>,
    /// The record kinds this device syncs.
    kinds: Arc<Registry>,
    /// The county's task categories of visits.
    visit_tasks: Arc<crate::visits::TaskCategories>,
    /// The county's note (observation) categories of visits.
    visit_notes: Arc<crate::visits::TaskCategories>,
}

impl std::fmt::Debug for Polku {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Polku")
            .field("store", &self.cx.store)
            .field("subject", &self.cx.subject)
            .finish()
    }
}

impl Polku {
    pub fn open(path: &Path, key: &DbKey) -> Result<Polku> {
        Self::open_with(path, key, OpenOptions::default())
    }

    pub fn open_with(path: &Path, key: &DbKey, opts: OpenOptions) -> Result<Polku> {
        Self::from_store(Store::open(path, key)?, opts)
    }

    #[cfg(feature = "bench-plaintext")]
    pub fn open_plaintext_for_benchmark(path: &Path, opts: OpenOptions) -> Result<Polku> {
        Self::from_store(Store::open_plaintext_for_benchmark(path)?, opts)
    }

    fn from_store(store: Store, opts: OpenOptions) -> Result<Polku> {
        let store = Arc::new(store);
        let registry = match &opts.pathway_dir {
            None => crate::pathway::Registry::builtin_shared()?,
            Some(dir) => {
                let mut r = (*crate::pathway::Registry::builtin_shared()?).clone();
                r.load_dir(dir)?;
                Arc::new(r)
            }
        };
        let wordings = crate::questionnaire::Wordings::from_dir(opts.questionnaire_dir.as_deref())?;
        let safety_numbers = crate::safety::Numbers::from_content_dir(opts.safety_dir.as_deref())?;
        let visit_tasks =
            crate::visits::TaskCategories::from_content_dir(opts.visits_dir.as_deref())?;
        let visit_notes =
            crate::visits::TaskCategories::notes_from_content_dir(opts.visits_dir.as_deref())?;
        // Identities are created with the profile and never change: sync (issue 3) keys on them.
        let subject = store.profile_get_or_init("subject_id", || Uuid::new_v4().to_string())?;
        let device_id = store.profile_get_or_init("device_id", || Uuid::new_v4().to_string())?;
        let author = store
            .profile_get("author_id")?
            .unwrap_or_else(|| subject.clone());
        let subject_no = subject_number(&store, &subject)?;
        crate::safety::backfill(&store)?;
        let hlc = Arc::new(HlcClock::new(
            &device_id,
            outbox::hlc_floor(&store)?.as_deref(),
        ));
        Ok(Polku {
            cx: Context {
                store,
                subject,
                subject_no,
                author,
                device_id,
                tz: opts.tz,
                clock: opts.clock,
                hlc,
            },
            registry,
            wordings,
            safety_numbers: Arc::new(safety_numbers),
            kinds: Arc::new(
                opts.record_kinds
                    .into_iter()
                    .fold(builtin_kinds(), Registry::with),
            ),
            visit_tasks: Arc::new(visit_tasks),
            visit_notes: Arc::new(visit_notes),
        })
    }

    /// The same device and store, acting on another subject's record (an outreach worker's or a
    /// nurse's device holds the records of the people in their care; sync decides which).
    pub fn for_subject(&self, subject_id: &str) -> Result<Polku> {
        let id = subject_id.trim();
        if id.is_empty() || id.len() > 100 {
            return Err(crate::error::Error::validation(
                "subject",
                subject_id,
                "1–100 characters",
            ));
        }
        let subject_no = subject_number(&self.cx.store, id)?;
        Ok(self.view_of(id.to_owned(), subject_no))
    }

    /// A view of a subject already known to this store (no write, unlike `for_subject`).
    pub(crate) fn view_of(&self, subject_id: String, subject_no: i64) -> Polku {
        Polku {
            cx: self.cx.view(subject_id, subject_no),
            registry: self.registry.clone(),
            wordings: self.wordings.clone(),
            safety_numbers: self.safety_numbers.clone(),
            kinds: self.kinds.clone(),
            visit_tasks: self.visit_tasks.clone(),
            visit_notes: self.visit_notes.clone(),
        }
    }

    /// The care team's overview of every subject on this device: who is stuck, overdue, flagged
    /// or has written, the urgent first (`pathway::caseload`).
    pub fn caseload(&self) -> Result<Vec<crate::pathway::ClientSummary>> {
        let inbox = self
            .messaging()
            .conversations()?
            .into_iter()
            .map(|c| (c.id, c.unread))
            .collect();
        let week_ago = self.cx.clock.now().timestamp_millis() - 7 * 86_400_000;
        let concerns = crate::visits::concerns_since(&self.cx, week_ago)?;
        crate::pathway::caseload(&self.cx, &self.registry, &inbox, &concerns)
    }

    /// The citizen's Today screen, formatted in `lang` (docs/screens.md).
    pub fn today_screen(
        &self,
        lang: crate::instrument::Lang,
    ) -> Result<crate::screen::TodayScreen> {
        crate::screen::today(&self.cx, lang)
    }

    /// Adds a glucose reading as typed on the Today screen ("2,9"), measured now.
    pub fn quick_add_glucose(
        &self,
        text: &str,
        context: crate::diary::MealContext,
    ) -> Result<crate::diary::Entry> {
        crate::screen::add_glucose(&self.cx, text, context)
    }

    /// This subject's service plan and visits (a home-care or outreach worker's device).
    pub fn visits(&self) -> crate::visits::Visits<'_> {
        crate::visits::Visits {
            cx: &self.cx,
            categories: &self.visit_tasks,
            notes: &self.visit_notes,
        }
    }

    /// This student's outreach contacts (a school nurse's device).
    pub fn outreach(&self) -> crate::visits::Outreach<'_> {
        crate::visits::Outreach { cx: &self.cx }
    }

    /// Students on this device whose latest contact's follow-up is due by `until`.
    pub fn follow_ups(&self, until: chrono::NaiveDate) -> Result<Vec<crate::visits::Contact>> {
        crate::visits::follow_ups(&self.cx, until)
    }

    /// The county's task categories of visits.
    pub fn visit_tasks(&self) -> &crate::visits::TaskCategories {
        &self.visit_tasks
    }

    /// The county's note (observation) categories of visits.
    pub fn visit_note_categories(&self) -> &crate::visits::TaskCategories {
        &self.visit_notes
    }

    /// This device's user's day: the visits on `date` of the clients on this device that are
    /// handed or assigned to them or to nobody; urgent concerns and overdue visits first, done
    /// ones last.
    pub fn worker_day(&self, date: chrono::NaiveDate) -> Result<Vec<crate::visits::Visit>> {
        crate::visits::visits_between(&self.cx, &self.visit_tasks, date, 1, Some(&self.cx.author))
    }

    /// Every visit on `date` of every client on this device (a coordinator's view), in the order
    /// of [`Polku::worker_day`].
    pub fn visits_on(&self, date: chrono::NaiveDate) -> Result<Vec<crate::visits::Visit>> {
        self.visits_between(date, 1, true)
    }

    /// The visits of `days` days from `from` on (this user's, or with `all` everyone's), each
    /// day's in the order of [`Polku::worker_day`]: what a device holds before going out of
    /// coverage.
    pub fn visits_between(
        &self,
        from: chrono::NaiveDate,
        days: u32,
        all: bool,
    ) -> Result<Vec<crate::visits::Visit>> {
        let mine = (!all).then_some(self.cx.author.as_str());
        crate::visits::visits_between(&self.cx, &self.visit_tasks, from, days, mine)
    }

    /// Today's date in the device's time zone (by its clock).
    pub fn today(&self) -> chrono::NaiveDate {
        self.cx.clock.now().with_timezone(&self.cx.tz).date_naive()
    }

    /// An urgent concern at a visit. It is recorded on the visit: the client goes first in every
    /// caseload and day list. It is also written into the client's conversation with the care
    /// team, end-to-end encrypted, sent with the next sync, so the team hears of it at once. That
    /// conversation includes the client, who may read what is recorded of them (as in
    /// Omakanta). The message is best effort: a device that is not enrolled, or a conversation
    /// with a device whose identity changed, keeps the concern on the visit and says why in
    /// `message_error`.
    pub fn raise_concern(&self, visit_id: &str, text: &str) -> Result<ConcernRaised> {
        let view = self.for_visit(visit_id)?;
        let visit = view.visits().concern(visit_id, text)?;
        let body = format!(
            "Huoli käynnillä {} {} ({}–{}): {text}",
            visit.date,
            visit.name,
            visit.from.format("%H:%M"),
            visit.to.format("%H:%M")
        );
        let (message, message_error) = match view.messaging().send(&visit.subject, &body) {
            Ok(m) => (Some(m), None),
            Err(e) => (None, Some(e.code().to_owned())),
        };
        Ok(ConcernRaised {
            visit,
            message,
            message_error,
        })
    }

    /// The view of the client whose visit `visit_id` is (a visit id names its client).
    pub fn for_visit(&self, visit_id: &str) -> Result<Polku> {
        match crate::visits::locate(&self.cx, visit_id, self.today())? {
            Some((subject, no)) => Ok(self.view_of(subject, no)),
            None => Err(crate::error::Error::NotFound {
                what: "visit",
                id: visit_id.to_owned(),
            }),
        }
    }

    /// Every subject whose record is on this device.
    pub fn subjects(&self) -> Result<Vec<String>> {
        self.cx.store.read(|c| {
            let mut stmt = c.prepare_cached("SELECT id FROM subject ORDER BY no")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<String>, _>>()?)
        })
    }

    pub fn diary(&self) -> Diary<'_> {
        Diary { cx: &self.cx }
    }

    pub fn analytics(&self) -> Analytics<'_> {
        Analytics { cx: &self.cx }
    }

    pub fn import(&self) -> Importer<'_> {
        Importer { cx: &self.cx }
    }

    pub fn pathways(&self) -> crate::pathway::Pathways<'_> {
        crate::pathway::Pathways {
            cx: &self.cx,
            registry: &self.registry,
        }
    }

    pub fn questionnaires(&self) -> crate::questionnaire::Questionnaires<'_> {
        crate::questionnaire::Questionnaires {
            cx: &self.cx,
            wordings: &self.wordings,
        }
    }

    /// Client details (phone, address, access instructions, ...), merged per field across devices.
    pub fn details(&self) -> crate::details::Details<'_> {
        crate::details::Details { cx: &self.cx }
    }

    /// Upload, download and status of this device's sync with the county's server.
    pub fn sync(&self) -> crate::sync::Sync<'_> {
        crate::sync::Sync {
            cx: &self.cx,
            kinds: &self.kinds,
            exchanges: EXCHANGES,
        }
    }

    /// End-to-end encrypted messaging with the care team.
    pub fn messaging(&self) -> crate::messaging::Messaging<'_> {
        crate::messaging::Messaging {
            cx: &self.cx,
            registry: &self.registry,
        }
    }

    /// Urgent safety flags of this subject, their acknowledgement, and the person's guidance.
    pub fn safety(&self) -> crate::safety::Safety<'_> {
        crate::safety::Safety {
            cx: &self.cx,
            numbers: &self.safety_numbers,
        }
    }

    pub fn fhir(&self) -> FhirExport<'_> {
        FhirExport {
            cx: &self.cx,
            wordings: &self.wordings,
        }
    }

    pub fn subject_id(&self) -> &str {
        &self.cx.subject
    }

    pub fn device_id(&self) -> &str {
        &self.cx.device_id
    }

    pub fn time_zone(&self) -> Tz {
        self.cx.tz
    }

    pub fn store(&self) -> &Store {
        &self.cx.store
    }

    /// Queues record `record_id` of a kind registered through `OpenOptions::record_kinds`, written
    /// in `tx` (a [`Store::write`] transaction), for upload. The built-in domains queue their
    /// own records; this is for a kind before it is built in.
    pub fn queue(&self, tx: &rusqlite::Transaction<'_>, kind: &str, record_id: &str) -> Result<()> {
        if self.kinds.get(kind).is_none() {
            return Err(crate::error::Error::validation(
                "kind",
                kind,
                "a record kind registered with this profile",
            ));
        }
        self.cx.queue(tx, kind, record_id)
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.cx.clock.now()
    }
}

/// Every kind this device syncs, in upload order (a parent before its children). Adding a
/// synced kind to the app is one line here, after its `RecordKind` in its domain.
pub fn builtin_kinds() -> Registry {
    Registry::new([
        &crate::diary::ENTRY_VERSIONS as &dyn RecordKind,
        &crate::pathway::ENROLLMENTS,
        &crate::pathway::EVENTS,
        &crate::questionnaire::RESPONSES,
        &crate::details::DETAIL_EDITS,
        &crate::safety::ACKS,
        &crate::visits::VISIT_PLANS,
        &crate::visits::VISIT_EVENTS,
        &crate::visits::CONTACTS,
    ])
}

/// The local number of `subject`, created on first use.
fn subject_number(store: &Store, subject: &str) -> Result<i64> {
    // Known already (the common case): a read, no write transaction and no fsync.
    let known: Option<i64> = store.read(|c| {
        Ok(c.prepare_cached("SELECT no FROM subject WHERE id = ?1")?
            .query_row([subject], |r| r.get(0))
            .optional()?)
    })?;
    if let Some(no) = known {
        return Ok(no);
    }
    store.write(|tx| {
        tx.execute("INSERT OR IGNORE INTO subject (id) VALUES (?1)", [subject])?;
        Ok(
            tx.query_row("SELECT no FROM subject WHERE id = ?1", [subject], |r| {
                r.get(0)
            })?,
        )
    })
}
