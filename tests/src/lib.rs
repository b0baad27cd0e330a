//! Shared pieces of the end-to-end tests: a real `polku-server` on a loopback port (in-process,
//! the same code the binary runs) and encrypted device profiles enrolled with it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use polku_core::{DbKey, Polku};
use polku_server::{Role, SqliteStorage, Storage};

pub struct TestServer {
    pub addr: SocketAddr,
    pub storage: Arc<SqliteStorage>,
    pub data: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// Starts a fresh server on 127.0.0.1 with its own runtime thread.
    pub fn start() -> TestServer {
        let data = tempfile::tempdir().unwrap();
        let storage = Arc::new(SqliteStorage::init(&data.path().join("server")).unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (tx, rx) = std::sync::mpsc::channel();
        let s: Arc<dyn Storage> = storage.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                polku_server::serve(listener, s, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            });
        });
        let addr = rx.recv().unwrap();
        TestServer {
            addr,
            storage,
            data,
            stop: Some(stop),
            thread: Some(thread),
        }
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
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
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

    pub fn reopen(&mut self) {
        self.polku = Polku::open(&self.path(), &key()).unwrap();
    }

    pub fn sync(&self) -> polku_core::Result<polku_core::sync::SyncReport> {
        block_on(self.polku.sync().sync(None))
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
        "SELECT 'q|' || s.id || '|' || q.id || '|' || answers FROM questionnaire_response q JOIN subject s ON s.no = q.subject_no",
        "SELECT 'p|' || s.id || '|' || p.id || '|' || definition_id FROM pathway_enrollment p JOIN subject s ON s.no = p.subject_no",
        "SELECT 'v|' || id || '|' || enrollment_id || '|' || kind FROM pathway_event",
        "SELECT 'c|' || s.id || '|' || c.id FROM sync_conflict c JOIN subject s ON s.no = c.subject_no",
    ] {
        let mut stmt = conn.prepare(sql).unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
        out.extend(rows.map(|r| r.unwrap()));
    }
    out.sort();
    out
}
