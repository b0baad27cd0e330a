//! `polku-server`: run the sync server and administer it (users, enrollment codes, assignments,
//! device revocation, the audit log). Admin commands work on the data folder directly.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use polku_server::{ApiError, Role, SqliteStorage, Storage};

#[derive(Parser)]
#[command(name = "polku-server", version, about = "Polku sync server")]
struct Cli {
    /// The server's data folder (database and key).
    #[arg(long, global = true, default_value = "polku-server-data")]
    data: PathBuf,
    /// Print results as JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the data folder, its encryption key and database.
    Init,
    /// Serve the sync API. Plain HTTP: put TLS termination (a reverse proxy) in front in production.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8440")]
        listen: String,
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
    /// Print who accessed a subject's records.
    Audit {
        #[arg(long)]
        subject: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("polku-server: {e}");
            ExitCode::from(match e {
                ApiError::BadRequest { .. } | ApiError::TooLarge(_) => 2,
                ApiError::NotFound(_) => 4,
                _ => 1,
            })
        }
    }
}

fn run(cli: Cli) -> Result<(), ApiError> {
    let json = cli.json;
    let print = |v: serde_json::Value, text: String| {
        if json {
            println!("{v}");
        } else {
            println!("{text}");
        }
    };
    match cli.cmd {
        Cmd::Init => {
            SqliteStorage::init(&cli.data)?;
            print(
                serde_json::json!({"data": cli.data}),
                format!("initialised {}", cli.data.display()),
            );
        }
        Cmd::Serve { listen } => {
            let storage: Arc<dyn Storage> = Arc::new(SqliteStorage::open(&cli.data)?);
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
                polku_server::serve(listener, storage, async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))
            })?;
        }
        Cmd::CreateUser { role, name } => {
            let u = SqliteStorage::open(&cli.data)?.create_user(role, &name)?;
            print(
                serde_json::json!({"id": u.id}),
                format!("{} {} {}", u.id, role.as_str(), u.name),
            );
        }
        Cmd::Invite { user, ttl_minutes } => {
            let code = SqliteStorage::open(&cli.data)?.invite(
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
        } => {
            SqliteStorage::open(&cli.data)?.assign(&professional, &subject)?;
            print(serde_json::json!({"assigned": true}), "assigned".into());
        }
        Cmd::Unassign {
            professional,
            subject,
        } => {
            SqliteStorage::open(&cli.data)?.unassign(&professional, &subject)?;
            print(
                serde_json::json!({"assigned": false}),
                "assignment ended".into(),
            );
        }
        Cmd::RevokeDevice { device } => {
            SqliteStorage::open(&cli.data)?.revoke_device(&device)?;
            print(
                serde_json::json!({"revoked": device}),
                format!("revoked {device}"),
            );
        }
        Cmd::NewEpoch => {
            let e = SqliteStorage::new_epoch(&cli.data)?;
            print(
                serde_json::json!({"epoch": e}),
                format!("new epoch {e}: devices will re-upload what they hold"),
            );
        }
        Cmd::Audit { subject } => {
            let rows = SqliteStorage::open(&cli.data)?.audit(&subject)?;
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
