//! Which items of a chunk are settled: the chunk ledger's `settled` attribute.

/// A set of item positions within one chunk (0-based), stored as bytes: position `i` is
/// bit `i % 8` of byte `i / 8`. A chunk holds at most a few hundred items, so the set is
/// at most a few dozen bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settled(Vec<u8>);

impl Settled {
    pub fn from_bytes(bytes: Vec<u8>) -> Settled {
        Settled(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn contains(&self, position: usize) -> bool {
        self.0
            .get(position / 8)
            .is_some_and(|byte| byte & (1 << (position % 8)) != 0)
    }

    pub fn insert(&mut self, position: usize) {
        let byte = position / 8;
        if self.0.len() <= byte {
            self.0.resize(byte + 1, 0);
        }
        self.0[byte] |= 1 << (position % 8);
    }

    pub fn len(&self) -> usize {
        self.0.iter().map(|byte| byte.count_ones() as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The positions below `count` that are not in the set, in order.
    pub fn missing(&self, count: usize) -> Vec<usize> {
        (0..count)
            .filter(|&position| !self.contains(position))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Settled;

    #[test]
    fn positions_are_bits_in_little_endian_bytes() {
        let mut set = Settled::default();
        for position in [0, 3, 9] {
            set.insert(position);
        }
        assert_eq!(set.as_bytes(), &[0b0000_1001, 0b0000_0010]);
        assert!(set.contains(9) && !set.contains(8) && !set.contains(500));
        assert_eq!(set.len(), 3);
        assert_eq!(set.missing(11), vec![1, 2, 4, 5, 6, 7, 8, 10]);
        assert_eq!(Settled::from_bytes(set.as_bytes().to_vec()), set);
    }
}
