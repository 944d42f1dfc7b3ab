//! Request ids: 32 lower-case hex characters, unique per request, generated without locks or
//! system calls (a per-thread generator seeded once from the OS).

use std::cell::Cell;

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let id = uuid::Uuid::new_v4();
    let (hi, lo) = id.as_u64_pair();
    (hi ^ lo) | 1
}

/// wyrand: fast, well distributed, not cryptographic (ids are identifiers, not secrets).
fn next() -> u64 {
    STATE.with(|s| {
        let v = s.get().wrapping_add(0xa076_1d64_78bd_642f);
        s.set(v);
        let t = u128::from(v) * u128::from(v ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    })
}

/// A new request id.
pub fn generate() -> [u8; 32] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 32];
    for (half, word) in [next(), next()].into_iter().enumerate() {
        for i in 0..16 {
            out[half * 16 + i] = HEX[((word >> (60 - 4 * i)) & 0xf) as usize];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_hex_and_distinct() {
        let a = super::generate();
        let b = super::generate();
        assert_ne!(a, b);
        assert!(a
            .iter()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }
}
