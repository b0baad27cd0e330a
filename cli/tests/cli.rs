//! The CLI as a scriptable contract: real `polku` processes against a temporary profile.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

struct Home(tempfile::TempDir);

impl Home {
    fn new() -> Self {
        let h = Home(tempfile::tempdir().unwrap());
        let out = h.run(&["init"]);
        assert!(
            out.status.success(),
            "init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        h
    }

    fn cmd(&self, pass: &str) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_polku"));
        c.env("POLKU_TEST_PASS", pass)
            .env_remove("POLKU_HOME")
            .arg("--home")
            .arg(self.0.path())
            .arg("--passphrase-env")
            .arg("POLKU_TEST_PASS");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd("correct horse").args(args).output().unwrap()
    }

    /// Runs with --json and parses stdout; panics with stderr on failure.
    fn json(&self, args: &[&str]) -> Value {
        let out = self.run(&[&["--json"], args].concat());
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
    }

    /// Enrolls this profile as `user` on `server` (a fresh one-time code).
    fn enroll(&self, server: &polku_e2e::TestServer, user: &str) -> Value {
        self.json(&[
            "enroll",
            "--server",
            &server.url(),
            "--code",
            &server.code(user),
        ])
    }

    /// Runs with --json expecting failure; returns (exit code, stderr JSON).
    fn json_err(&self, args: &[&str]) -> (i32, Value) {
        let out = self.run(&[&["--json"], args].concat());
        assert!(!out.status.success(), "{args:?} unexpectedly succeeded");
        assert!(out.stdout.is_empty(), "nothing on stdout on error");
        let err: Value = serde_json::from_slice(&out.stderr)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code().unwrap(), err["error"].clone())
    }
}

#[test]
fn a_new_profile_needs_a_passphrase_of_some_strength() {
    let h = Home(tempfile::tempdir().unwrap());
    for weak in ["a", "correct", "aaaaaaaaaaaaaaaa", "abababababababab"] {
        let out = h.cmd(weak).args(["--json", "init"]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{weak}");
        let err: Value = serde_json::from_slice(&out.stderr).unwrap();
        assert_eq!(err["error"]["field"], "passphrase", "{err}");
        assert!(
            err["error"]["allowed"]
                .as_str()
                .unwrap()
                .contains("at least 12 characters"),
            "{err}"
        );
        // The passphrase itself is never echoed: only its length.
        assert!(
            err["error"]["value"]
                .as_str()
                .unwrap()
                .ends_with("different"),
            "{err}"
        );
        assert!(!h.0.path().join("polku.db").exists(), "no profile was made");
    }
    assert!(h.run(&["init"]).status.success());
}

#[test]
fn add_every_kind_list_edit_delete_history() {
    let h = Home::new();
    let at = "2026-11-20T08:00:00+02:00";
    let g = h.json(&[
        "diary",
        "add",
        "glucose",
        "7,2",
        "--context",
        "after-meal",
        "--hours-after-meal",
        "2",
        "--at",
        at,
        "--note",
        "lounaan jälkeen",
    ]);
    assert_eq!(g["data"]["kind"], "glucose");
    assert_eq!(g["data"]["reading"]["mmol_l"], 7.2);
    assert_eq!(g["at"], "2026-11-20T08:00:00+02:00");
    let mg = h.json(&[
        "diary",
        "add",
        "glucose",
        "126",
        "--unit",
        "mg/dL",
        "--context",
        "fasting",
        "--at",
        at,
    ]);
    assert_eq!(mg["data"]["unit"], "mg/dL");
    h.json(&["diary", "add", "glucose", "LO", "--at", at]);
    h.json(&[
        "diary", "add", "bp", "142", "91", "--pulse", "72", "--arm", "left", "--series", "morning",
        "--at", at,
    ]);
    h.json(&["diary", "add", "weight", "84.2", "--at", at]);
    h.json(&["diary", "add", "pulse", "64", "--at", at]);
    h.json(&["diary", "add", "temperature", "37.1", "--at", at]);
    h.json(&[
        "diary",
        "add",
        "symptom",
        "chest-pain",
        "--severity",
        "3",
        "--at",
        at,
    ]);
    h.json(&[
        "diary",
        "add",
        "medication",
        "Metformin",
        "--dose",
        "500 mg",
        "--at",
        at,
    ]);
    h.json(&["diary", "add", "mood", "4", "--at", at]);
    h.json(&["diary", "add", "note", "Kävelin 3 km", "--at", at]);

    let all = h.json(&["diary", "list", "--limit", "100"]);
    assert_eq!(all["entries"].as_array().unwrap().len(), 11);
    let bps = h.json(&["diary", "list", "--kind", "bp"]);
    assert_eq!(bps["entries"].as_array().unwrap().len(), 1);
    let page = h.json(&["diary", "list", "--kind", "glucose", "--limit", "2"]);
    assert_eq!(page["entries"].as_array().unwrap().len(), 2);
    let rest = h.json(&[
        "diary",
        "list",
        "--kind",
        "glucose",
        "--limit",
        "2",
        "--after",
        page["next"].as_str().unwrap(),
    ]);
    assert_eq!(rest["entries"].as_array().unwrap().len(), 1);

    let id = g["id"].as_str().unwrap();
    let v2 = h.json(&[
        "diary",
        "edit",
        id,
        "glucose",
        "6.8",
        "--context",
        "after-meal",
        "--hours-after-meal",
        "2",
    ]);
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["at"], "2026-11-20T08:00:00+02:00", "time kept");
    let tomb = h.json(&["diary", "delete", id, "--reason", "mittasin väärän sormen"]);
    assert_eq!(tomb["deleted"]["reason"], "mittasin väärän sormen");
    let hist = h.json(&["diary", "history", id]);
    let versions: Vec<i64> = hist
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, vec![1, 2, 3]);
    assert_eq!(hist[0]["data"]["reading"]["mmol_l"], 7.2);

    // Human output is readable too.
    let out = h.run(&["diary", "list", "--kind", "bp"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("142/91 mmHg, pulse 72, morning"), "{text}");
}

