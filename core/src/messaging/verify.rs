//! Short-authentication-string verification of a device (issue 10), with vodozemac's SAS: two
//! people compare three four-digit numbers their devices show; if they match, each device's
//! Ed25519 identity key is confirmed by a MAC under the shared secret, and the other device is
//! marked verified. A server (or anyone with its database) that handed out its own keys sits
//! between two different key agreements, so the numbers differ, and the MACs fail.
//!
//! The steps travel as end-to-end encrypted envelopes through the relay, like messages:
//! `start` (A), `accept` with a commitment to B's ephemeral key (B), `key` (A, then B: A checks
//! the commitment, so neither side can pick its key after seeing the other's), then `mac` from
//! each side once its user said the numbers match; `cancel` ends it. The ephemeral secret lives
//! only in memory (vodozemac cannot save it): a verification is one sitting on both devices.

use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};
use vodozemac::sas::{EstablishedSas, Mac, Sas};

use super::{session, Messaging};
use crate::error::{Error, Result};

/// One step of a verification, inside an envelope (`content.type = verification`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Step {
    Start,
    Accept { commitment: String },
    Key { key: String },
    Mac { mac: String },
    Cancel { reason: String },
}

/// A step waiting in `verification_out` for the next sync (which puts it in an envelope).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Queued {
    pub txn: String,
    pub step: Step,
}

/// Longest transaction id a device accepts.
pub(crate) const MAX_TXN: usize = 64;

/// Where a verification stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum VerificationState {
    /// Waiting for the other device (sync on both).
    Waiting,
    /// Both devices show these numbers now: the two people compare them, then `confirm`.
    Compare {
        decimals: [u16; 3],
    },
    /// This side confirmed; waiting for the other's confirmation.
    Confirmed,
    /// The other device's identity key is confirmed: it is shown `verified`.
    Verified,
    Cancelled {
        reason: String,
    },
}

/// A request from another device to verify this one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerificationRequest {
    pub txn: String,
    pub device_id: String,
    pub user_id: String,
    pub at_ms: i64,
}

fn commitment(key: &str, txn: &str) -> String {
    super::attachment::sha256_hex(format!("{key}|{txn}").as_bytes())
}

/// The verification protocol itself, without storage or transport (so it can be tested against
/// an interceptor).
pub(crate) struct Machine {
    txn: String,
    me: String,
    them: String,
    started: bool,
    sas: Option<Sas>,
    our_key: String,
    their_commitment: Option<String>,
    their_key: Option<String>,
    established: Option<EstablishedSas>,
    confirmed: bool,
    their_mac: Option<String>,
    our_ed25519: String,
    their_ed25519: String,
    state: VerificationState,
}

impl Machine {
    fn new(txn: &str, me: &str, them: &str, started: bool, ours: &str, theirs: &str) -> Machine {
        let sas = Sas::new();
        Machine {
            txn: txn.to_owned(),
            me: me.to_owned(),
            them: them.to_owned(),
            started,
            our_key: sas.public_key().to_base64(),
            sas: Some(sas),
            their_commitment: None,
            their_key: None,
            established: None,
            confirmed: false,
            their_mac: None,
            our_ed25519: ours.to_owned(),
            their_ed25519: theirs.to_owned(),
            state: VerificationState::Waiting,
        }
    }

    /// A new machine and its first step: this device asks `them` to verify (`started`), or
    /// answers `them`'s start with the commitment to its key. `ours`/`theirs`: the Ed25519 keys
    /// to confirm.
    pub fn begin(
        txn: &str,
        me: &str,
        them: &str,
        started: bool,
        ours: &str,
        theirs: &str,
    ) -> (Machine, Vec<Step>) {
        let m = Machine::new(txn, me, them, started, ours, theirs);
        let first = if started {
            Step::Start
        } else {
            Step::Accept {
                commitment: commitment(&m.our_key, txn),
            }
        };
        (m, vec![first])
    }

    pub fn state(&self) -> &VerificationState {
        &self.state
    }

    fn done(&self) -> bool {
        matches!(
            self.state,
            VerificationState::Verified | VerificationState::Cancelled { .. }
        )
    }

    fn cancel(&mut self, reason: &str) -> Vec<Step> {
        self.state = VerificationState::Cancelled {
            reason: reason.to_owned(),
        };
        self.sas = None;
        self.established = None;
        vec![Step::Cancel {
            reason: reason.to_owned(),
        }]
    }

    fn mac_info(&self, from: &str, to: &str) -> String {
        format!("POLKU_SAS_MAC_V1|{from}|{to}|{}", self.txn)
    }

