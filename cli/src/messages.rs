//! `polku messages`: the care-team conversations of this device. Everything here is local (it
//! works offline); `polku sync` encrypts, sends and receives.

use chrono::TimeZone;
use chrono_tz::Tz;
use polku_core::messaging::Message;
use polku_core::{Error, Polku};
use serde_json::json;

use crate::args::MessagesCmd;
use crate::output::print_value;

pub(crate) fn run(p: &Polku, cmd: &MessagesCmd, json: bool, tz: Tz) -> Result<(), Error> {
    let m = p.messaging();
    let when = |ms: i64| {
        tz.timestamp_millis_opt(ms)
            .single()
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default()
    };
    match cmd {
        MessagesCmd::List => {
            let all = m.conversations()?;
            if json {
                print_value(&json!({ "conversations": all }));
            } else if all.is_empty() {
                println!("No conversations yet (they appear after the first sync).");
            } else {
                for c in all {
                    let last = c.last_sent_ms.map(when).unwrap_or_else(|| "-".into());
                    println!(
                        "{}  {} unread / {} messages, last {}  members: {}",
                        c.id,
                        c.unread,
                        c.messages,
                        last,
                        c.members.join(", ")
                    );
                }
            }
        }
        MessagesCmd::Read {
            conversation,
            before,
            limit,
        } => {
            let page = m.page(conversation, before.as_deref(), *limit)?;
            if json {
                print_value(&json!({ "messages": page }));
            } else if page.is_empty() {
                println!("No messages.");
            } else {
                for msg in &page {
                    print_message(msg, &when);
                }
            }
        }
        MessagesCmd::Send { conversation, text } => {
            let msg = m.send(conversation, text)?;
            if json {
                print_value(&json!({ "message": msg }));
            } else {
                println!(
                    "Queued {} (encrypted and sent with the next `polku sync`).",
                    msg.id
                );
            }
        }
        MessagesCmd::Attach {
            conversation,
            file,
            mime,
        } => {
            let data =
                std::fs::read(file).map_err(|e| Error::Io(format!("{}: {e}", file.display())))?;
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let msg = m.attach(conversation, &name, mime.as_deref(), &data)?;
            if json {
                print_value(&json!({ "message": msg }));
            } else if let Some(a) = &msg.attachment {
                println!(
                    "Queued {} with attachment {} ({} bytes; sealed, uploaded with the next `polku sync`).",
                    msg.id, a.id, a.size
                );
            }
        }
        MessagesCmd::Fetch { attachment, out } => {
            let data = crate::runtime()?.block_on(m.fetch_attachment(attachment))?;
            std::fs::write(out, &data).map_err(|e| Error::Io(format!("{}: {e}", out.display())))?;
            if json {
                print_value(&json!({ "attachment": attachment, "bytes": data.len(), "out": out }));
            } else {
                println!("Saved {} bytes to {}.", data.len(), out.display());
            }
        }
        MessagesCmd::MarkRead { conversation } => {
            let n = m.mark_read(conversation)?;
            if json {
                print_value(&json!({ "marked_read": n }));
            } else {
                println!("{n} message(s) marked read.");
            }
        }
        MessagesCmd::Devices => {
            let mine = m.identity()?;
            let devices = m.devices()?;
            if json {
                print_value(&json!({ "this_device": mine, "devices": devices }));
            } else {
                match mine {
                    Some(k) => println!("This device's identity key: {}", k.ed25519),
                    None => println!("This device has no identity keys yet (enroll and sync)."),
                }
                for d in devices {
                    println!(
                        "{}  {}  {}  {}",
                        d.device_id, d.user_id, d.state, d.fingerprint
                    );
                    if let Some(new) = d.changed_fingerprint {
                        println!(
                            "    now shows {new}: check with its owner, then `polku messages accept {}`",
                            d.device_id
                        );
                    }
                }
            }
        }
        MessagesCmd::Accept { device } => {
            m.accept_identity(device)?;
            if json {
                print_value(&json!({ "accepted": device }));
            } else {
                println!("Accepted the new identity keys of {device}.");
            }
        }
        MessagesCmd::Verify {
            device,
            timeout_seconds,
        } => verify(p, device, *timeout_seconds, json)?,
        MessagesCmd::Rejected => {
            let all = m.rejected()?;
            if json {
                print_value(&json!({ "rejected": all }));
            } else {
                for r in all {
                    println!("{}  from {}: {}", when(r.at_ms), r.sender_device, r.reason);
                }
            }
        }
    }
    Ok(())
}