#[test]
fn bad_arguments_give_typed_json_errors_and_exit_codes() {
    let h = Home::new();
    let (code, e) = h.json_err(&["diary", "add", "bp", "320", "80"]);
    assert_eq!(code, 2);
    assert_eq!(e["code"], "validation");
    assert_eq!(e["field"], "blood_pressure.systolic");
    assert_eq!(e["allowed"], "50–300 mmHg");
    let (_, e) = h.json_err(&["diary", "add", "glucose", "sugar"]);
    assert_eq!(e["field"], "glucose.value");
    let (_, e) = h.json_err(&["diary", "add", "glucose", "40"]);
    assert!(e["allowed"].as_str().unwrap().contains("LO or HI"));
    let (_, e) = h.json_err(&["diary", "add", "mood", "99999999999"]);
    assert_eq!(e["field"], "mood.score");
    let (_, e) = h.json_err(&["diary", "add", "symptom", "headache", "--severity", "3"]);
    assert_eq!(e["field"], "symptom.code");
    assert!(e["allowed"].as_str().unwrap().contains("chest-pain"));
    let (_, e) = h.json_err(&["diary", "add", "weight", "80", "--at", "yesterday"]);
    assert_eq!(e["field"], "at");
    let (code, e) = h.json_err(&["diary", "add", "glucose"]);
    assert_eq!(code, 2);
    assert_eq!(e["code"], "usage");
    let (code, e) = h.json_err(&["diary", "history", "00000000-0000-4000-8000-000000000000"]);
    assert_eq!(code, 4);
    assert_eq!(e["code"], "not_found");
    let (_, e) = h.json_err(&[
        "stats",
        "glucose",
        "--from",
        "2026-11-02T00:00:00Z",
        "--to",
        "2026-11-01T00:00:00Z",
    ]);
    assert_eq!(e["field"], "to");

    // Wrong passphrase: exit 3, and the profile still opens with the right one.
    let out = h
        .cmd("wrong")
        .args(["--json", "diary", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let e: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(e["error"]["code"], "wrong_key");
    h.json(&["diary", "list"]);

    // No profile yet.
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_polku"))
        .args(["--json", "--home"])
        .arg(empty.path())
        .args(["--passphrase-env", "X", "diary", "list"])
        .env("X", "p")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    // Help for every command.
    for args in [
        vec!["--help"],
        vec!["diary", "add", "glucose", "--help"],
        vec!["stats", "bp", "--help"],
        vec!["import", "cgm", "--help"],
        vec!["export", "fhir", "--help"],
        vec!["demo", "--help"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_polku"))
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success() && !out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn import_stats_and_export() {
    let h = Home::new();
    let dir = h.0.path();
    let csv = dir.join("cgm.csv");
    let mut text = String::from("timestamp,glucose_mmol_l\n");
    for i in 0..288 {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-10T00:00:00+02:00").unwrap()
            + chrono::Duration::minutes(5 * i);
        text.push_str(&format!(
            "{},{}\n",
            t.to_rfc3339(),
            if i < 216 { "6.0" } else { "12.0" }
        ));
    }
    std::fs::write(&csv, text).unwrap();
    let r = h.json(&["import", "cgm", csv.to_str().unwrap()]);
    assert_eq!(r["added"], 288);
    let again = h.json(&[
        "import",
        "cgm",
        csv.to_str().unwrap(),
        "--format",
        "generic",
    ]);
    assert_eq!(
        (again["added"].as_i64(), again["duplicates"].as_i64()),
        (Some(0), Some(288))
    );

    let s = h.json(&[
        "stats",
        "glucose",
        "--from",
        "2026-11-10T00:00:00+02:00",
        "--to",
        "2026-11-11T00:00:00+02:00",
    ]);
    assert_eq!(s["cgm"]["readings"], 288);
    assert_eq!(s["cgm"]["bands"]["in_range"], 75.0);
    assert_eq!(s["cgm"]["bands"]["high"], 25.0);

    for (t, sys) in [
        ("2026-11-12T07:00:00+02:00", "130"),
        ("2026-11-12T07:02:00+02:00", "132"),
        ("2026-11-12T21:00:00+02:00", "128"),
        ("2026-11-12T21:02:00+02:00", "126"),
    ] {
        h.json(&["diary", "add", "bp", sys, "80", "--at", t]);
    }
    let bp = h.json(&[
        "stats",
        "bp",
        "--from",
        "2026-11-12T00:00:00+02:00",
        "--to",
        "2026-11-13T00:00:00+02:00",
    ]);
    assert_eq!(bp["qualifying_days"], 1);
    assert_eq!(bp["home_series"]["mean_systolic"], 129.0);

    let bad = dir.join("bad.csv");
    std::fs::write(
        &bad,
        "timestamp,glucose_mmol_l\n2026-11-10T00:00:00+02:00,5\n2026-11-10T00:05:00+02:00,five\n",
    )
    .unwrap();
    let (code, e) = h.json_err(&["import", "cgm", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert_eq!(e["problems"][0]["line"], 3);

    let out = dir.join("export.json");
    let r = h.json(&[
        "export",
        "fhir",
        "--out",
        out.to_str().unwrap(),
        "--from",
        "2026-11-12T00:00:00+02:00",
    ]);
    assert_eq!(r["observations"], 4);
    let bundle: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(bundle["type"], "collection");
    assert_eq!(
        bundle["entry"][0]["resource"]["code"]["coding"][0]["code"],
        "85354-9"
    );
}

#[test]
fn demo_runs_and_reports() {
    let keep = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_polku"))
        .args(["--json", "demo", "--keep"])
        .arg(keep.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["encrypted_header"], true);
    assert!(v["cgm_import"]["added"].as_u64().unwrap() > 8000);
    assert_eq!(
        v["glucose_last_14_days"]["cgm"]["sufficiency"]["sufficient"],
        true
    );
    assert!(
        v["glucose_last_14_days"]["cgm"]["hypo_events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["level"] == 2),
        "the demo's nocturnal hypo reaches level 2"
    );
    assert_eq!(v["blood_pressure_last_8_days"]["home_series"]["days"], 7);
    assert_eq!(v["corrected_entry_history"].as_array().unwrap().len(), 2);
    // The pathway (v2: no FINDRISC): two steps read, the glucose profile and the home BP series
    // open; the same on the nurse's device after sync.
    assert_eq!(v["pathway"]["finished"], 2);
    let step = |id: &str| {
        v["pathway"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step_id"] == id)
            .unwrap()["state"]
            .clone()
    };
    assert_eq!(step("glucose-profile"), "available");
    assert_eq!(step("bp-series"), "available");
    let caseload = v["sync"]["caseload"].as_array().unwrap();
    assert_eq!(caseload.len(), 1);
    assert_eq!(caseload[0]["enrollment"], v["pathway"]["enrollment"]);
    assert_eq!(
        caseload[0]["open_steps"],
        serde_json::json!(["glucose-profile", "bp-series"])
    );
    // Safety: the recent night's sensor readings below 3.0 raised urgent flags on the phone; the
    // nurse's caseload showed them, she acknowledged them, and the phone then shows that.
    let raised = v["safety"]["raised_on_phone"].as_u64().unwrap();
    assert!(raised > 0);
    assert_eq!(
        v["safety"]["rules"],
        serde_json::json!(["glucose_very_low"])
    );
    assert_eq!(
        caseload[0]["safety_flags"].as_array().unwrap().len() as u64,
        raised
    );
    assert_eq!(v["sync"]["acknowledged"].as_u64(), Some(raised));
    assert_eq!(v["sync"]["phone_open_flags_after"], 0);
    assert!(!v["sync"]["acknowledged_by"].as_str().unwrap().is_empty());
    // Messages: the citizen's question came back read, the nurse's answer arrived, and the
    // server's database (opened with its key) holds neither text, while the same scan finds
    // the user's name there.
    let m = &v["sync"]["messages"];
    assert_eq!(m["question_state"], "read");
    assert_eq!(m["conversation"].as_array().unwrap().len(), 2);
    assert_eq!(m["conversation"][1]["state"], "received");
    assert_eq!(m["server_rows_with_text"], 0);
    assert!(m["server_rows_with_user_name"].as_u64().unwrap() >= 1);
    // Home care: four visits finished offline, one client not at home, and the blood pressure
    // taken at Aino's visit on her phone after sync, authored by the nurse.
    let hc = &v["sync"]["home_care"];
    assert_eq!(
        (hc["finished"].as_u64(), hc["not_at_home"].as_u64()),
        (Some(4), Some(1))
    );
    assert_eq!(hc["blood_pressure_on_phone"], "142/88 mmHg");
    assert!(hc["blood_pressure_author"]
        .as_str()
        .is_some_and(|a| !a.is_empty()));
    // The kept profile opens with the documented passphrase.
    let list = Command::new(env!("CARGO_BIN_EXE_polku"))
        .args(["--json", "--home"])
        .arg(keep.path())
        .args([
            "--passphrase-env",
            "DEMO_PASS",
            "diary",
            "list",
            "--kind",
            "weight",
        ])
        .env("DEMO_PASS", "demo")
        .output()
        .unwrap();
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    assert!(Path::new(&keep.path().join("polku.db")).exists());
}

#[test]
fn questionnaires_show_answer_list() {
    let h = Home::new();
    let show = h.json(&["questionnaire", "show", "phq9", "--lang", "sv"]);
    assert_eq!(show["items"].as_array().unwrap().len(), 9);
    assert_eq!(show["items"][0]["options"][3]["text"], "Nästan varje dag");
    let r = h.json(&[
        "questionnaire",
        "answer",
        "phq9",
        "1,1,2,1,0,1,0,0,1",
        "--at",
        "2026-11-20T10:00:00+02:00",
    ]);
    assert_eq!(r["scored"]["total"], 7);
    assert_eq!(r["scored"]["band"], "mild");
    assert_eq!(r["scored"]["flags"][0]["code"], "phq9_item9");
    assert_eq!(r["scored"]["flags"][0]["urgent"], true);
    // The person is given what to do now, never the care team's text.
    assert_eq!(r["safety"]["flags"], serde_json::json!(["phq9_item9"]));
    let g = r["safety"]["guidance"][0]["steps"].to_string();
    assert!(g.contains("112") && g.contains("09 2525 0111"), "{g}");
    assert!(r["safety"].get("care_team").is_none());
    h.json(&["questionnaire", "answer", "findrisc", "2,1,1,0,1,1,0,2"]);
    let list = h.json(&["questionnaire", "list", "--instrument", "phq9"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (code, e) = h.json_err(&["questionnaire", "answer", "gad7", "0,1,2"]);
    assert_eq!(code, 2);
    assert_eq!(e["field"], "answers");
    let (_, e) = h.json_err(&[
        "questionnaire",
        "answer",
        "rbdi",
        "1,1,1,1,1,1,0,1,1,1,1,1,1",
    ]);
    assert_eq!(e["field"], "answers[7] (rbdi-7)");
    assert_eq!(e["allowed"], "1–5");
    let (_, e) = h.json_err(&["questionnaire", "answer", "bdi", "1"]);
    assert_eq!(e["field"], "instrument");
    let text = String::from_utf8(
        h.run(&[
            "questionnaire",
            "answer",
            "phq9",
            "0,0,0,0,0,0,0,0,2",
            "--lang",
            "en",
        ])
        .stdout,
    )
    .unwrap();
    assert!(
        text.contains("call 112") && text.contains("09 2525 0111"),
        "{text}"
    );
    assert!(!text.contains("Contact the person today"), "{text}");
    let flags = h.json(&["flags", "list"]);
    assert_eq!(
        flags.as_array().unwrap().len(),
        2,
        "both answers raised one"
    );
    assert!(
        flags[0].get("message").is_none(),
        "no care team text for the person"
    );
}

/// The county's content folder: its licensed questionnaire wording is shown, recorded on answers
/// and checked before publishing.
#[test]
fn county_wording_is_checked_shown_and_recorded() {
    let h = Home::new();
    let content = h.0.path().join("content");
    let qdir = content.join("questionnaires");
    std::fs::create_dir_all(&qdir).unwrap();
    let items: Vec<Value> = (1..=7)
        .map(|n| serde_json::json!({ "text": format!("county item {n}"), "options": ["c0", "c1", "c2", "c3"] }))
        .collect();
    let mut file = serde_json::json!({
        "instrument": "gad7", "language": "fi", "version": "county-2026-1",
        "source": "Test publisher", "validated": true, "title": "GAD-7",
        "instructions": "County instructions", "items": items,
    });
    let path = qdir.join("gad7-fi.json");
    std::fs::write(&path, file.to_string()).unwrap();
    let p = path.to_str().unwrap();

    let ok = h.json(&["questionnaire", "check-wording", p]);
    assert_eq!(ok[0]["instrument"], "gad7");
    assert_eq!(ok[0]["language"], "fi");
    assert_eq!(ok[0]["version"], "county-2026-1");

    let c = content.to_str().unwrap();
    let show = h.json(&["--content-dir", c, "questionnaire", "show", "gad7"]);
    assert_eq!(show["items"][6]["text"], "county item 7");
    assert_eq!(show["validated"], true);
    assert_eq!(show["items"][6]["options"][3]["points"], 3);
    let builtin = h.json(&["questionnaire", "show", "gad7"]);
    assert_eq!(builtin["version"], "polku-1");
    assert_eq!(builtin["validated"], false);
    assert_eq!(builtin["bands"][3]["code"], "severe");
    let text = String::from_utf8(h.run(&["questionnaire", "show", "gad7"]).stdout).unwrap();
    assert!(text.contains("NOTICE: not a validated version"), "{text}");

    let r = h.json(&[
        "--content-dir",
        c,
        "questionnaire",
        "answer",
        "gad7",
        "1,1,1,1,1,1,1",
    ]);
    assert_eq!(r["wording"], "county-2026-1");
    assert_eq!(r["language"], "fi");
    let r = h.json(&[
        "questionnaire",
        "answer",
        "gad7",
        "0,0,0,0,0,0,0",
        "--lang",
        "sv",
    ]);
    assert_eq!(
        (r["wording"].as_str(), r["language"].as_str()),
        (Some("polku-1"), Some("sv"))
    );

    // A broken file: exit 2, each problem naming the file, item and field; the profile refuses
    // to open on it rather than silently showing other texts.
    file["items"][3]["options"] = serde_json::json!(["c0", "c1"]);
    std::fs::write(&path, file.to_string()).unwrap();
    let (code, e) = h.json_err(&["questionnaire", "check-wording", p]);
    assert_eq!(code, 2);
    assert_eq!(
        e["problems"][0]["message"],
        format!("{p}: item 4 (gad7-4), field `options`: 2 answer texts for 4 choices (values 0–3)")
    );
    let (code, _) = h.json_err(&["--content-dir", c, "questionnaire", "list"]);
    assert_eq!(code, 2);
    let (code, e) = h.json_err(&[
        "--content-dir",
        "/nonexistent/polku",
        "questionnaire",
        "list",
    ]);
    assert_eq!((code, e["field"].as_str()), (2, Some("content-dir")));
}

#[test]
fn pathway_commands() {
    let h = Home::new();
    let defs = h.json(&["pathway", "list-definitions"]);
    assert_eq!(
        defs.as_array().unwrap().len(),
        3,
        "the latest version of each"
    );
    let (_, e) = h.json_err(&["pathway", "enroll", "home-bp-follow-up"]);
    assert_eq!(e["field"], "enrolled_by");
    let e = h.json(&["pathway", "enroll", "t2d-care-path"]);
    assert_eq!(e["definition_version"], 2);
    let steps = h.json(&["pathway", "steps"]);
    assert_eq!(steps[0]["steps"][0]["state"], "available");
    assert_eq!(steps[0]["steps"][1]["state"], "locked");
    let pr = h.json(&["pathway", "complete", "welcome"]);
    assert_eq!(pr["steps"][0]["state"], "done");
    assert_eq!(pr["steps"][1]["state"], "available");
    h.json(&["pathway", "complete", "t2d-basics"]);
    let pr = h.json(&[
        "pathway",
        "skip",
        "bp-series",
        "--reason",
        "mitattu vastaanotolla",
    ]);
    assert_eq!(pr["steps"][3]["state"], "skipped");
    let (code, e) = h.json_err(&["pathway", "complete", "glucose-profile"]);
    assert_eq!(code, 2, "{e}");
    let (code, _) = h.json_err(&["pathway", "complete", "hba1c"]);
    assert_eq!(code, 6, "locked: conflict");
    let r = h.json(&["pathway", "reminders", "--days", "2"]);
    assert!(r
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["step"] == "glucose-profile"));
    assert!(!r.as_array().unwrap().is_empty());
    let text = String::from_utf8(h.run(&["pathway", "steps"]).stdout).unwrap();
    assert!(text.contains("skipped      bp-series"), "{text}");

    // The care team's list: the urgent flag first (the core's safety rule, on every row of the
    // person whatever the pathway).
    h.json(&["pathway", "enroll", "adolescent-mood", "--professional"]);
    h.json(&["questionnaire", "answer", "phq9", "0,0,0,0,0,0,0,0,1"]);
    let c = h.json(&["pathway", "caseload"]);
    let mut c = c.as_array().unwrap().clone();
    assert_eq!(c.len(), 2);
    for row in &c {
        assert_eq!(row["safety_flags"][0]["rule"], "phq9_item9");
        assert_eq!(row["safety_flags"][0]["urgent"], true);
    }
    c.sort_by_key(|r| {
        r["enrollment"]["definition_id"]
            .as_str()
            .unwrap()
            .to_owned()
    });
    assert_eq!(c[0]["enrollment"]["definition_id"], "adolescent-mood");
    assert_eq!(c[1]["enrollment"]["definition_id"], "t2d-care-path");
    assert_eq!(
        (c[1]["finished"].as_u64(), c[1]["total"].as_u64()),
        (Some(3), Some(7))
    );
    assert_eq!(c[0]["subject"], c[1]["subject"]);
    let text = String::from_utf8(h.run(&["pathway", "caseload", "--lang", "en"]).stdout).unwrap();
    assert!(
        text.starts_with("URGENT ")
            && text.contains("URGENT SAFETY phq9_item9 (item 9 = 1, ")
            && text.contains("PHQ-9 item 9 ≥ 1: thoughts of death or self-harm."),
        "{text}"
    );
}

/// A new version published in the county's content folder is offered, never applied silently,
/// and the enrollment moves when asked.
#[test]
fn published_pathway_version_is_offered_and_migrated() {
    let h = Home::new();
    let e = h.json(&["pathway", "enroll", "t2d-care-path"]);
    let id = e["id"].as_str().unwrap().to_owned();
    h.json(&["pathway", "complete", "welcome"]);
    let content = h.0.path().join("content");
    std::fs::create_dir_all(content.join("pathways")).unwrap();
    let v3 = include_str!("../../core/pathways/t2d-care-path@2.json")
        .replacen("\"version\": 2", "\"version\": 3", 1)
        .replace("\"id\": \"t2d-basics\"", "\"id\": \"t2d-basics-short\"")
        .replace(
            "\"steps\": [\"t2d-basics\"]",
            "\"steps\": [\"t2d-basics-short\"]",
        );
    std::fs::write(content.join("pathways/t2d-care-path@3.json"), v3).unwrap();
    let c = content.to_str().unwrap();

    let steps = h.json(&["--content-dir", c, "pathway", "steps"]);
    assert_eq!(steps[0]["enrollment"]["definition_version"], 2);
    assert_eq!(steps[0]["latest_version"], 3);
    let text = String::from_utf8(h.run(&["--content-dir", c, "pathway", "steps"]).stdout).unwrap();
    assert!(
        text.contains(&format!(
            "version 3 is published: polku pathway migrate {id} --to-version 3"
        )),
        "{text}"
    );
    let (code, e) = h.json_err(&[
        "--content-dir",
        c,
        "pathway",
        "migrate",
        &id,
        "--to-version",
        "2",
    ]);
    assert_eq!((code, e["field"].as_str()), (2, Some("to_version")));
    let (code, _) = h.json_err(&[
        "--content-dir",
        c,
        "pathway",
        "migrate",
        &id,
        "--to-version",
        "9",
    ]);
    assert_eq!(code, 4, "an unpublished version is not found");
    let (code, e) = h.json_err(&["pathway", "migrate", "nope", "--to-version", "2"]);
    assert_eq!((code, e["field"].as_str()), (2, Some("enrollment")));

    let moved = h.json(&[
        "--content-dir",
        c,
        "pathway",
        "migrate",
        &id,
        "--to-version",
        "3",
    ]);
    assert_eq!(moved["enrollment"]["definition_version"], 3);
    assert_eq!(moved["steps"][0]["state"], "done", "done steps stay done");
    assert_eq!(moved["steps"][1]["step_id"], "t2d-basics-short");
}

/// A server on loopback with a citizen and a nurse assigned to her: (server, citizen, nurse).
fn citizen_and_nurse() -> (polku_e2e::TestServer, String, String) {
    use polku_server::{Role, Storage};
    let server = polku_e2e::TestServer::start();
    let citizen = server.user(Role::Citizen, "Aino Virtanen");
    let nurse = server.user(Role::Professional, "Hoitaja Nieminen");
    server.storage.assign(&nurse, &citizen).unwrap();
    (server, citizen, nurse)
}

/// A citizen's and a nurse's CLI profiles sync through a real server on loopback: enroll, sync,
/// status, the nurse's subject list and `--subject` view, and the audit trail of her reads.
#[test]
fn enroll_sync_and_subject_view() {
    use polku_server::Storage;
    let (server, citizen, nurse) = citizen_and_nurse();

    let aino = Home::new();
    aino.json(&["diary", "add", "weight", "84.2"]);
    let e = aino.enroll(&server, &citizen);
    assert_eq!(e["role"], "citizen");
    assert_eq!(aino.json(&["sync", "status"])["pending"], 1);
    let r = aino.json(&["sync"]);
    assert_eq!(r["pushed"], 1);
    let s = aino.json(&["sync", "status"]);
    assert_eq!(s["pending"], 0);
    assert!(s["last_success"].is_string());

    let hoitaja = Home::new();
    hoitaja.enroll(&server, &nurse);
    hoitaja.json(&["sync"]);
    let subjects = hoitaja.json(&["subjects"]);
    assert_eq!(subjects[0]["id"], citizen);
    assert_eq!(subjects[0]["name"], "Aino Virtanen");
    let listed = hoitaja.json(&["diary", "list", "--subject", &citizen]);
    assert_eq!(listed["entries"][0]["data"]["kg"], 84.2);
    assert!(server
        .storage
        .audit(&citizen)
        .unwrap()
        .iter()
        .any(|a| a.actor_id == nurse && a.action == "read"));

    // A used code and an unreachable server are typed errors with exit code 7.
    let other = Home::new();
    let (code, err) = other.json_err(&[
        "enroll",
        "--server",
        &server.url(),
        "--code",
        "AAAA-BBBB-CCCC",
    ]);
    assert_eq!(
        (code, err["server_code"].as_str()),
        (7, Some("invalid_code"))
    );
    let (code, err) = other.json_err(&["sync"]);
    assert_eq!((code, err["code"].as_str()), (7, Some("not_enrolled")));
}

/// `polku flags` on both sides of a real server: the citizen is told what to do, the nurse sees
/// the clinical flag first in her caseload and acknowledges it, the citizen's device then shows
/// the acknowledgement; a citizen cannot acknowledge.
#[test]
fn safety_flags_between_a_citizen_and_her_nurse() {
    let (server, citizen, nurse) = citizen_and_nurse();
    let aino = Home::new();
    aino.enroll(&server, &citizen);
    let hoitaja = Home::new();
    hoitaja.enroll(&server, &nurse);

    let out = aino.run(&["diary", "add", "glucose", "2.4"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("15–20 g") && text.contains("112"), "{text}");
    assert!(
        !text.contains("Ota yhteyttä tänään"),
        "no care team text: {text}"
    );
    let (code, e) = aino.json_err(&[
        "flags",
        "acknowledge",
        "00000000-0000-0000-0000-000000000000",
        "--note",
        "ok",
    ]);
    assert_eq!((code, e["field"].as_str()), (2, Some("role")));
    aino.json(&["sync"]);

    hoitaja.json(&["sync"]);
    let c = hoitaja.json(&["pathway", "caseload"]);
    assert_eq!(
        c[0]["subject"], citizen,
        "on no pathway, listed for the flag"
    );
    assert!(c[0]["enrollment"].is_null());
    let flags = hoitaja.json(&["--subject", &citizen, "flags", "list", "--lang", "en"]);
    assert_eq!(flags[0]["code"], "glucose_very_low");
    assert!(flags[0]["message"]
        .as_str()
        .unwrap()
        .contains("Level 2 hypoglycaemia"));
    let id = flags[0]["id"].as_str().unwrap().to_owned();
    let (code, e) = hoitaja.json_err(&[
        "--subject",
        &citizen,
        "flags",
        "acknowledge",
        &id,
        "--note",
        "",
    ]);
    assert_eq!((code, e["field"].as_str()), (2, Some("note")));
    let done = hoitaja.json(&[
        "--subject",
        &citizen,
        "flags",
        "acknowledge",
        &id,
        "--note",
        "Soitettu, ohjeistettu",
    ]);
    assert_eq!(done[0]["acknowledgements"][0]["by"], nurse);
    assert_eq!(
        hoitaja
            .json(&["pathway", "caseload"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
    hoitaja.json(&["sync"]);

    aino.json(&["sync"]);
    assert_eq!(aino.json(&["flags", "list"]).as_array().unwrap().len(), 0);
    let all = aino.json(&["flags", "list", "--all"]);
    assert_eq!(
        all[0]["acknowledgements"][0]["note"],
        "Soitettu, ohjeistettu"
    );
    let text = String::from_utf8(aino.run(&["flags", "list", "--all"]).stdout).unwrap();
    assert!(text.contains(&format!("acknowledged by {nurse}")), "{text}");
}

/// `polku messages` on both sides of a real server: the citizen asks about a low reading while
/// offline, the nurse sees it unread in her caseload, reads and answers; the citizen sees her
/// question read and the answer. Bad input is a typed error.
#[test]
fn messages_between_a_citizen_and_her_nurse() {
    let (server, citizen, nurse) = citizen_and_nurse();
    let aino = Home::new();
    aino.enroll(&server, &citizen);
    let hoitaja = Home::new();
    hoitaja.enroll(&server, &nurse);
    // Each device publishes its keys on its first sync.
    aino.json(&["sync"]);
    hoitaja.json(&["sync"]);

    let q = "Aamulla 3,4 – mitä teen?";
    let m = aino.json(&["messages", "send", &citizen, q]);
    assert_eq!(m["message"]["state"], "queued");
    let (code, e) = aino.json_err(&["messages", "send", &citizen, "   "]);
    assert_eq!((code, e["field"].as_str()), (2, Some("body")));
    aino.json(&["sync"]);

    hoitaja.json(&["sync"]);
    let list = hoitaja.json(&["messages", "list"]);
    assert_eq!(list["conversations"][0]["id"], citizen.as_str());
    assert_eq!(list["conversations"][0]["unread"], 1);
    let c = hoitaja.json(&["pathway", "caseload"]);
    assert_eq!(c[0]["subject"], citizen.as_str());
    assert_eq!(c[0]["conversation"], citizen.as_str());
    assert_eq!(c[0]["unread_messages"], 1);
    let human = String::from_utf8(hoitaja.run(&["pathway", "caseload"]).stdout).unwrap();
    assert!(human.contains("1 unread message(s)"), "{human}");
    let r = hoitaja.json(&["messages", "read", &citizen]);
    assert_eq!(r["messages"][0]["body"], q);
    assert_eq!(r["messages"][0]["sender_user"], citizen.as_str());
    assert_eq!(
        hoitaja.json(&["messages", "mark-read", &citizen])["marked_read"],
        1
    );
    let a = "Syö 15 g hiilihydraattia ja mittaa 15 minuutin päästä uudelleen.";
    hoitaja.json(&["messages", "send", &citizen, a]);
    hoitaja.json(&["sync"]);

    aino.json(&["sync"]);
    let r = aino.json(&["messages", "read", &citizen]);
    assert_eq!(r["messages"][0]["state"], "read");
    assert_eq!(r["messages"][0]["receipts"][0]["user"], nurse.as_str());
    assert_eq!(r["messages"][1]["body"], a);
    let text = String::from_utf8(aino.run(&["messages", "read", &citizen]).stdout).unwrap();
    assert!(
        text.contains(&format!("read by {nurse}")) && text.contains("(unread)"),
        "{text}"
    );
    // Scrolling back: the one message before the answer.
    let answer_id = r["messages"][1]["id"].as_str().unwrap().to_owned();
    let back = aino.json(&["messages", "read", &citizen, "--before", &answer_id]);
    assert_eq!(back["messages"].as_array().unwrap().len(), 1);
    assert_eq!(back["messages"][0]["body"], q);
    let (code, e) = aino.json_err(&["messages", "read", &citizen, "--before", "nope"]);
    assert_eq!((code, e["code"].as_str()), (4, Some("not_found")));

    let d = aino.json(&["messages", "devices"]);
    assert!(d["this_device"]["ed25519"].is_string());
    let devices = d["devices"].as_array().unwrap();
    assert!(devices
        .iter()
        .any(|x| x["user_id"] == nurse.as_str() && x["state"] == "trusted"));
    assert!(aino.json(&["messages", "rejected"])["rejected"]
        .as_array()
        .unwrap()
        .is_empty());

    // The nurse sends a PDF; the citizen fetches it to a file after the next sync.
    let pdf = hoitaja.0.path().join("ohje.pdf");
    let content: Vec<u8> = (0..30_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&pdf, &content).unwrap();
    let m = hoitaja.json(&["messages", "attach", &citizen, pdf.to_str().unwrap()]);
    assert_eq!(m["message"]["attachment"]["mime"], "application/pdf");
    let (code, e) = hoitaja.json_err(&["messages", "attach", &citizen, "/nonexistent/x.pdf"]);
    assert_eq!((code, e["code"].as_str()), (1, Some("io")), "{e}");
    hoitaja.json(&["sync"]);
    aino.json(&["sync"]);
    let r = aino.json(&["messages", "read", &citizen]);
    let a = &r["messages"][2]["attachment"];
    assert_eq!(
        (a["name"].as_str(), a["on_device"].as_bool()),
        (Some("ohje.pdf"), Some(false))
    );
    let out = aino.0.path().join("saved.pdf");
    let id = a["id"].as_str().unwrap();
    let f = aino.json(&["messages", "fetch", id, "--out", out.to_str().unwrap()]);
    assert_eq!(f["bytes"], 30_000);
    assert_eq!(std::fs::read(&out).unwrap(), content);
    let text = String::from_utf8(aino.run(&["messages", "read", &citizen]).stdout).unwrap();
    assert!(
        text.contains("[attachment ") && text.contains("ohje.pdf (application/pdf, 30000 bytes)]"),
        "{text}"
    );
    let (code, e) = aino.json_err(&["messages", "fetch", "nope", "--out", out.to_str().unwrap()]);
    assert_eq!((code, e["code"].as_str()), (4, Some("not_found")));
}

/// `polku messages verify` run on both devices at once: each shows the same numbers, the user
/// answers y on both, and each device then lists the other as verified. A "no" ends it with
/// exit code 9 on both.
#[test]
fn two_devices_verify_each_other_by_comparing_numbers() {
    use std::io::Write;
    let (server, citizen, nurse) = citizen_and_nurse();
    let aino = Home::new();
    aino.enroll(&server, &citizen);
    let hoitaja = Home::new();
    hoitaja.enroll(&server, &nurse);
    for h in [&aino, &hoitaja, &aino] {
        h.json(&["sync"]);
    }
    let id = |h: &Home| {
        h.json(&["sync", "status"])["enrollment"]["device_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (aino_dev, hoitaja_dev) = (id(&aino), id(&hoitaja));
    let both = |answers: [&str; 2]| {
        let mut children: Vec<_> = [(&aino, &hoitaja_dev), (&hoitaja, &aino_dev)]
            .into_iter()
            .map(|(h, other)| {
                h.cmd("correct horse")
                    .args([
                        "--json",
                        "messages",
                        "verify",
                        other,
                        "--timeout-seconds",
                        "60",
                    ])
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for (c, a) in children.iter_mut().zip(answers) {
            c.stdin.take().unwrap().write_all(a.as_bytes()).unwrap();
        }
        children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect::<Vec<_>>()
    };
    let out = both(["n\n", "y\n"]);
    for o in &out {
        eprintln!(
            "---- {:?}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
    }
    for o in &out {
        assert_eq!(
            o.status.code(),
            Some(9),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // The one who said no saw the numbers (the other may hear of the no before its own screen
    // showed them).
    assert!(String::from_utf8_lossy(&out[0].stderr).contains("Both devices show: "));
    let out = both(["y\n", "y\n"]);
    let mut shown = Vec::new();
    for o in &out {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        shown.push(v["decimals"].clone());
    }
    assert_eq!(shown[0], shown[1], "both showed the same numbers");
    assert_eq!(shown[0].as_array().unwrap().len(), 3);
    for (h, other) in [(&aino, &hoitaja_dev), (&hoitaja, &aino_dev)] {
        let d = h.json(&["messages", "devices"]);
        let dev = d["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["device_id"] == other.as_str())
            .cloned();
        assert_eq!(dev.unwrap()["state"], "verified");
    }
}

/// A home-care worker's day from the CLI: the coordinator sets a client's plan, the worker
/// sees today's visits, records them (a blood pressure into the client's diary), and the
/// client's own device has the measurement after sync.
#[test]
fn a_home_care_visit_from_the_plan_to_the_clients_diary() {
    let (server, citizen, nurse) = citizen_and_nurse();
    let aino = Home::new();
    aino.enroll(&server, &citizen);
    let hoitaja = Home::new();
    hoitaja.enroll(&server, &nurse);
    hoitaja.json(&["sync"]);
    let plan = hoitaja.0.path().join("plan.json");
    std::fs::write(
        &plan,
        r#"{"visits": [{"slot": "day", "name": "Päiväkäynti", "days": ["daily"], "from": "00:00", "to": "23:59",
            "tasks": ["medication", "blood_pressure"]}]}"#,
    )
    .unwrap();
    let (code, e) = hoitaja.json_err(&["serviceplan", "set", &citizen, "/nonexistent.json"]);
    assert_eq!((code, e["code"].as_str()), (1, Some("io")));
    std::fs::write(hoitaja.0.path().join("bad.json"), r#"{"visits": [{"slot": "x", "name": "X", "days": ["daily"], "from": "09:00", "to": "08:00", "tasks": ["meal"]}]}"#).unwrap();
    let bad = hoitaja.0.path().join("bad.json");
    let (code, e) = hoitaja.json_err(&["serviceplan", "set", &citizen, bad.to_str().unwrap()]);
    assert_eq!(
        (code, e["field"].as_str()),
        (2, Some("plan.visits[0].to")),
        "{e}"
    );
    let set = hoitaja.json(&["serviceplan", "set", &citizen, plan.to_str().unwrap()]);
    assert_eq!(set["plan"]["plan"]["visits"][0]["slot"], "day");
    assert_eq!(
        hoitaja.json(&["serviceplan", "show", &citizen])["versions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let today = hoitaja.json(&["visits", "today"]);
    let v = &today["visits"][0];
    assert_eq!(
        (v["state"].as_str(), v["tasks_left"].as_u64()),
        (Some("planned"), Some(2))
    );
    let id = v["id"].as_str().unwrap().to_owned();
    let (code, e) = hoitaja.json_err(&["visits", "finish", &id]);
    assert_eq!((code, e["field"].as_str()), (2, Some("visit")));
    hoitaja.json(&["visits", "arrive", &id]);
    hoitaja.json(&["visits", "measure", &id, "bp", "128", "82"]);
    let (code, e) = hoitaja.json_err(&["visits", "task", &id, "meal", "done"]);
    assert_eq!((code, e["field"].as_str()), (2, Some("task")));
    hoitaja.json(&["visits", "task", &id, "blood_pressure", "done"]);
    hoitaja.json(&[
        "visits",
        "task",
        &id,
        "medication",
        "not-done",
        "--note",
        "Lääkkeet loppu",
    ]);
    let done = hoitaja.json(&["visits", "finish", &id]);
    assert_eq!(done["visit"]["state"], "finished");
    assert_eq!(done["visit"]["tasks"][0]["outcome"], "not_done");
    let text = String::from_utf8(hoitaja.run(&["visits", "show", &id]).stdout).unwrap();
    assert!(
        text.contains("finished") && text.contains("Lääkkeet loppu"),
        "{text}"
    );
    hoitaja.json(&["sync"]);
    aino.json(&["sync"]);
    let bp = aino.json(&["diary", "list", "--kind", "blood_pressure"]);
    assert_eq!(bp["entries"][0]["author"], nurse.as_str(), "{bp}");
}
