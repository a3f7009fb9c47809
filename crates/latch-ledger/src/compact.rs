//! The compact range: the O(log n) right border of a growing tree, so that a streaming verifier
//! can append leaf hashes one at a time and know the root at every size without keeping leaves.

use crate::{EMPTY_ROOT, Error, Hash, node_hash};

/// The roots of the perfect subtrees that make up a tree of `size` leaves, largest (leftmost)
/// first: one per set bit of `size`, as RFC 9162's left-heavy trees decompose.
///
/// Appending merges equal-sized subtrees like a binary counter, so memory stays at most 64 hashes
/// and each append costs at most 64 node hashes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    hashes: Vec<Hash>,
}

impl CompactRange {
    /// The range of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a range saved as its `size()` and `hashes()`, for a verifier that resumes later.
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Result<Self, Error> {
        let want = size.count_ones();
        if hashes.len() != want as usize {
            return Err(Error::CompactRangeShape {
                size,
                got: hashes.len(),
                want,
            });
        }
        Ok(Self { size, hashes })
    }

    /// The number of leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The roots of the perfect subtrees, largest first, one per set bit of `size()`.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Appends the next leaf hash (see [`leaf_hash`](crate::leaf_hash)).
    pub fn append(&mut self, leaf: Hash) {
        let mut merged = leaf;
        // Each trailing one bit of the old size is a subtree as big as the one being carried.
        let mut carries = self.size;
        while carries & 1 == 1
            && let Some(left) = self.hashes.pop()
        {
            merged = node_hash(&left, &merged);
            carries >>= 1;
        }
        self.hashes.push(merged);
        self.size += 1;
    }

    /// Appends like [`append`](Self::append) and reports every perfect subtree the leaf
    /// completes (levels 1 and up) with its root, so that a log can store them for proofs.
    pub fn append_reporting(&mut self, leaf: Hash, mut report: impl FnMut(crate::NodeId, Hash)) {
        let old_size = self.size;
        let mut merged = leaf;
        let mut carries = old_size;
        let mut level = 0u32;
        while carries & 1 == 1
            && let Some(left) = self.hashes.pop()
        {
            merged = node_hash(&left, &merged);
            carries >>= 1;
            level += 1;
            report(
                crate::NodeId {
                    level,
                    index: old_size >> level,
                },
                merged,
            );
        }
        self.hashes.push(merged);
        self.size += 1;
    }

    /// The root of the tree of all leaves appended so far: the subtree roots folded from the
    /// right, which is the tree hash of RFC 9162 §2.1.1.
    pub fn root(&self) -> Hash {
        let mut from_right = self.hashes.iter().rev();
        match from_right.next() {
            None => EMPTY_ROOT,
            Some(last) => from_right.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leaf_hash;

    #[test]
    fn holds_one_hash_per_set_bit() {
        let mut range = CompactRange::new();
        assert_eq!(range.root(), EMPTY_ROOT);
        for i in 0u64..100 {
            range.append(leaf_hash(&i.to_be_bytes()));
            assert_eq!(range.size(), i + 1);
            assert_eq!(range.hashes().len(), (i + 1).count_ones() as usize);
        }
    }

    #[test]
    fn from_parts_checks_the_shape() {
        let mut range = CompactRange::new();
        for i in 0u8..7 {
            range.append(leaf_hash(&[i]));
        }
        let resumed = CompactRange::from_parts(range.size(), range.hashes().to_vec());
        assert_eq!(resumed.as_ref(), Ok(&range));
        assert_eq!(
            CompactRange::from_parts(8, range.hashes().to_vec()),
            Err(Error::CompactRangeShape {
                size: 8,
                got: 3,
                want: 1
            })
        );
    }
}
