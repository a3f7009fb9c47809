//! Proofs from stored subtree hashes. A log that keeps the root of every perfect subtree it has
//! completed (see [`CompactRange::append_reporting`](crate::CompactRange::append_reporting)) can
//! answer any inclusion or consistency proof with O(log² n) stored hashes instead of all leaves:
//! every hash in an RFC 9162 proof is the tree hash of a range of leaves, and every such range
//! splits into a few perfect subtrees.

use crate::{Error, Hash, node_hash};

/// The perfect subtree over leaves `index << level .. (index + 1) << level`; level 0 is a leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId {
    pub level: u32,
    pub index: u64,
}

/// A range of leaves `start..end` whose tree hash appears in a proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeafRange {
    pub start: u64,
    pub end: u64,
}

impl LeafRange {
    /// The perfect subtrees whose roots, folded from the right, give this range's tree hash:
    /// largest first, one per set bit of its length. Ranges in proofs start at a multiple of
    /// the largest power of two not above their length, which is what makes this exact.
    pub fn nodes(self) -> Vec<NodeId> {
        let mut nodes = Vec::new();
        let mut start = self.start;
        let mut left = self.end.saturating_sub(self.start);
        while left > 0 {
            let level = 63 - left.leading_zeros();
            nodes.push(NodeId {
                level,
                index: start >> level,
            });
            start += 1 << level;
            left -= 1 << level;
        }
        nodes
    }
}

/// The tree hash of a range from the roots of its [`LeafRange::nodes`], in the same order.
pub fn fold_nodes(hashes: &[Hash]) -> Option<Hash> {
    let mut from_right = hashes.iter().rev();
    let last = *from_right.next()?;
    Some(from_right.fold(last, |acc, left| node_hash(left, &acc)))
}

fn split_point(n: u64) -> u64 {
    // The largest power of two smaller than n (n >= 2).
    1 << (63 - (n - 1).leading_zeros())
}

/// The ranges whose tree hashes form the inclusion proof of leaf `index` in a tree of `size`,
/// in proof order (RFC 9162 §2.1.3.1).
pub fn inclusion_ranges(index: u64, size: u64) -> Result<Vec<LeafRange>, Error> {
    if index >= size {
        return Err(Error::IndexOutOfRange { index, size });
    }
    let mut ranges = Vec::new();
    path(index, 0, size, &mut ranges);
    Ok(ranges)
}

fn path(m: u64, start: u64, end: u64, out: &mut Vec<LeafRange>) {
    let n = end - start;
    if n <= 1 {
        return;
    }
    let k = split_point(n);
    if m < k {
        path(m, start, start + k, out);
        out.push(LeafRange {
            start: start + k,
            end,
        });
    } else {
        path(m - k, start + k, end, out);
        out.push(LeafRange {
            start,
            end: start + k,
        });
    }
}

/// The ranges whose tree hashes form the consistency proof from `size1` to `size2`, in proof
/// order (RFC 9162 §2.1.4.1).
pub fn consistency_ranges(size1: u64, size2: u64) -> Result<Vec<LeafRange>, Error> {
    if size1 > size2 {
        return Err(Error::SizeOrder { size1, size2 });
    }
    if size1 == 0 && size2 > 0 {
        return Err(Error::EmptyOldTree { size2 });
    }
    let mut ranges = Vec::new();
    subproof(size1, 0, size2, true, &mut ranges);
    Ok(ranges)
}

fn subproof(m: u64, start: u64, end: u64, complete: bool, out: &mut Vec<LeafRange>) {
    let n = end - start;
    if m == n {
        if !complete {
            out.push(LeafRange { start, end });
        }
        return;
    }
    let k = split_point(n);
    if m <= k {
        subproof(m, start, start + k, complete, out);
        out.push(LeafRange {
            start: start + k,
            end,
        });
    } else {
        subproof(m - k, start + k, end, false, out);
        out.push(LeafRange {
            start,
            end: start + k,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::{CompactRange, consistency_proof, inclusion_proof, leaf_hash};

    /// Every node a log would have stored for `n` leaves: the leaves and what the compact range
    /// reports as it grows.
    fn stored(n: u64) -> (Vec<Hash>, BTreeMap<NodeId, Hash>) {
        let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut nodes = BTreeMap::new();
        let mut range = CompactRange::new();
        for (i, leaf) in leaves.iter().enumerate() {
            nodes.insert(
                NodeId {
                    level: 0,
                    index: i as u64,
                },
                *leaf,
            );
            range.append_reporting(*leaf, |id, hash| {
                nodes.insert(id, hash);
            });
        }
        (leaves, nodes)
    }

    fn from_nodes(ranges: &[LeafRange], nodes: &BTreeMap<NodeId, Hash>) -> Vec<Hash> {
        ranges
            .iter()
            .map(|r| {
                let hashes: Vec<Hash> = r.nodes().iter().map(|id| nodes[id]).collect();
                fold_nodes(&hashes).unwrap()
            })
            .collect()
    }

    #[test]
    fn every_reported_node_is_the_root_of_its_leaves() {
        let (leaves, nodes) = stored(37);
        for (id, hash) in &nodes {
            let start = (id.index << id.level) as usize;
            let end = ((id.index + 1) << id.level) as usize;
            assert_eq!(*hash, crate::root(&leaves[start..end]), "{id:?}");
        }
        // 37 leaves complete 18 + 9 + 4 + 2 + 1 inner nodes.
        assert_eq!(nodes.len(), 37 + 34);
    }

    proptest! {
        #[test]
        fn proofs_from_stored_nodes_equal_proofs_from_all_leaves(size in 1u64..300, pick in any::<u64>(), old in any::<u64>()) {
            let (leaves, nodes) = stored(size);
            let index = pick % size;
            let expected = inclusion_proof(&leaves, index).unwrap();
            prop_assert_eq!(from_nodes(&inclusion_ranges(index, size).unwrap(), &nodes), expected);
            let size1 = 1 + old % size;
            let expected = consistency_proof(&leaves, size1).unwrap();
            prop_assert_eq!(from_nodes(&consistency_ranges(size1, size).unwrap(), &nodes), expected);
            let whole = LeafRange { start: 0, end: size };
            let hashes: Vec<Hash> = whole.nodes().iter().map(|id| nodes[id]).collect();
            prop_assert_eq!(fold_nodes(&hashes).unwrap(), crate::root(&leaves));
        }
    }

    #[test]
    fn out_of_range_requests_are_refused() {
        assert!(inclusion_ranges(5, 5).is_err());
        assert!(consistency_ranges(6, 5).is_err());
        assert!(consistency_ranges(0, 5).is_err());
        assert_eq!(consistency_ranges(5, 5).unwrap(), vec![]);
    }
}
