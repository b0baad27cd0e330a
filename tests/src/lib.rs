//! Shared pieces of the end-to-end tests: a real `polku-server` on a loopback port (in-process,
//! the same code the binary runs) and encrypted device profiles enrolled with it.

pub mod api;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use polku_core::{DbKey, Polku};
use polku_server::{KeySource, Limits, Role, ServerKey, SqliteStorage, Storage};

/// The key of a test server's data folder `data`, in the file beside it (`<data>.key`), made on
/// first use: outside the folder, as the server requires.
pub fn server_key(data: &Path) -> ServerKey {
    let path = data.with_extension("key");
    if path.exists() {
        return ServerKey::load(&KeySource::File(path), data).unwrap();
    }
    let k = ServerKey::generate().unwrap();
    k.write_new(&path, data).unwrap();
    k
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub storage: Arc<SqliteStorage>,
    pub data: tempfile::TempDir,
    limits: Limits,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// Starts a fresh server on 127.0.0.1 with its own runtime thread and the default limits.
    pub fn start() -> TestServer {
        TestServer::start_with(Limits::default())
    }

    /// Starts a fresh server on 127.0.0.1 under `limits`.
    pub fn start_with(limits: Limits) -> TestServer {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path().join("server");
        let storage = Arc::new(SqliteStorage::init(&dir, &server_key(&dir)).unwrap());
        let (addr, stop, thread) = serve_on(
            "127.0.0.1:0".parse().unwrap(),
            storage.clone(),
            limits.clone(),
        );
        TestServer {
            addr,
            storage,
            data,
            limits,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Stops serving (devices' syncs fail as they do without a connection); the database stays.
    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Serves again on the same address with the same database, after [`TestServer::stop`].
    pub fn resume(&mut self) {
        let (addr, stop, thread) = serve_on(self.addr, self.storage.clone(), self.limits.clone());
        assert_eq!(addr, self.addr);
        self.stop = Some(stop);
        self.thread = Some(thread);
    }

    /// The server's database opened straight from its file, as an attacker with a copy of it and
    /// its key would (or a test that stores what a checking server never would).
    pub fn db(&self) -> rusqlite::Connection {
        let dir = self.data.path().join("server");
        let hex = std::fs::read_to_string(dir.with_extension("key")).unwrap();
        let c = rusqlite::Connection::open(dir.join("polku-server.db")).unwrap();
        c.execute_batch(&format!(
            "PRAGMA key = \"x'{}'\"; PRAGMA busy_timeout = 10000;",
            hex.trim()
        ))
        .unwrap();
        c
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn user(&self, role: Role, name: &str) -> String {
        self.storage.create_user(role, name).unwrap().id
    }

    pub fn code(&self, user: &str) -> String {
        self.storage.invite(user, Duration::from_secs(600)).unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

type Serving = (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    std::thread::JoinHandle<()>,
);

/// Serves `storage` on `addr` (port 0: a free one) in its own runtime thread until stopped.
fn serve_on(addr: SocketAddr, storage: Arc<SqliteStorage>, limits: Limits) -> Serving {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (tx, rx) = std::sync::mpsc::channel();
    let s: Arc<dyn Storage> = storage;
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            polku_server::serve_with(listener, s, limits, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
    });
    (rx.recv().unwrap(), stop, thread)
}

/// A citizen and a worker assigned to her, each with an enrolled device, on a fresh server.
pub struct CareTeam {
    pub server: TestServer,
    pub citizen: String,
    pub worker: String,
    pub phone: Device,
    pub worker_device: Device,
}

impl CareTeam {
    pub fn new(worker_role: Role) -> CareTeam {
        CareTeam::with_limits(worker_role, Limits::default())
    }

    /// [`CareTeam::new`] on a server with `limits`.
    pub fn with_limits(worker_role: Role, limits: Limits) -> CareTeam {
        let server = TestServer::start_with(limits);
        let citizen = server.user(Role::Citizen, "Aino");
        let worker = server.user(worker_role, "Hoitaja");
        server.storage.assign(&worker, &citizen).unwrap();
        let phone = Device::enrolled(&server.url(), &server.code(&citizen));
        let worker_device = Device::enrolled(&server.url(), &server.code(&worker));
        CareTeam {
            server,
            citizen,
            worker,
            phone,
            worker_device,
        }
    }
}

/// A device: an encrypted profile in its own folder.
pub struct Device {
    pub dir: tempfile::TempDir,
    pub polku: Polku,
}

pub fn key() -> DbKey {
    DbKey::from_bytes([9u8; 32])
}

impl Device {
    pub fn new() -> Device {
        let dir = tempfile::tempdir().unwrap();
        let polku = Polku::open(&dir.path().join("polku.db"), &key()).unwrap();
        Device { dir, polku }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("polku.db")
    }

    /// Enrolls with `code` at `url` and reopens the profile as the server's user.
    pub fn enrolled(url: &str, code: &str) -> Device {
        let mut d = Device::new();
        block_on(d.polku.sync().enroll(url, code, Some("test device"))).unwrap();
        d.reopen();
        d
    }

    /// [`Device::enrolled`], then opened on `clock` (a test moves it through simulated days).
    pub fn enrolled_on_clock(
        url: &str,
        code: &str,
        clock: Arc<dyn polku_core::time::Clock>,
    ) -> Device {
        let mut d = Device::enrolled(url, code);
        d.polku = Polku::open_with(
            &d.path(),
            &key(),
            polku_core::OpenOptions {
                clock,
                ..Default::default()
            },
        )
        .unwrap();
        d
    }

    pub fn reopen(&mut self) {
        self.polku = Polku::open(&self.path(), &key()).unwrap();
    }

    pub fn sync(&self) -> polku_core::Result<polku_core::sync::SyncReport> {
        block_on(self.polku.sync().sync(None))
    }

    /// The device's server token, read from its encrypted profile (to act as the device does,
    /// or as someone who stole its token would).
    pub fn token(&self) -> String {
        let c = rusqlite::Connection::open(self.path()).unwrap();
        c.execute_batch(&format!("PRAGMA key = \"x'{}'\";", "09".repeat(32)))
            .unwrap();
        c.query_row(
            "SELECT value FROM profile WHERE key = 'sync.token'",
            [],
            |r| r.get::<_, String>(0),
        )
        .unwrap()
    }
}

impl Default for Device {
    fn default() -> Self {
        Device::new()
    }
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Everything synced that a device holds, as sorted lines: equal on every device after sync.
pub fn synced_state(db: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(&format!("PRAGMA key = \"x'{}'\";", "09".repeat(32)))
        .unwrap();
    let mut out = Vec::new();
    for sql in [
        "SELECT 'e|' || s.id || '|' || version_id || '|' || entry_id || '|' || version || '|' || data || '|' || coalesce(note, '') || '|' || coalesce(deleted_reason, '') || '|' || is_head || '|' || author FROM entry_version e JOIN subject s ON s.no = e.subject_no",
        "SELECT 'q|' || s.id || '|' || q.id || '|' || answers || '|' || ifnull(language, '-') || '|' || ifnull(wording, '-') FROM questionnaire_response q JOIN subject s ON s.no = q.subject_no",
        "SELECT 'p|' || s.id || '|' || p.id || '|' || definition_id FROM pathway_enrollment p JOIN subject s ON s.no = p.subject_no",
        "SELECT 'v|' || id || '|' || enrollment_id || '|' || kind FROM pathway_event",
        "SELECT 'c|' || s.id || '|' || c.id FROM sync_conflict c JOIN subject s ON s.no = c.subject_no",
        "SELECT 'd|' || s.id || '|' || d.id || '|' || field || '|' || coalesce(value, '') || '|' || base FROM detail_edit d JOIN subject s ON s.no = d.subject_no",
        "SELECT 'f|' || s.id || '|' || f.id || '|' || rule || '|' || record_id FROM safety_flag f JOIN subject s ON s.no = f.subject_no",
        "SELECT 'a|' || s.id || '|' || a.id || '|' || flag_id || '|' || note || '|' || author FROM safety_ack a JOIN subject s ON s.no = a.subject_no",
        "SELECT 'sp|' || s.id || '|' || p.id || '|' || effective_from || '|' || plan FROM visit_plan p JOIN subject s ON s.no = p.subject_no",
        "SELECT 've|' || s.id || '|' || e.id || '|' || visit_id || '|' || kind || '|' || coalesce(task, '') || '|' || coalesce(outcome, '') || '|' || coalesce(base, '') || '|' || author FROM visit_event e JOIN subject s ON s.no = e.subject_no",
        "SELECT 'oc|' || s.id || '|' || o.id || '|' || kind || '|' || author FROM outreach_contact o JOIN subject s ON s.no = o.subject_no",
    ] {
        let mut stmt = conn.prepare(sql).unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
        out.extend(rows.map(|r| r.unwrap()));
    }
    out.sort();
    out
}

/// A loopback HTTP proxy that injects seeded faults between devices and the server: drops the
/// request, drops the reply after the server applied it, sends the request twice, replays a stale
/// earlier request later, delays, cuts the reply halfway, or answers 503 itself. Every choice is
/// logged so a failing seed replays. `set_faults(false)` makes it a plain pass-through.
pub struct FaultProxy {
    pub addr: SocketAddr,
    faults: Arc<std::sync::atomic::AtomicBool>,
    pub log: Arc<std::sync::Mutex<Vec<String>>>,
    /// HTTP bytes (request and reply, headers included) that passed through, as the server sent them.
    pub wire_bytes: Arc<std::sync::atomic::AtomicU64>,
    _thread: std::thread::JoinHandle<()>,
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Pass,
    DropRequest,
    DropReply,
    Twice,
    ReplayStale,
    Delay,
    CutReply,
    Unavailable,
}

/// The tests' seeded random source, so every failure replays from its printed seed (the same
/// generator the decoder mutation tests use).
pub use polku_protocol::mutation::Mutator as Rng;

impl FaultProxy {
    pub fn start(target: SocketAddr, seed: u64) -> FaultProxy {
        let faults = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let wire_bytes = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (f2, l2, w2) = (faults.clone(), log.clone(), wire_bytes.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                let rng = Arc::new(std::sync::Mutex::new(Rng::new(seed)));
                let stale: Arc<std::sync::Mutex<Vec<Vec<u8>>>> = Arc::default();
                loop {
                    let Ok((sock, _)) = listener.accept().await else {
                        return;
                    };
                    let (rng, stale, f2, l2, w2) = (
                        rng.clone(),
                        stale.clone(),
                        f2.clone(),
                        l2.clone(),
                        w2.clone(),
                    );
                    tokio::spawn(async move {
                        let _ = proxy_conn(sock, target, rng, stale, f2, l2, w2).await;
                    });
                }
            });
        });
        FaultProxy {
            addr: rx.recv().unwrap(),
            faults,
            log,
            wire_bytes,
            _thread: thread,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many requests or replies were faulted so far (a trial with none proved nothing).
    pub fn injected(&self) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| !l.ends_with("Pass"))
            .count()
    }

    pub fn set_faults(&self, on: bool) {
        self.faults.store(on, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Reads one HTTP/1.1 message (headers + content-length body); `None` at end of stream.
async fn read_message<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
) -> std::io::Result<Option<Vec<u8>>> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = r.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < header_end + len {
        let n = r.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    buf.truncate(header_end + len);
    Ok(Some(buf))
}

/// Sends `req` to the server on a fresh connection and returns its reply.
async fn forward(target: SocketAddr, req: &[u8]) -> std::io::Result<Option<Vec<u8>>> {
    use tokio::io::AsyncWriteExt;
    let mut s = tokio::net::TcpStream::connect(target).await?;
    s.write_all(req).await?;
    read_message(&mut s).await
}

/// Marks a reply `connection: close` so the client never reuses a socket the proxy drops.
fn closing(reply: &[u8]) -> Vec<u8> {
    let line_end = reply
        .windows(2)
        .position(|w| w == b"\r\n")
        .map_or(0, |p| p + 2);
    let mut out = reply[..line_end].to_vec();
    out.extend_from_slice(b"connection: close\r\n");
    out.extend_from_slice(&reply[line_end..]);
    out
}

async fn proxy_conn(
    mut sock: tokio::net::TcpStream,
    target: SocketAddr,
    rng: Arc<std::sync::Mutex<Rng>>,
    stale: Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
    faults: Arc<std::sync::atomic::AtomicBool>,
    log: Arc<std::sync::Mutex<Vec<String>>>,
    wire: Arc<std::sync::atomic::AtomicU64>,
) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let Some(req) = read_message(&mut sock).await? else {
        return Ok(());
    };
    let (fault, cut_at, delay_ms, replay) = {
        let mut r = rng.lock().unwrap();
        let fault = if !faults.load(std::sync::atomic::Ordering::SeqCst) {
            Fault::Pass
        } else {
            match r.next_u64() % 10 {
                0 => Fault::DropRequest,
                1 => Fault::DropReply,
                2 => Fault::Twice,
                3 => Fault::ReplayStale,
                4 => Fault::Delay,
                5 => Fault::CutReply,
                6 => Fault::Unavailable,
                _ => Fault::Pass,
            }
        };
        (fault, r.next_u64(), r.next_u64() % 40, r.next_u64())
    };
    let path = String::from_utf8_lossy(&req[..req.len().min(40)])
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_owned();
    log.lock().unwrap().push(format!("{path} {fault:?}"));
    let reply = match fault {
        Fault::DropRequest => return Ok(()),
        Fault::Unavailable => {
            let body = br#"{"error":{"code":"unavailable","message":"injected 503"}}"#;
            let mut r = format!(
                "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 0\r\ncontent-length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            r.extend_from_slice(body);
            r
        }
        Fault::Delay => {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            forward(target, &req).await?.unwrap_or_default()
        }
        Fault::Twice => {
            let _ = forward(target, &req).await?;
            forward(target, &req).await?.unwrap_or_default()
        }
        Fault::ReplayStale => {
            let old = {
                let s = stale.lock().unwrap();
                (!s.is_empty()).then(|| s[(replay as usize) % s.len()].clone())
            };
            if let Some(old) = old {
                let _ = forward(target, &old).await?;
            }
            forward(target, &req).await?.unwrap_or_default()
        }
        Fault::Pass | Fault::DropReply | Fault::CutReply => {
            forward(target, &req).await?.unwrap_or_default()
        }
    };
    wire.fetch_add(
        (req.len() + reply.len()) as u64,
        std::sync::atomic::Ordering::SeqCst,
    );
    {
        let mut s = stale.lock().unwrap();
        if s.len() < 64 {
            s.push(req);
        }
    }
    let reply = closing(&reply);
    match fault {
        Fault::DropReply => Ok(()),
        Fault::CutReply => {
            let n = (cut_at as usize) % reply.len().max(1);
            sock.write_all(&reply[..n]).await
        }
        _ => sock.write_all(&reply).await,
    }
}