    fn establish(&mut self, their_key: &str) -> std::result::Result<(), ()> {
        let sas = self.sas.take().ok_or(())?;
        let est = sas.diffie_hellman_with_raw(their_key).map_err(|_| ())?;
        let (a, a_key, b, b_key) = if self.started {
            (&self.me, &self.our_key, &self.them, their_key)
        } else {
            (
                &self.them,
                &their_key.to_owned(),
                &self.me,
                self.our_key.as_str(),
            )
        };
        let info = format!("POLKU_SAS_V1|{a}|{a_key}|{b}|{b_key}|{}", self.txn);
        let (x, y, z) = est.bytes(&info).decimals();
        self.their_key = Some(their_key.to_owned());
        self.established = Some(est);
        self.state = VerificationState::Compare {
            decimals: [x, y, z],
        };
        Ok(())
    }

    /// What this device sends in answer to the other's `step`.
    pub fn on(&mut self, step: Step) -> Vec<Step> {
        if self.done() {
            return Vec::new();
        }
        match step {
            Step::Start => Vec::new(),
            Step::Cancel { reason } => {
                self.state = VerificationState::Cancelled {
                    reason: format!("the other device cancelled: {reason}"),
                };
                Vec::new()
            }
            Step::Accept { commitment } if self.started && self.their_commitment.is_none() => {
                self.their_commitment = Some(commitment);
                vec![Step::Key {
                    key: self.our_key.clone(),
                }]
            }
            Step::Key { key } if self.their_key.is_none() => {
                if self.started {
                    match &self.their_commitment {
                        Some(c) if *c == commitment(&key, &self.txn) => {}
                        Some(_) => {
                            return self
                                .cancel("the other device's key does not match its commitment")
                        }
                        None => return self.cancel("a key before the other device accepted"),
                    }
                }
                if self.establish(&key).is_err() {
                    return self.cancel("the other device's key is not usable");
                }
                if self.started {
                    Vec::new()
                } else {
                    vec![Step::Key {
                        key: self.our_key.clone(),
                    }]
                }
            }
            Step::Mac { mac } if self.established.is_some() && self.their_mac.is_none() => {
                self.their_mac = Some(mac);
                self.check()
            }
            _ => self.cancel("an unexpected verification step"),
        }
    }

    /// The person says whether both devices show the same numbers.
    pub fn confirm(&mut self, matches: bool) -> Result<Vec<Step>> {
        let Some(est) = &self.established else {
            return Err(Error::Conflict(
                "there are no numbers to compare yet: wait for the other device".into(),
            ));
        };
        if self.done() || self.confirmed {
            return Ok(Vec::new());
        }
        if !matches {
            return Ok(self.cancel("the numbers did not match"));
        }
        let mac = est
            .calculate_mac(&self.our_ed25519, &self.mac_info(&self.me, &self.them))
            .to_base64();
        self.confirmed = true;
        self.state = VerificationState::Confirmed;
        let mut out = vec![Step::Mac { mac }];
        out.extend(self.check());
        Ok(out)
    }

    /// Once this side confirmed and the other's MAC is here: the other device's key is verified,
    /// or the verification ends.
    fn check(&mut self) -> Vec<Step> {
        let (Some(est), Some(mac), true) = (&self.established, &self.their_mac, self.confirmed)
        else {
            return Vec::new();
        };
        let ok = Mac::from_base64(mac).ok().is_some_and(|mac| {
            est.verify_mac(
                &self.their_ed25519,
                &self.mac_info(&self.them, &self.me),
                &mac,
            )
            .is_ok()
        });
        if ok {
            self.state = VerificationState::Verified;
            self.established = None;
            Vec::new()
        } else {
            self.cancel(
                "the other device's identity key did not match: someone may be intercepting",
            )
        }
    }
}

/// A verification of one device, in progress on this device. Keep it while both people compare;
/// call [`Verification::poll`] after each sync.
pub struct Verification {
    machine: Machine,
    conversation: String,
    device: String,
    /// The last `verification_in` row read.
    cursor: i64,
}

impl Verification {
    pub fn txn(&self) -> &str {
        &self.machine.txn
    }

    /// The device being verified.
    pub fn device(&self) -> &str {
        &self.device
    }

    pub fn state(&self) -> VerificationState {
        self.machine.state().clone()
    }

