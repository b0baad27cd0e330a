//! Enrollment with a one-time code, and the profile settings it leaves: the server, the token,
//! who this device is, the server's epoch, the last outcome.

use rusqlite::{params, Connection, OptionalExtension};

use polku_protocol::Role;

use super::protocol::*;
use super::{http, Enrollment, Sync};
use crate::context::KEY_ROLE;
use crate::error::{Error, Result};

pub(super) const KEY_SERVER: &str = "sync.server";
pub(super) const KEY_TOKEN: &str = "sync.token";
/// The county CA the device pins for its server (PEM), when enrolled with one.
const KEY_PINNED_CA: &str = "sync.pinned_ca";
const KEY_DEVICE: &str = "sync.device_id";
const KEY_USER: &str = "sync.user_id";
const KEY_NAME: &str = "sync.name";
pub(super) const KEY_EPOCH: &str = "sync.epoch";
pub(super) const KEY_LAST_OK: &str = "sync.last_success_ms";
pub(super) const KEY_LAST_ERROR: &str = "sync.last_error";

/// Who this device is on the server (user id, device id), once enrolled.
pub(crate) fn server_identity(store: &crate::store::Store) -> Result<Option<(String, String)>> {
    store.read(|c| {
        Ok(match (get(c, KEY_USER)?, get(c, KEY_DEVICE)?) {
            (Some(u), Some(d)) => Some((u, d)),
            _ => None,
        })
    })
}

pub(super) fn get(c: &Connection, key: &str) -> Result<Option<String>> {
    Ok(
        c.prepare_cached("SELECT value FROM profile WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?,
    )
}

pub(super) fn set(c: &Connection, key: &str, value: &str) -> Result<()> {
    c.prepare_cached("INSERT INTO profile (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")?
        .execute(params![key, value])?;
    Ok(())
}

impl Sync<'_> {
    /// Enrolls this device with a one-time code from the care team. A citizen's local record
    /// becomes their stream on the server (everything written before enrolling is uploaded on
    /// the first sync). Reopen the profile afterwards so new writes carry the server identity.
    pub async fn enroll(
        &self,
        server: &str,
        code: &str,
        device_name: Option<&str>,
    ) -> Result<Enrollment> {
        self.enroll_with_ca(server, code, device_name, None).await
    }

    /// [`Sync::enroll`] trusting only `pinned_ca` (PEM) for the server's certificate, now and
    /// on every later sync: for a county that runs its own certificate authority.
    pub async fn enroll_with_ca(
        &self,
        server: &str,
        code: &str,
        device_name: Option<&str>,
        pinned_ca: Option<&str>,
    ) -> Result<Enrollment> {
        let code = code.trim();
        if code.is_empty() || code.len() > 64 {
            return Err(Error::validation(
                "code",
                code,
                "the enrollment code from the care team",
            ));
        }
        if self.enrollment()?.is_some() {
            return Err(Error::Conflict(
                "this device is already enrolled; a profile enrolls once".into(),
            ));
        }
        let http = http::Http::new(server, None, pinned_ca)?;
        let (r, _): (EnrollResponse, usize) = http
            .post(
                "/v1/enroll",
                &EnrollRequest {
                    code: code.to_owned(),
                    device_name: device_name.map(str::to_owned),
                },
            )
            .await?;
        let server = server.trim_end_matches('/').to_owned();
        self.cx.store.write(|tx| {
            for (k, v) in [
                (KEY_SERVER, server.as_str()),
                (KEY_TOKEN, r.token.as_str()),
                (KEY_DEVICE, r.device_id.as_str()),
                (KEY_USER, r.user_id.as_str()),
                (KEY_ROLE, r.role.as_str()),
                (KEY_NAME, r.name.as_str()),
                (KEY_EPOCH, r.epoch.as_str()),
                ("author_id", r.user_id.as_str()),
            ] {
                set(tx, k, v)?;
            }
            if let Some(pem) = pinned_ca {
                set(tx, KEY_PINNED_CA, pem)?;
            }
            for k in self.kinds.iter() {
                k.adopt(tx, &self.cx.author, &r.user_id)?;
            }
            if Role::parse(&r.role) == Some(Role::Citizen) {
                // The citizen's own record is the stream named by their user id.
                tx.execute(
                    "UPDATE subject SET id = ?1 WHERE no = ?2",
                    params![r.user_id, self.cx.subject_no],
                )?;
                set(tx, "subject_id", &r.user_id)?;
            }
            Ok(())
        })?;
        Ok(Enrollment {
            server,
            device_id: r.device_id,
            user_id: r.user_id,
            role: r.role,
            name: r.name,
        })
    }

    pub fn enrollment(&self) -> Result<Option<Enrollment>> {
        self.cx.store.read(|c| {
            let Some(server) = get(c, KEY_SERVER)? else {
                return Ok(None);
            };
            Ok(Some(Enrollment {
                server,
                device_id: get(c, KEY_DEVICE)?.unwrap_or_default(),
                user_id: get(c, KEY_USER)?.unwrap_or_default(),
                role: get(c, KEY_ROLE)?.unwrap_or_default(),
                name: get(c, KEY_NAME)?.unwrap_or_default(),
            }))
        })
    }

    /// The subjects this device may see, as the server says now (with their names).
    pub async fn remote_subjects(&self) -> Result<Vec<SubjectInfo>> {
        let http = self.http()?;
        let r: SubjectsResponse = http.get("/v1/subjects").await?;
        Ok(r.subjects)
    }

    pub(super) fn http(&self) -> Result<http::Http> {
        http_for(self.cx)
    }
}

/// A transport to this device's server, with its token (and pinned CA).
pub(crate) fn http_for(cx: &crate::context::Context) -> Result<http::Http> {
    let (server, token, pinned) = cx.store.read(|c| {
        Ok((
            get(c, KEY_SERVER)?,
            get(c, KEY_TOKEN)?,
            get(c, KEY_PINNED_CA)?,
        ))
    })?;
    let (Some(server), Some(token)) = (server, token) else {
        return Err(Error::NotEnrolled);
    };
    http::Http::new(&server, Some(token), pinned.as_deref())
}
