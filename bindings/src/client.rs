//! The FFI objects: `PolkuClient` (one per profile database) and its sub-clients. Each only wraps
//! the core (`inner: Arc<polku_core::Polku>`) and converts at the edge; every call runs under
//! [`guard`], so a panic becomes an error instead of crashing the app.

use std::sync::Arc;
use std::time::SystemTime;

use polku_core::{DbKey, OpenOptions, Polku};

use crate::convert::*;
use crate::error::{guard, PolkuError, Result};

/// Supplies the 32-byte database key. The Android shell implements it over the Keystore, iOS over
/// the Keychain; the core never stores the key.
#[uniffi::export(with_foreign)]
pub trait KeyProvider: Send + Sync {
    fn database_key(&self) -> std::result::Result<Vec<u8>, PolkuError>;
}

/// A random 32-byte key for a new profile, for the shell to keep in the platform key store.
#[uniffi::export]
pub fn generate_database_key() -> Result<Vec<u8>> {
    guard("generate_database_key", || {
        let k = DbKey::generate()?;
        Ok(k.as_bytes().to_vec())
    })
}

#[derive(uniffi::Object)]
pub struct PolkuClient {
    inner: Arc<Polku>,
    /// Kept to reopen the profile after enrolling (the record takes the server identity).
    reopen: Reopen,
}

#[derive(Clone)]
struct Reopen {
    path: std::path::PathBuf,
    key: DbKey,
    tz: chrono_tz::Tz,
    content: Option<std::path::PathBuf>,
}

impl PolkuClient {
    fn open_key(r: Reopen) -> Result<Arc<Self>> {
        let mut opts = OpenOptions {
            tz: r.tz,
            ..Default::default()
        };
        if let Some(dir) = &r.content {
            opts = opts.with_content_dir(dir);
        }
        let inner = Polku::open_with(&r.path, &r.key, opts)?;
        Ok(Arc::new(PolkuClient {
            inner: Arc::new(inner),
            reopen: r,
        }))
    }

