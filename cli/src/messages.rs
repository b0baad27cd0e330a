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
