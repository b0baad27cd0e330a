//! What the validation of one operation costs, against the work every operation costs anyway:
//! decoding its payload from JSON (docs/benchmarks.md, "Validation on the hot path").
//! `cargo bench -p polku-protocol --bench check`

use std::hint::black_box;
use std::time::Instant;

use polku_protocol::op::{check_op, check_payload, ENTRY_VERSION};
use polku_protocol::wire::Op;
use serde_json::{json, Map, Value};

fn per_op(n: u32, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

fn main() {
    let ms = 1_796_000_000_000i64;
    let id = "01a22e7d-1f94-710e-b6d7-8f62fad4f809";
    let payload = json!({
        "version_id": id, "entry_id": "01a22e7d-1f94-710e-b6d7-8f62fad4f800", "version": 1,
        "kind": "glucose", "at_ms": ms, "utc_offset_s": 7200, "author": "0f7c2b5e-user",
        "created_ms": ms, "note": "after a walk", "deleted_reason": null, "import_key": null,
        "data": "{\"kind\":\"glucose\",\"reading\":{\"type\":\"value\",\"mmol_l\":6.4},\"unit\":\"mmol/L\",\"context\":\"fasting\",\"hours_after_meal\":null,\"source\":\"meter\"}",
        "hlc": "0000018c2f3a1b2c-0001-dev", "resolves": null
    });
    let text = payload.to_string();
    let op = Op {
        op_id: id.into(),
        stream: "0f7c2b5e-user".into(),
        device_seq: 1,
        hlc: "0000018c2f3a1b2c-0001-dev".into(),
        kind: ENTRY_VERSION.name.into(),
        schema_version: 1,
        payload: payload.clone(),
    };
    let obj = payload.as_object().unwrap().clone();
    let n = 200_000;
    for round in 1..=3 {
        let decode = per_op(n, || {
            black_box(serde_json::from_str::<Map<String, Value>>(black_box(&text)).unwrap());
        });
        let payload_only = per_op(n, || {
            check_payload(&ENTRY_VERSION, id, black_box(&obj), ms).unwrap();
        });
        let whole = per_op(n, || check_op(black_box(&op), &text, ms).unwrap());
        println!(
            "round {round}: decode payload (peer) {decode:.2} us | check_payload {payload_only:.2} us | check_op {whole:.2} us per operation"
        );
    }
}