    fn open_at(
        path: String,
        keys: Arc<dyn KeyProvider>,
        time_zone: Option<String>,
        content: Option<String>,
    ) -> Result<Arc<Self>> {
        let tz = match time_zone {
            Some(name) => polku_core::time::parse_tz(&name)?,
            None => polku_core::DEFAULT_TZ,
        };
        let content = content
            .map(|d| polku_core::content::existing_dir("content_dir", std::path::Path::new(&d)))
            .transpose()?;
        let key = DbKey::from_slice(&keys.database_key()?)?;
        Self::open_key(Reopen {
            path: std::path::PathBuf::from(path),
            key,
            tz,
            content,
        })
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl PolkuClient {
    /// Enrolls this device with the server using the one-time code from the care team and
    /// returns the profile reopened under the server identity (use it instead of this one).
    /// `pinned_ca_pem`: trust only this CA (PEM) for the server, for a county running its own.
    #[uniffi::method(default(pinned_ca_pem = None))]
    pub async fn enroll(
        &self,
        server: String,
        code: String,
        device_name: Option<String>,
        pinned_ca_pem: Option<String>,
    ) -> Result<Arc<PolkuClient>> {
        let e = self
            .inner
            .sync()
            .enroll_with_ca(
                &server,
                &code,
                device_name.as_deref(),
                pinned_ca_pem.as_deref(),
            )
            .await;
        e?;
        let r = self.reopen.clone();
        guard("reopen after enroll", || Self::open_key(r))
    }
}

#[uniffi::export]
impl PolkuClient {
    /// Opens (creating if needed) the encrypted profile database at `path`. `time_zone` is the
    /// device's IANA zone (default Europe/Helsinki).
    #[uniffi::constructor]
    pub fn open(
        path: String,
        keys: Arc<dyn KeyProvider>,
        time_zone: Option<String>,
    ) -> Result<Arc<Self>> {
        guard("open", || Self::open_at(path, keys, time_zone, None))
    }

    /// `open`, with the county's published content: `content_dir/pathways/` (pathway
    /// definitions) and `content_dir/questionnaires/` (the licensed questionnaire wording,
    /// docs/questionnaires.md). A bad file is a typed error naming the file, item and field.
    #[uniffi::constructor]
    pub fn open_with_content(
        path: String,
        keys: Arc<dyn KeyProvider>,
        time_zone: Option<String>,
        content_dir: String,
    ) -> Result<Arc<Self>> {
        guard("open", || {
            Self::open_at(path, keys, time_zone, Some(content_dir))
        })
    }

    /// End-to-end encrypted messages with the care team.
    pub fn messages(&self) -> Arc<crate::messaging::MessagesClient> {
        Arc::new(crate::messaging::MessagesClient {
            inner: self.inner.clone(),
        })
    }

    /// What each screen shows, formatted in `language` (the shells only render it).
    pub fn screens(&self, language: Language) -> Arc<crate::screen::ScreensClient> {
        crate::screen::client(&self.inner, language)
    }

    /// Home-care and outreach visits: service plans, a worker's day, what is recorded at the
    /// door.
    pub fn visits(&self) -> Arc<crate::visits::VisitsClient> {
        Arc::new(crate::visits::VisitsClient {
            inner: self.inner.clone(),
        })
    }

    /// Client details, merged per field across devices.
    pub fn details(&self) -> Arc<crate::sync::DetailsClient> {
        Arc::new(crate::sync::DetailsClient {
            inner: self.inner.clone(),
        })
    }

    /// Upload, download, status and conflicts of this device's sync.
    pub fn sync(&self) -> Arc<crate::sync::SyncClient> {
        Arc::new(crate::sync::SyncClient {
            inner: self.inner.clone(),
        })
    }

    pub fn diary(&self) -> Arc<DiaryClient> {
        Arc::new(DiaryClient {
            inner: self.inner.clone(),
        })
    }

    pub fn analytics(&self) -> Arc<AnalyticsClient> {
        Arc::new(AnalyticsClient {
            inner: self.inner.clone(),
        })
    }

    pub fn imports(&self) -> Arc<ImportClient> {
        Arc::new(ImportClient {
            inner: self.inner.clone(),
        })
    }

    /// Care pathways; texts in `language`.
    pub fn pathways(&self, language: Language) -> Arc<PathwayClient> {
        Arc::new(PathwayClient {
            inner: self.inner.clone(),
            lang: language.into(),
        })
    }

    /// Urgent safety flags, the person's guidance and the care team's acknowledgement; texts in
    /// `language`.
    pub fn safety(&self, language: Language) -> Arc<crate::safety::SafetyClient> {
        crate::safety::client(self.inner.clone(), language)
    }

    pub fn questionnaires(&self) -> Arc<QuestionnaireClient> {
        Arc::new(QuestionnaireClient {
            inner: self.inner.clone(),
        })
    }

    pub fn exports(&self) -> Arc<ExportClient> {
        Arc::new(ExportClient {
            inner: self.inner.clone(),
        })
    }

    /// Whose record this database holds.
    pub fn subject_id(&self) -> String {
        self.inner.subject_id().to_owned()
    }

    /// The same device acting on another subject's record: a nurse's or outreach worker's view of
    /// a person in their care (see `SyncClient.subjects()`); diary, analytics, pathways and
    /// details then read and write that person's record.
    pub fn for_subject(&self, subject_id: String) -> Result<Arc<PolkuClient>> {
        guard("for subject", || {
            Ok(Arc::new(PolkuClient {
                inner: Arc::new(self.inner.for_subject(&subject_id)?),
                reopen: self.reopen.clone(),
            }))
        })
    }
}

#[cfg(feature = "test-hooks")]
#[uniffi::export]
impl PolkuClient {
    /// Panics inside a guarded call; lets the shells' tests prove a panic arrives as an error.
    pub fn panic_for_test(&self) -> Result<()> {
        guard("panic_for_test", || panic!("deliberate test panic"))
    }
}

#[derive(uniffi::Object)]
pub struct DiaryClient {
    inner: Arc<Polku>,
}

impl DiaryClient {
    fn new_entry(&self, e: NewEntry) -> Result<polku_core::diary::NewEntry> {
        Ok(polku_core::diary::NewEntry {
            at: measured_at(e.measured_at, e.utc_offset_seconds, self.inner.time_zone())?,
            note: e.note,
            data: e.data.try_into()?,
        })
    }
}

#[uniffi::export]
impl DiaryClient {
    pub fn add(&self, entry: NewEntry) -> Result<DiaryEntry> {
        guard("diary.add", || {
            Ok(self.inner.diary().add(self.new_entry(entry)?)?.into())
        })
    }

    /// Adds all entries in one transaction, or none.
    pub fn add_many(&self, entries: Vec<NewEntry>) -> Result<Vec<DiaryEntry>> {
        guard("diary.add_many", || {
            let news = entries
                .into_iter()
                .map(|e| self.new_entry(e))
                .collect::<Result<Vec<_>>>()?;
            Ok(self
                .inner
                .diary()
                .add_many(news)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// A new version of entry `id`; the previous one stays in its history.
    pub fn edit(&self, id: String, entry: NewEntry) -> Result<DiaryEntry> {
        guard("diary.edit", || {
            Ok(self
                .inner
                .diary()
                .edit(parse_id("id", &id)?, self.new_entry(entry)?)?
                .into())
        })
    }

    /// Marks entry `id` as entered in error (a tombstone with `reason`).
    pub fn delete(&self, id: String, reason: String) -> Result<DiaryEntry> {
        guard("diary.delete", || {
            Ok(self
                .inner
                .diary()
                .delete(parse_id("id", &id)?, &reason)?
                .into())
        })
    }

    pub fn get(&self, id: String) -> Result<DiaryEntry> {
        guard("diary.get", || {
            Ok(self.inner.diary().get(parse_id("id", &id)?)?.into())
        })
    }

    pub fn history(&self, id: String) -> Result<Vec<DiaryEntry>> {
        guard("diary.history", || {
            Ok(self
                .inner
                .diary()
                .history(parse_id("id", &id)?)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// Newest first, paged: pass `next` back as `after` for the following page.
    pub fn list(&self, query: EntryQuery) -> Result<EntryPage> {
        guard("diary.list", || {
            let p = self.inner.diary().list(&query.into())?;
            Ok(EntryPage {
                entries: p.entries.into_iter().map(Into::into).collect(),
                next: p.next,
            })
        })
    }

    pub fn today(&self) -> Result<Vec<DiaryEntry>> {
        guard("diary.today", || {
            Ok(self
                .inner
                .diary()
                .today()?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }
}

#[derive(uniffi::Object)]
pub struct AnalyticsClient {
    inner: Arc<Polku>,
}

#[uniffi::export]
impl AnalyticsClient {
    pub fn glucose(&self, from: SystemTime, to: SystemTime) -> Result<GlucoseReport> {
        guard("analytics.glucose", || {
            Ok(self.inner.analytics().glucose(utc(from), utc(to))?.into())
        })
    }

    pub fn blood_pressure(&self, from: SystemTime, to: SystemTime) -> Result<BpReport> {
        guard("analytics.blood_pressure", || {
            Ok(self
                .inner
                .analytics()
                .blood_pressure(utc(from), utc(to))?
                .into())
        })
    }
}

#[derive(uniffi::Object)]
pub struct ImportClient {
    inner: Arc<Polku>,
}

#[uniffi::export]
impl ImportClient {
    /// Imports a CGM CSV (generic or LibreView; `format = None` detects it). All or nothing.
    pub fn cgm_csv(&self, contents: Vec<u8>, format: Option<CgmFormat>) -> Result<ImportReport> {
        guard("imports.cgm_csv", || {
            Ok(self
                .inner
                .import()
                .cgm(&contents, format.map(Into::into))?
                .into())
        })
    }
}

#[derive(uniffi::Object)]
pub struct PathwayClient {
    inner: Arc<Polku>,
    lang: polku_core::questionnaire::Lang,
}

#[uniffi::export]
impl PathwayClient {
    pub fn definitions(&self) -> Vec<PathwayDefinition> {
        self.inner
            .pathways()
            .definitions()
            .into_iter()
            .map(|d| pathway_definition(d, self.lang))
            .collect()
    }

    pub fn enroll(&self, definition_id: String, by: Actor) -> Result<Enrollment> {
        guard("pathways.enroll", || {
            Ok(self
                .inner
                .pathways()
                .enroll(&definition_id, by.into())?
                .into())
        })
    }

    pub fn enrollments(&self) -> Result<Vec<Enrollment>> {
        guard("pathways.enrollments", || {
            Ok(self
                .inner
                .pathways()
                .enrollments()?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// The care team's list: every enrollment of every person on this device (a professional's
    /// device holds the people in their care), and people on no pathway with open safety flags;
    /// unacknowledged safety flags first, then urgent pathway flags, then overdue steps.
    pub fn caseload(&self) -> Result<Vec<CaseloadEntry>> {
        guard("pathways.caseload", || {
            Ok(self
                .inner
                .caseload()?
                .into_iter()
                .map(|c| caseload_entry(c, self.lang))
                .collect())
        })
    }

    pub fn progress(&self, enrollment_id: String) -> Result<PathwayProgress> {
        guard("pathways.progress", || {
            Ok(progress(
                self.inner
                    .pathways()
                    .progress(parse_id("enrollment_id", &enrollment_id)?)?,
                self.lang,
            ))
        })
    }

    pub fn complete(
        &self,
        enrollment_id: String,
        step_id: String,
        by: Actor,
    ) -> Result<PathwayProgress> {
        guard("pathways.complete", || {
            Ok(progress(
                self.inner.pathways().complete(
                    parse_id("enrollment_id", &enrollment_id)?,
                    &step_id,
                    by.into(),
                )?,
                self.lang,
            ))
        })
    }

    pub fn skip(
        &self,
        enrollment_id: String,
        step_id: String,
        reason: String,
    ) -> Result<PathwayProgress> {
        guard("pathways.skip", || {
            Ok(progress(
                self.inner.pathways().skip(
                    parse_id("enrollment_id", &enrollment_id)?,
                    &step_id,
                    &reason,
                )?,
                self.lang,
            ))
        })
    }

    /// Moves an enrollment to another published version of its definition (offer it when
    /// `PathwayProgress.latestVersion` is above the pinned one); done and skipped steps stay.
    pub fn migrate(&self, enrollment_id: String, to_version: u32) -> Result<PathwayProgress> {
        guard("pathways.migrate", || {
            Ok(progress(
                self.inner
                    .pathways()
                    .migrate(parse_id("enrollment_id", &enrollment_id)?, to_version)?,
                self.lang,
            ))
        })
    }

    /// When to schedule local notifications over the next `days` days.
    pub fn reminders(&self, days: u32) -> Result<Vec<StepReminder>> {
        guard("pathways.reminders", || {
            if !(1..=60).contains(&days) {
                return Err(PolkuError::Validation {
                    field: "days".into(),
                    value: days.to_string(),
                    allowed: "1–60".into(),
                });
            }
            Ok(self
                .inner
                .pathways()
                .reminders(chrono::Duration::days(days.into()))?
                .into_iter()
                .map(|(e, r)| StepReminder {
                    enrollment_id: e.to_string(),
                    step_id: r.step_id,
                    at: system_time(polku_core::time::from_ms(r.at_ms)),
                })
                .collect())
        })
    }
}

#[derive(uniffi::Object)]
pub struct QuestionnaireClient {
    inner: Arc<Polku>,
}

#[uniffi::export]
impl QuestionnaireClient {
    /// Items, answer choices and bands of an instrument in one language, for the shell to render.
    pub fn definition(
        &self,
        instrument: Instrument,
        language: Language,
    ) -> QuestionnaireDefinition {
        self.inner
            .questionnaires()
            .form(instrument.into(), language.into())
            .into()
    }

    /// Scores and stores a response (answer values in item order) given on the form shown in
    /// `language`. `authored_at = None` is now.
    pub fn answer(
        &self,
        instrument: Instrument,
        language: Language,
        answers: Vec<i32>,
        authored_at: Option<SystemTime>,
    ) -> Result<QuestionnaireResult> {
        guard("questionnaires.answer", || {
            let at = measured_at(authored_at, None, self.inner.time_zone())?;
            let answers: Vec<i64> = answers.into_iter().map(i64::from).collect();
            Ok(self
                .inner
                .questionnaires()
                .answer(instrument.into(), language.into(), &answers, at)?
                .into())
        })
    }

    /// Stored responses, newest first (`instrument = None`: all instruments).
    pub fn list(
        &self,
        instrument: Option<Instrument>,
        limit: u32,
    ) -> Result<Vec<QuestionnaireResult>> {
        guard("questionnaires.list", || {
            Ok(self
                .inner
                .questionnaires()
                .list(instrument.map(Into::into), limit)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }
}

#[derive(uniffi::Object)]
pub struct ExportClient {
    inner: Arc<Polku>,
}

#[uniffi::export]
impl ExportClient {
    /// A FHIR R4 Bundle (collection) of Kanta PHR Observations, as JSON.
    pub fn fhir_bundle_json(
        &self,
        from: Option<SystemTime>,
        to: Option<SystemTime>,
    ) -> Result<String> {
        guard("exports.fhir_bundle_json", || {
            let b = self.inner.fhir().bundle(from.map(utc), to.map(utc))?;
            serde_json::to_string_pretty(&b).map_err(|e| PolkuError::Internal {
                detail: format!("bundle encoding: {e}"),
            })
        })
    }
}
