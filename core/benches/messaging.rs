//! The per-message cost of end-to-end encryption (docs/benchmarks.md): a 500-byte message
//! encrypted with an Olm session and decrypted by its peer, against the floor of sealing and
//! opening the same bytes with AES-256-GCM (ring). Both directions alternate, as a conversation
//! does, so every Olm message also turns the ratchet (one X25519 each).
//!
//!   cargo bench -p polku-core --bench messaging

use std::time::Instant;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use vodozemac::olm::{Account, OlmMessage, SessionConfig};

const N: usize = 5_000;

fn main() {
    let body = vec![b'x'; 500];

    // Olm: Alice and Bob take turns, each message decrypted by the other.
    let alice = Account::new();
    let mut bob = Account::new();
    bob.generate_one_time_keys(1);
    let otk = *bob.one_time_keys().values().next().unwrap();
    let mut a = alice
        .create_outbound_session(SessionConfig::version_1(), bob.curve25519_key(), otk)
        .unwrap();
    let OlmMessage::PreKey(first) = a.encrypt(b"hello").unwrap() else {
        unreachable!()
    };
    let mut b = bob
        .create_inbound_session(SessionConfig::version_1(), alice.curve25519_key(), &first)
        .unwrap()
        .session;
    let t = Instant::now();
    for i in 0..N {
        let (tx, rx) = if i % 2 == 0 {
            (&mut b, &mut a)
        } else {
            (&mut a, &mut b)
        };
        let m = tx.encrypt(&body).unwrap();
        assert_eq!(rx.decrypt(&m).unwrap().len(), 500);
    }
    let olm_turn = t.elapsed().as_secs_f64() / N as f64;
    // The same session, one direction only (no ratchet turn): a burst of messages.
    let t = Instant::now();
    for _ in 0..N {
        let m = a.encrypt(&body).unwrap();
        assert_eq!(b.decrypt(&m).unwrap().len(), 500);
    }
    let olm_burst = t.elapsed().as_secs_f64() / N as f64;

    // Floor: AES-256-GCM seal and open of the same 500 bytes.
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap());
    let t = Instant::now();
    for i in 0..N {
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let mut buf = body.clone();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut buf)
            .unwrap();
        let plain = key
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut buf)
            .unwrap();
        assert_eq!(plain.len(), 500);
    }
    let gcm = t.elapsed().as_secs_f64() / N as f64;
    println!(
        "500-byte message, encrypt + decrypt, mean of {N}:\n  Olm, direction alternating (ratchet turn each): {:.1} µs ({:.1}× the floor)\n  Olm, one direction (burst): {:.1} µs ({:.1}× the floor)\n  floor, AES-256-GCM seal + open (ring): {:.2} µs",
        olm_turn * 1e6,
        olm_turn / gcm,
        olm_burst * 1e6,
        olm_burst / gcm,
        gcm * 1e6
    );
}
