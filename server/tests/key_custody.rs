//! The database key is kept apart from the data it protects (issue 9, finding 1): the real
//! `polku-server` binary, as an operator runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// `polku-server ARGS` with no key in the environment but what `env` gives.
fn server(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_polku-server"));
    c.args(args)
        .env_remove("POLKU_SERVER_KEY_FILE")
        .env_remove("POLKU_SERVER_KEY")
        .env_remove("CREDENTIALS_DIRECTORY");
    for (k, v) in env {
        c.env(k, v);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = c.output().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every byte of every file under `dir`.
fn contents(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(contents(&p));
        } else {
            out.extend(std::fs::read(&p).unwrap());
        }
    }
    out
}

fn holds(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
}

fn create_user(data: &Path, key: &Path, name: &str) -> Run {
    create_user_with(data, &["--key-file", s(key)], name, &[])
}

/// `create-user` with the key named by `key_args` and `env`.
fn create_user_with(data: &Path, key_args: &[&str], name: &str, env: &[(&str, &str)]) -> Run {
    let mut args = vec!["--data", s(data)];
    args.extend_from_slice(key_args);
    args.extend(["create-user", "--role", "citizen", "--name", name]);
    server(&args, env)
}

#[test]
fn a_copy_of_the_data_folder_is_ciphertext_without_the_key_kept_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = dir.path().join("keys/server.key");
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();

    let r = server(&["--data", s(&data), "--key-file", s(&key), "init"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains(s(&key)) && r.stdout.contains("back it up apart"),
        "{}",
        r.stdout
    );
    let key_hex = std::fs::read_to_string(&key).unwrap().trim().to_owned();
    assert_eq!(key_hex.len(), 64);
    let r = create_user(&data, &key, "CANARY-Aino-4711");
    assert_eq!(r.code, 0, "{}", r.stderr);

    // Nothing in the folder gives the key or the data away.
    let bytes = contents(&data);
    assert!(
        !holds(&bytes, &key_hex),
        "the key is not in the data folder"
    );
    assert!(
        !holds(&bytes, "CANARY-Aino-4711"),
        "the data folder is ciphertext"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&key), 0o600);
        assert_eq!(mode(&data), 0o700);
        for e in std::fs::read_dir(&data).unwrap() {
            let p = e.unwrap().path();
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
    }

    // A copy (a backup, a snapshot) cannot be served or administered: not without the key, not
    // with another one.
    let copy = dir.path().join("copy");
    copy_dir(&data, &copy);
    let r = server(&["--data", s(&copy), "invite", "--user", "x"], &[]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("--key-file"), "{}", r.stderr);
    let other = dir.path().join("other.key");
    let r = server(
        &[
            "--data",
            s(&dir.path().join("d2")),
            "--key-file",
            s(&other),
            "init",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = create_user(&copy, &other, "Mallory");
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("does not open with this key"),
        "{}",
        r.stderr
    );
    // With the key kept elsewhere it does: the backup is restorable.
    assert_eq!(create_user(&copy, &key, "Restored").code, 0);
}

#[test]
fn a_key_inside_the_data_folder_or_readable_by_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let inside = data.join("server.key");
    let r = server(
        &[
            "--json",
            "--data",
            s(&data),
            "--key-file",
            s(&inside),
            "init",
        ],
        &[],
    );
    assert_eq!(r.code, 2);
    let err: serde_json::Value = serde_json::from_str(r.stderr.trim()).unwrap();
    assert_eq!(err["error"]["code"], "key_in_data_folder", "{}", r.stderr);

    let key = dir.path().join("server.key");
    assert_eq!(
        server(&["--data", s(&data), "--key-file", s(&key), "init"], &[]).code,
        0
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
        let r = create_user(&data, &key, "Aino");
        assert_ne!(r.code, 0);
        assert!(r.stderr.contains("chmod 600"), "{}", r.stderr);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // The variable and systemd's credential folder name the same file.
    let by_var = create_user_with(&data, &[], "A", &[("POLKU_SERVER_KEY_FILE", s(&key))]);
    assert_eq!(by_var.code, 0, "{}", by_var.stderr);
    let creds = dir.path().join("creds");
    std::fs::create_dir_all(&creds).unwrap();
    std::fs::copy(&key, creds.join("polku-server.key")).unwrap();
    let by_credential = create_user_with(&data, &[], "B", &[("CREDENTIALS_DIRECTORY", s(&creds))]);
    assert_eq!(by_credential.code, 0, "{}", by_credential.stderr);

    // A data folder of the old layout, its key beside the data, is refused with the way out.
    std::fs::copy(&key, &inside).unwrap();
    let r = create_user(&data, &key, "Aino");
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("Move it out"), "{}", r.stderr);
}

#[test]
fn rekey_puts_the_data_under_a_new_key_and_the_old_one_stops_working() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let old: PathBuf = dir.path().join("old.key");
    let new: PathBuf = dir.path().join("new.key");
    assert_eq!(
        server(&["--data", s(&data), "--key-file", s(&old), "init"], &[]).code,
        0
    );
    let r = create_user(&data, &old, "Aino");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let aino = r.stdout.split_whitespace().next().unwrap().to_owned();

    let r = server(
        &[
            "--data",
            s(&data),
            "--key-file",
            s(&old),
            "rekey",
            "--new-key-file",
            s(&new),
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(create_user(&data, &old, "B")
        .stderr
        .contains("does not open with this key"));
    // Everything is still there under the new key.
    let r = server(
        &[
            "--data",
            s(&data),
            "--key-file",
            s(&new),
            "invite",
            "--user",
            &aino,
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
}
