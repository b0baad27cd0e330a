//! `polku-server`: run the sync server and administer it (users, enrollment codes, assignments,
//! device revocation, the audit log). Admin commands work on the data folder directly.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use polku_server::{ApiError, KeySource, Limits, Role, ServerKey, SqliteStorage, Storage};

#[derive(Parser)]
#[command(name = "polku-server", version, about = "Polku sync server")]
struct Cli {
    /// The server's data folder (the encrypted database).
    #[arg(long, global = true, default_value = "polku-server-data")]
    data: PathBuf,
    /// The database key's file, outside the data folder and readable by this user only. Without
    /// it: `$CREDENTIALS_DIRECTORY/polku-server.key` (systemd LoadCredential), else the
    /// `POLKU_SERVER_KEY` environment variable (64 hex digits).
    #[arg(long, global = true, env = "POLKU_SERVER_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// Print results as JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the data folder and its encrypted database, and a new key at --key-file (or use
    /// POLKU_SERVER_KEY). Back the key up apart from the data.
    Init,
    /// Re-encrypt the database under a new key written to --new-key-file (stop the server first;
    /// start it again with the new key file).
    Rekey {
        #[arg(long)]
        new_key_file: PathBuf,
    },
    /// Serve the sync API. Plain HTTP: put TLS termination (a reverse proxy) in front in production.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8440")]
        listen: String,
        /// The TLS proxy in front (repeat for several): its X-Forwarded-For names the client whose
        /// failed attempts are counted. Without it every client counts as the proxy's address.
        #[arg(
            long = "trusted-proxy",
            env = "POLKU_TRUSTED_PROXIES",
            value_delimiter = ','
        )]
        trusted_proxies: Vec<std::net::IpAddr>,
        /// Connections served at once (more are answered 503).
        #[arg(long, default_value_t = Limits::default().max_connections)]
        max_connections: usize,
        /// Connections served at once from one client address.
        #[arg(long, default_value_t = Limits::default().max_connections_per_address)]
        max_connections_per_address: usize,
        /// Failed enrollment codes or device tokens an address (or one code prefix) may send in a
        /// row before it is locked out.
        #[arg(long, default_value_t = Limits::default().failure_burst)]
        failure_burst: u32,
        /// Minutes a locked-out address or code prefix is refused.
        #[arg(long, default_value_t = Limits::default().lockout.as_secs() / 60)]
        lockout_minutes: u64,
        /// The largest attachment (photo, PDF) a device may upload, in bytes.
        #[arg(long, default_value_t = polku_protocol::attachment::DEFAULT_MAX_ATTACHMENT_BYTES)]
        max_attachment_bytes: usize,
        /// Days an attachment is kept when not every recipient device fetched it.
        #[arg(long, default_value_t = polku_protocol::attachment::DEFAULT_RETENTION_DAYS)]
        attachment_retention_days: u64,
    },
    /// Add a user.
    CreateUser {
        /// citizen, professional, outreach or admin
        #[arg(long)]
        role: Role,
        #[arg(long)]
        name: String,
    },
    /// Print a one-time enrollment code for a user's new device.
    Invite {
        #[arg(long)]
        user: String,
        /// Minutes until the code expires.
        #[arg(long, default_value_t = 1440)]
        ttl_minutes: u32,
    },
    /// Put a citizen in a professional's care (or an outreach worker's caseload).
    Assign {
        #[arg(long)]
        professional: String,
        #[arg(long)]
        subject: String,
        /// `care` (the whole record and the conversation) or `coordination` (plans and hands out
        /// the client's visits; reads no clinical record, docs/visits.md).
        #[arg(long, default_value = "care", value_parser = ["care", "coordination"])]
        scope: String,
    },
    /// End an assignment; the subject's records leave the worker's devices on their next sync.
    Unassign {
        #[arg(long)]
        professional: String,
        #[arg(long)]
        subject: String,
    },
    /// Refuse a device from now on.
    RevokeDevice { device: String },
    /// After restoring the data folder from a backup: devices re-upload what the backup lacks.
    NewEpoch,
    /// Print who accessed a subject's records, or (--failures) the failed enrollment and token
    /// attempts and the lockouts they caused.
    Audit {
        #[arg(
            long,
            required_unless_present = "failures",
            conflicts_with = "failures"
        )]
        subject: Option<String>,
        #[arg(long)]
        failures: bool,
        /// With --failures: how far back.
        #[arg(long, default_value_t = 24)]
        since_hours: u32,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if json {
                // The same shape as the API's errors and the `polku` CLI's.
                eprintln!(
                    "{}",
                    serde_json::json!({"error": {"code": e.code(), "message": e.to_string()}})
                );
            } else {
                eprintln!("polku-server: {e}");
            }
            ExitCode::from(match e {
                ApiError::BadRequest { .. } | ApiError::TooLarge(_) => 2,
                ApiError::NotFound(_) => 4,
                _ => 1,
            })
        }
    }
}