/// Runs a verification to its end: syncing every half second, showing the numbers when both
/// devices have them and asking whether they match (the answer is read from stdin).
fn verify(p: &Polku, device: &str, timeout_seconds: u64, json: bool) -> Result<(), Error> {
    use polku_core::messaging::VerificationState as S;
    use std::io::{BufRead, Write};
    let m = p.messaging();
    let rt = crate::runtime()?;
    let sync = || rt.block_on(p.sync().sync(None)).map(|_| ());
    sync()?;
    let asked = m
        .verification_requests()?
        .into_iter()
        .rev()
        .find(|r| r.device_id == device);
    let mut v = match asked {
        Some(r) => m.accept_verification(&r.txn)?,
        None => m.verify(device)?,
    };
    // Prompts go to stderr so that --json output stays one document.
    eprintln!("Verifying {device}: run `polku messages verify <this device>` on it too.");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(timeout_seconds);
    let mut shown = None;
    loop {
        sync()?;
        match v.poll(&m)? {
            S::Compare { decimals } if shown.is_none() => {
                eprint!(
                    "Both devices show: {} {} {}\nAre they the same on the other device? [y/N] ",
                    decimals[0], decimals[1], decimals[2]
                );
                let _ = std::io::stderr().flush();
                let mut answer = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut answer)
                    .map_err(|e| Error::Io(e.to_string()))?;
                let yes = matches!(answer.trim(), "y" | "Y" | "yes" | "kyllä" | "k");
                v.confirm(&m, yes)?;
                shown = Some(decimals);
            }
            S::Verified => {
                sync()?;
                if json {
                    print_value(&json!({ "verified": device, "decimals": shown }));
                } else {
                    println!(
                        "Verified {device}: it is shown `verified` in `polku messages devices`."
                    );
                }
                return Ok(());
            }
            S::Cancelled { reason } => {
                sync()?;
                return Err(Error::Crypto(format!(
                    "the verification of {device} ended: {reason}"
                )));
            }
            _ => {}
        }
        if std::time::Instant::now() > deadline {
            v.cancel(&m)?;
            sync()?;
            return Err(Error::Network(format!(
                "{device} did not finish the verification within {timeout_seconds} s"
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

fn print_message(msg: &Message, when: &dyn Fn(i64) -> String) {
    let read_by: Vec<&str> = msg
        .receipts
        .iter()
        .filter(|r| r.read_ms.is_some())
        .map(|r| r.user.as_str())
        .collect();
    let state = if read_by.is_empty() {
        msg.state.clone()
    } else {
        format!("read by {}", read_by.join(", "))
    };
    let unread = if msg.state == "received" && msg.read_ms.is_none() {
        " (unread)"
    } else {
        ""
    };
    println!(
        "{}  {}{unread}  [{state}]  {}",
        when(msg.sent_ms),
        msg.sender_user,
        msg.id
    );
    match &msg.attachment {
        Some(a) => println!(
            "    [attachment {}: {} ({}, {} bytes){}]",
            a.id,
            a.name,
            a.mime,
            a.size,
            if a.on_device {
                ""
            } else {
                ", `polku messages fetch` to download"
            }
        ),
        None => {
            for line in msg.body.lines() {
                println!("    {line}");
            }
        }
    }
}