    /// Takes the other device's steps that arrived with the last sync, and queues the answers
    /// (they go with the next sync).
    pub fn poll(&mut self, m: &Messaging) -> Result<VerificationState> {
        let rows: Vec<(i64, String, String)> = m.cx.store.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, txn, step FROM verification_in WHERE sender_device = ?1 AND id > ?2 ORDER BY id",
            )?;
            let rows = stmt.query_map(params![self.device, self.cursor], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        })?;
        for (id, txn, step) in rows {
            self.cursor = id;
            let Ok(step) = serde_json::from_str::<Step>(&step) else {
                continue;
            };
            if txn != self.machine.txn {
                // Both people pressed "verify" at once: the start of the device with the smaller
                // id goes on, the other is dropped.
                if step == Step::Start
                    && self.machine.started
                    && matches!(self.machine.state, VerificationState::Waiting)
                    && self.device < self.machine.me
                {
                    let (me, ours, theirs) = (
                        self.machine.me.clone(),
                        self.machine.our_ed25519.clone(),
                        self.machine.their_ed25519.clone(),
                    );
                    let (machine, out) =
                        Machine::begin(&txn, &me, &self.device, false, &ours, &theirs);
                    self.machine = machine;
                    self.send(m, out)?;
                }
                // Any other transaction of that device is over (or never to be answered).
                forget_request(m, &txn)?;
                continue;
            }
            let out = self.machine.on(step);
            self.send(m, out)?;
        }
        self.settle(m)?;
        Ok(self.state())
    }

    /// Whether both devices show the same numbers (as the two people said to each other).
    pub fn confirm(&mut self, m: &Messaging, matches: bool) -> Result<VerificationState> {
        let out = self.machine.confirm(matches)?;
        self.send(m, out)?;
        self.settle(m)?;
        Ok(self.state())
    }

    /// Ends the verification; the other device is told.
    pub fn cancel(&mut self, m: &Messaging) -> Result<()> {
        if !self.machine.done() {
            let out = self.machine.cancel("cancelled by the user");
            self.send(m, out)?;
        }
        Ok(())
    }

    fn send(&self, m: &Messaging, steps: Vec<Step>) -> Result<()> {
        queue(
            m,
            &self.conversation,
            &self.device,
            &self.machine.txn,
            steps,
        )
    }

    /// A verified device is marked so, against the key this device trusts for it; once over, no
    /// request of that device is left on offer.
    fn settle(&self, m: &Messaging) -> Result<()> {
        if self.machine.done() {
            m.cx.store.write(|tx| {
                tx.execute(
                    "DELETE FROM verification_in WHERE sender_device = ?1 AND step = '{\"kind\":\"start\"}'",
                    [&self.device],
                )?;
                Ok(())
            })?;
        }
        if self.machine.state == VerificationState::Verified {
            let now = m.cx.clock.now().timestamp_millis();
            m.cx.store.write(|tx| {
                tx.execute(
                    "UPDATE peer_device SET verified_ms = ?3 WHERE device_id = ?1 AND ed25519 = ?2 AND changed_ms IS NULL",
                    params![self.device, self.machine.their_ed25519, now],
                )?;
                Ok(())
            })?;
        }
        Ok(())
    }
}