/// Where the key comes from: the flag or its variable, systemd's credential, the environment.
fn key_source(flag: Option<PathBuf>) -> Result<KeySource, ApiError> {
    if let Some(path) = flag {
        return Ok(KeySource::File(path));
    }
    if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        let path = Path::new(&dir).join("polku-server.key");
        if path.exists() {
            return Ok(KeySource::File(path));
        }
    }
    if std::env::var_os("POLKU_SERVER_KEY").is_some() {
        return Ok(KeySource::Env);
    }
    Err(ApiError::bad(
        "no_key",
        "the database key: name its file with --key-file PATH (or POLKU_SERVER_KEY_FILE, or systemd LoadCredential=polku-server.key), or set POLKU_SERVER_KEY (docs/operations.md)",
    ))
}

fn run(cli: Cli) -> Result<(), ApiError> {
    let json = cli.json;
    let source = key_source(cli.key_file.clone());
    let key = || match &source {
        Ok(s) => ServerKey::load(s, &cli.data),
        Err(e) => Err(ApiError::bad("no_key", e.to_string())),
    };
    let open = || SqliteStorage::open(&cli.data, &key()?);
    let print = |v: serde_json::Value, text: String| {
        if json {
            println!("{v}");
        } else {
            println!("{text}");
        }
    };
    match cli.cmd {
        Cmd::Init => {
            let (key, kept) = match source? {
                KeySource::File(path) => {
                    let k = ServerKey::generate()?;
                    k.write_new(&path, &cli.data)?;
                    (k, path.display().to_string())
                }
                KeySource::Env => (
                    ServerKey::load(&KeySource::Env, &cli.data)?,
                    "POLKU_SERVER_KEY".to_owned(),
                ),
            };
            SqliteStorage::init(&cli.data, &key)?;
            print(
                serde_json::json!({"data": cli.data, "key": kept}),
                format!(
                    "initialised {}\nthe database key is in {kept}: back it up apart from the data folder (another medium or a password manager). Without it the data cannot be read; with it, a copy of the data folder can.",
                    cli.data.display()
                ),
            );
        }
        Cmd::Rekey { new_key_file } => {
            let new = ServerKey::generate()?;
            SqliteStorage::rekey(&cli.data, &key()?, &new, &new_key_file)?;
            print(
                serde_json::json!({"data": cli.data, "key": new_key_file}),
                format!(
                    "re-encrypted {} under the new key in {}: start the server with --key-file {}, back the new key up, then destroy the old one",
                    cli.data.display(),
                    new_key_file.display(),
                    new_key_file.display()
                ),
            );
        }
        Cmd::Serve {
            listen,
            trusted_proxies,
            max_connections,
            max_connections_per_address,
            failure_burst,
            lockout_minutes,
            max_attachment_bytes,
            attachment_retention_days,
        } => {
            if max_attachment_bytes == 0 || max_attachment_bytes > 512 * 1024 * 1024 {
                return Err(ApiError::bad(
                    "max_attachment_bytes",
                    format!("--max-attachment-bytes {max_attachment_bytes}: 1 byte – 512 MiB"),
                ));
            }
            let limits = Limits {
                trusted_proxies,
                max_connections,
                max_connections_per_address,
                failure_burst,
                lockout: std::time::Duration::from_secs(lockout_minutes.saturating_mul(60)),
                attachments: polku_server::AttachmentRules {
                    max_bytes: max_attachment_bytes,
                    retention: std::time::Duration::from_secs(
                        attachment_retention_days.saturating_mul(86_400),
                    ),
                },
                ..Limits::default()
            };
            let storage: Arc<dyn Storage> = Arc::new(open()?);
            let rt =
                tokio::runtime::Runtime::new().map_err(|e| ApiError::Internal(e.to_string()))?;
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(&listen)
                    .await
                    .map_err(|e| ApiError::bad("listen", format!("{listen}: {e}")))?;
                let addr = listener
                    .local_addr()
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
                // The first line says where we listen (port 0 picks a free one), for scripts and tests.
                println!("listening on http://{addr}");
                use std::io::Write;
                let _ = std::io::stdout().flush();
                polku_server::serve_with(listener, storage, limits, async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))
            })?;
        }
        Cmd::CreateUser { role, name } => {
            let u = open()?.create_user(role, &name)?;
            print(
                serde_json::json!({"id": u.id}),
                format!("{} {} {}", u.id, role.as_str(), u.name),
            );
        }
        Cmd::Invite { user, ttl_minutes } => {
            let code = open()?.invite(
                &user,
                std::time::Duration::from_secs(u64::from(ttl_minutes) * 60),
            )?;
            print(
                serde_json::json!({"code": code, "expires_in_minutes": ttl_minutes}),
                format!("{code}  (one use; expires in {ttl_minutes} min)"),
            );
        }
        Cmd::Assign {
            professional,
            subject,
            scope,
        } => {
            let s = open()?;
            match scope.as_str() {
                "coordination" => s.coordinate(&professional, &subject)?,
                _ => s.assign(&professional, &subject)?,
            }
            print(
                serde_json::json!({"assigned": true, "scope": scope}),
                format!("assigned ({scope})"),
            );
        }
        Cmd::Unassign {
            professional,
            subject,
        } => {
            open()?.unassign(&professional, &subject)?;
            print(
                serde_json::json!({"assigned": false}),
                "assignment ended".into(),
            );
        }
        Cmd::RevokeDevice { device } => {
            open()?.revoke_device(&device)?;
            print(
                serde_json::json!({"revoked": device}),
                format!("revoked {device}"),
            );
        }
        Cmd::NewEpoch => {
            let e = SqliteStorage::new_epoch(&cli.data, &key()?)?;
            print(
                serde_json::json!({"epoch": e}),
                format!("new epoch {e}: devices will re-upload what they hold"),
            );
        }
        Cmd::Audit {
            subject: None,
            since_hours,
            ..
        } => {
            let since = chrono::Utc::now().timestamp_millis() - i64::from(since_hours) * 3_600_000;
            let rows = open()?.failures(since)?;
            if json {
                println!("{}", serde_json::to_string(&rows)?);
            } else {
                for r in rows {
                    println!(
                        "{}  {:<15} {:<6} {}{}",
                        r.at,
                        r.source,
                        r.attempt,
                        r.code,
                        r.detail.map(|d| format!(" ({d})")).unwrap_or_default()
                    );
                }
            }
        }
        Cmd::Audit {
            subject: Some(subject),
            ..
        } => {
            let rows = open()?.audit(&subject)?;
            if json {
                println!("{}", serde_json::to_string(&rows)?);
            } else {
                for r in rows {
                    println!(
                        "{}  {:<10} {}  device {}  {}{}",
                        r.at,
                        r.actor_role,
                        r.actor_id,
                        r.device_id.as_deref().unwrap_or("-"),
                        r.action,
                        r.detail.map(|d| format!(" ({d})")).unwrap_or_default()
                    );
                }
            }
        }
    }
    Ok(())
}
