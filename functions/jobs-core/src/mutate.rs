//! Seeded mutation of valid inputs, for the decoder robustness tests: random byte edits of
//! real requests and messages reach far more of the decoders than random bytes do.

/// xorshift64*: deterministic, so a failure names a reproducible iteration.
pub struct Mutator(u64);

/// Fragments that tend to break decoders: JSON structure, type changes, limits, escapes.
const TOKENS: [&str; 16] = [
    "{",
    "}",
    "[",
    "]",
    "\"",
    ",",
    ":",
    "null",
    "-1",
    "1e999",
    "\\u0000",
    "\\ud800",
    "true",
    "18446744073709551616",
    "\u{1F600}",
    "\r\n",
];

impl Mutator {
    pub fn new(seed: u64) -> Mutator {
        Mutator(seed.max(1))
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n.max(1)
    }

    /// 1 to 4 edits: flip a byte, cut a range, repeat a range, or insert a token.
    pub fn mutate(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = input.to_vec();
        for _ in 0..1 + self.below(4) {
            let at = self.below(out.len() + 1);
            match self.below(4) {
                0 if at < out.len() => out[at] ^= 1 << self.below(8),
                1 => {
                    let end = (at + 1 + self.below(16)).min(out.len());
                    out.drain(at.min(end)..end);
                }
                2 => {
                    let end = (at + 1 + self.below(64)).min(out.len());
                    let piece = out[at.min(end)..end].to_vec();
                    out.splice(
                        at..at,
                        piece
                            .iter()
                            .cycle()
                            .take(piece.len() * (1 + self.below(50)))
                            .copied(),
                    );
                }
                _ => {
                    let token = TOKENS[self.below(TOKENS.len())].as_bytes();
                    out.splice(at..at, token.iter().copied());
                }
            }
        }
        out
    }
}
