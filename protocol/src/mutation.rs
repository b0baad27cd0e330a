//! Seeded mutations of valid inputs, for the tests that feed every decoder of untrusted bytes
//! (padding, envelopes, key bundles, relay bodies) thousands of near-valid inputs in CI. cargo-fuzz
//! needs a nightly compiler; this runs on stable inside `cargo test`, the same cases on every run
//! (the failing case's seed and round are in the assertion message and replay).

/// A xorshift64* generator: deterministic, and enough to choose edits.
pub struct Mutator(u64);

/// Bytes that tend to matter to decoders: zero, all ones, sign bits, JSON and base64 syntax.
const INTERESTING: &[u8] = b"\x00\xff\x7f\x80\x01\"{}[],:\\0-9aAzZ+/=\n ";

impl Mutator {
    pub fn new(seed: u64) -> Mutator {
        Mutator(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// `input` after one to three random edits: a flipped bit, a replaced byte (random or
    /// interesting), a truncation, an inserted, deleted or repeated run, or two bytes swapped.
    pub fn mutate(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = input.to_vec();
        for _ in 0..1 + self.below(3) {
            let n = out.len();
            match self.below(8) {
                0 if n > 0 => {
                    let i = self.below(n);
                    out[i] ^= 1 << self.below(8);
                }
                1 if n > 0 => {
                    let i = self.below(n);
                    out[i] = self.next_u64() as u8;
                }
                2 if n > 0 => {
                    let i = self.below(n);
                    out[i] = INTERESTING[self.below(INTERESTING.len())];
                }
                3 => out.truncate(self.below(n + 1)),
                4 => {
                    let at = self.below(n + 1);
                    let run: Vec<u8> = (0..1 + self.below(8))
                        .map(|_| INTERESTING[self.below(INTERESTING.len())])
                        .collect();
                    out.splice(at..at, run);
                }
                5 if n > 0 => {
                    let at = self.below(n);
                    let len = 1 + self.below((n - at).min(16));
                    out.drain(at..at + len);
                }
                6 if n > 0 => {
                    let at = self.below(n);
                    let len = 1 + self.below((n - at).min(16));
                    let run = out[at..at + len].to_vec();
                    out.splice(at..at, run);
                }
                _ if n > 1 => {
                    let (i, j) = (self.below(n), self.below(n));
                    out.swap(i, j);
                }
                _ => out.push(self.next_u64() as u8),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_cases_and_edits_change_the_input() {
        let input = br#"{"a":"b64+/=","n":[1,2,3]}"#;
        let (mut a, mut b) = (Mutator::new(7), Mutator::new(7));
        let mut changed = 0;
        for _ in 0..1000 {
            let x = a.mutate(input);
            assert_eq!(x, b.mutate(input));
            changed += (x != input) as u32;
        }
        assert!(changed > 950, "{changed} of 1000 changed");
    }
}