fn queue(
    m: &Messaging,
    conversation: &str,
    device: &str,
    txn: &str,
    steps: Vec<Step>,
) -> Result<()> {
    if steps.is_empty() {
        return Ok(());
    }
    m.cx.store.write(|tx| {
        for step in steps {
            let content = Queued {
                txn: txn.to_owned(),
                step,
            };
            tx.prepare_cached(
                "INSERT INTO verification_out (conversation, recipient_device, step) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![conversation, device, serde_json::to_string(&content)?])?;
        }
        Ok(())
    })
}

fn forget_request(m: &Messaging, txn: &str) -> Result<()> {
    m.cx.store.write(|tx| {
        tx.execute(
            "DELETE FROM verification_in WHERE txn = ?1 AND step = '{\"kind\":\"start\"}'",
            [txn],
        )?;
        Ok(())
    })
}

/// How long a request to verify stays on offer.
const REQUEST_TTL_MS: i64 = 10 * 60 * 1000;

impl Messaging<'_> {
    /// What a verification of `device_id` needs: this device's id and key, the device's user and
    /// trusted key, and a conversation both share (the steps travel through it).
    fn verification_parties(&self, device_id: &str) -> Result<(String, String, String, String)> {
        let (user, me) = crate::sync::server_identity(&self.cx.store)?.ok_or(Error::NotEnrolled)?;
        let ours = self
            .identity()?
            .ok_or_else(|| {
                Error::Conflict("this device has no identity keys yet: sync first".into())
            })?
            .ed25519;
        let not_found = || Error::NotFound {
            what: "device",
            id: device_id.to_owned(),
        };
        let peer = self
            .cx
            .store
            .read(|c| session::peer(c, device_id))?
            .filter(|_| device_id != me)
            .ok_or_else(not_found)?;
        if peer.changed {
            return Err(Error::IdentityChanged {
                devices: vec![device_id.to_owned()],
            });
        }
        let conversation: String = self
            .cx
            .store
            .read(|c| {
                Ok(c.prepare_cached(
                    "SELECT a.conversation FROM conversation_member a JOIN conversation_member b
                     ON b.conversation = a.conversation WHERE a.user_id = ?1 AND b.user_id = ?2
                     ORDER BY a.conversation LIMIT 1",
                )?
                .query_row(params![user, peer.user_id], |r| r.get(0))
                .optional()?)
            })?
            .ok_or_else(not_found)?;
        Ok((me, ours, peer.ed25519, conversation))
    }

    /// Starts verifying `device_id` (a device listed by `devices()`): the request goes with the
    /// next sync; the other person accepts it on that device.
    pub fn verify(&self, device_id: &str) -> Result<Verification> {
        let (me, ours, theirs, conversation) = self.verification_parties(device_id)?;
        let txn = uuid::Uuid::new_v4().to_string();
        let (machine, out) = Machine::begin(&txn, &me, device_id, true, &ours, &theirs);
        let cursor = self.verification_cursor()?;
        let v = Verification {
            machine,
            conversation,
            device: device_id.to_owned(),
            cursor,
        };
        v.send(self, out)?;
        Ok(v)
    }

    /// Other devices' requests to verify this one (from the last ten minutes).
    pub fn verification_requests(&self) -> Result<Vec<VerificationRequest>> {
        let since = self.cx.clock.now().timestamp_millis() - REQUEST_TTL_MS;
        self.cx.store.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT txn, sender_device, sender_user, received_ms FROM verification_in
                 WHERE step = '{\"kind\":\"start\"}' AND received_ms >= ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map([since], |r| {
                Ok(VerificationRequest {
                    txn: r.get(0)?,
                    device_id: r.get(1)?,
                    user_id: r.get(2)?,
                    at_ms: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        })
    }

    /// Accepts another device's request `txn`: both devices show the numbers after the next
    /// syncs.
    pub fn accept_verification(&self, txn: &str) -> Result<Verification> {
        let request = self
            .verification_requests()?
            .into_iter()
            .find(|r| r.txn == txn)
            .ok_or_else(|| Error::NotFound {
                what: "verification request",
                id: txn.to_owned(),
            })?;
        let (me, ours, theirs, conversation) = self.verification_parties(&request.device_id)?;
        let (machine, out) = Machine::begin(txn, &me, &request.device_id, false, &ours, &theirs);
        let cursor = self.verification_cursor()?;
        let v = Verification {
            machine,
            conversation,
            device: request.device_id,
            cursor,
        };
        v.send(self, out)?;
        forget_request(self, txn)?;
        Ok(v)
    }

    fn verification_cursor(&self) -> Result<i64> {
        self.cx.store.read(|c| {
            Ok(c.query_row(
                "SELECT coalesce(max(id), 0) FROM verification_in",
                [],
                |r| r.get(0),
            )?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "device-a";
    const B: &str = "device-b";
    const A_ED: &str = "a-ed25519-key";
    const B_ED: &str = "b-ed25519-key";

    /// Runs steps between two machines until neither has anything to say.
    fn exchange(a: &mut Machine, b: &mut Machine, mut to_b: Vec<Step>, mut to_a: Vec<Step>) {
        while !to_b.is_empty() || !to_a.is_empty() {
            let mut next_a = Vec::new();
            for s in to_b.drain(..) {
                next_a.extend(b.on(s));
            }
            let mut next_b = Vec::new();
            for s in to_a.drain(..) {
                next_b.extend(a.on(s));
            }
            to_a = next_a;
            to_b = next_b;
        }
    }

    fn decimals(m: &Machine) -> [u16; 3] {
        match m.state() {
            VerificationState::Compare { decimals } => *decimals,
            s => panic!("not comparing: {s:?}"),
        }
    }

    #[test]
    fn two_honest_devices_show_the_same_numbers_and_verify_each_other() {
        let (mut a, out) = Machine::begin("t1", A, B, true, A_ED, B_ED);
        let mut to_a = Vec::new();
        let mut b = None;
        for s in out {
            assert_eq!(s, Step::Start);
            let (m, o) = Machine::begin("t1", B, A, false, B_ED, A_ED);
            b = Some(m);
            to_a = o;
        }
        let mut b = b.unwrap();
        exchange(&mut a, &mut b, Vec::new(), to_a);
        let shown = decimals(&a);
        assert_eq!(shown, decimals(&b));
        assert!(shown.iter().all(|d| (1000..=9191).contains(d)), "{shown:?}");
        let to_b = a.confirm(true).unwrap();
        assert_eq!(a.state(), &VerificationState::Confirmed);
        let to_a = b.confirm(true).unwrap();
        exchange(&mut a, &mut b, to_b, to_a);
        assert_eq!(a.state(), &VerificationState::Verified);
        assert_eq!(b.state(), &VerificationState::Verified);
    }

    /// A server that hands out its own keys relays each side's steps through its own machines:
    /// the two people see different numbers; if they confirm anyway, the MACs fail.
    #[test]
    fn an_interceptor_shows_different_numbers_and_its_macs_fail() {
        const M_ED: &str = "mallory-ed25519-key";
        let (mut a, _) = Machine::begin("t1", A, B, true, A_ED, B_ED);
        // Mallory plays B towards A and A towards B (the device ids stay, the keys are hers).
        let (mut m_as_b, to_a) = Machine::begin("t1", B, A, false, M_ED, A_ED);
        let (mut m_as_a, _) = Machine::begin("t1", A, B, true, M_ED, B_ED);
        let (mut b, to_m) = Machine::begin("t1", B, A, false, B_ED, A_ED);
        exchange(&mut a, &mut m_as_b, Vec::new(), to_a);
        exchange(&mut m_as_a, &mut b, Vec::new(), to_m);
        assert_ne!(
            decimals(&a),
            decimals(&b),
            "the people see different numbers"
        );
        // They confirm without looking: each side gets Mallory's MAC over her own key.
        let a_mac = a.confirm(true).unwrap();
        let b_mac = b.confirm(true).unwrap();
        let m_to_a = m_as_b.confirm(true).unwrap();
        let m_to_b = m_as_a.confirm(true).unwrap();
        exchange(&mut a, &mut m_as_b, a_mac, m_to_a);
        exchange(&mut m_as_a, &mut b, m_to_b, b_mac);
        for s in [a.state(), b.state()] {
            assert!(
                matches!(s, VerificationState::Cancelled { reason } if reason.contains("intercepting")),
                "{s:?}"
            );
        }
    }

    #[test]
    fn a_key_that_breaks_its_commitment_or_a_step_out_of_order_ends_it() {
        let (mut a, _) = Machine::begin("t1", A, B, true, A_ED, B_ED);
        let (b, _) = Machine::begin("t1", B, A, false, B_ED, A_ED);
        assert_eq!(
            a.on(Step::Accept {
                commitment: commitment(&b.our_key, "t1")
            })
            .len(),
            1
        );
        // Another key than the one committed to (chosen after seeing A's).
        let other = Sas::new().public_key().to_base64();
        let out = a.on(Step::Key { key: other });
        assert!(matches!(&out[..], [Step::Cancel { .. }]), "{out:?}");
        assert!(matches!(a.state(), VerificationState::Cancelled { .. }));
        // Nothing more is taken after the end.
        assert!(a
            .on(Step::Key {
                key: b.our_key.clone()
            })
            .is_empty());

        let (mut b, _) = Machine::begin("t2", B, A, false, B_ED, A_ED);
        let out = b.on(Step::Mac { mac: "AAAA".into() });
        assert!(matches!(&out[..], [Step::Cancel { .. }]), "{out:?}");
        let (mut c, _) = Machine::begin("t3", A, B, true, A_ED, B_ED);
        assert!(c.confirm(true).is_err(), "no numbers yet");
        let (mut d, _) = Machine::begin("t4", B, A, false, B_ED, A_ED);
        assert!(d
            .on(Step::Cancel {
                reason: "no".into()
            })
            .is_empty());
        assert!(
            matches!(d.state(), VerificationState::Cancelled { reason } if reason.contains("cancelled"))
        );
    }

    #[test]
    fn numbers_that_do_not_match_cancel_on_both_sides() {
        let (mut a, _) = Machine::begin("t1", A, B, true, A_ED, B_ED);
        let (mut b, to_a) = Machine::begin("t1", B, A, false, B_ED, A_ED);
        exchange(&mut a, &mut b, Vec::new(), to_a);
        let to_a = b.confirm(false).unwrap();
        exchange(&mut a, &mut b, Vec::new(), to_a);
        assert!(matches!(a.state(), VerificationState::Cancelled { .. }));
        assert!(matches!(b.state(), VerificationState::Cancelled { .. }));
    }
}
