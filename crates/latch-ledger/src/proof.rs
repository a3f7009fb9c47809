//! Merkle tree roots, inclusion proofs and consistency proofs, generated and verified exactly as
//! RFC 9162 §2.1 defines them (the same trees and proofs as RFC 6962).
//!
//! Generation takes the tree's leaf hashes as a slice: every proof needs subtree roots that cover
//! all leaves, so a store must read them anyway, and a slice keeps this crate free of IO. Proofs
//! list hashes from the leaf end upwards, as the RFC does.

use crate::{EMPTY_ROOT, Error, Hash, node_hash};

/// The Merkle tree hash (RFC 9162 §2.1.1) of a tree whose leaf hashes are `leaves`, in order.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => EMPTY_ROOT,
        [leaf] => *leaf,
        _ => {
            let (left, right) = leaves.split_at(split_point(leaves.len()));
            node_hash(&root(left), &root(right))
        }
    }
}

/// The inclusion proof (RFC 9162 §2.1.3.1) of the leaf at `index` in the tree of `leaves`.
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Result<Vec<Hash>, Error> {
    let size = leaves.len() as u64;
    let position = usize::try_from(index)
        .ok()
        .filter(|&position| position < leaves.len())
        .ok_or(Error::IndexOutOfRange { index, size })?;
    let mut proof = Vec::new();
    path(position, leaves, &mut proof);
    Ok(proof)
}

/// The consistency proof (RFC 9162 §2.1.4.1) that the tree of all `leaves` extends the tree of
/// its first `size1` leaves.
///
/// `size1` must be between 1 and `leaves.len()`, except that 0 is allowed when `leaves` is
/// empty; the proof is empty when `size1 == leaves.len()`.
pub fn consistency_proof(leaves: &[Hash], size1: u64) -> Result<Vec<Hash>, Error> {
    let size2 = leaves.len() as u64;
    if size1 > size2 {
        return Err(Error::SizeOrder { size1, size2 });
    }
    if size1 == 0 && size2 > 0 {
        return Err(Error::EmptyOldTree { size2 });
    }
    let mut proof = Vec::new();
    // `size1 <= leaves.len()`, so it fits in a usize.
    subproof(size1 as usize, leaves, true, &mut proof);
    Ok(proof)
}

/// Checks that `proof` proves the leaf hash `leaf` is at `index` in the tree of `size` leaves
/// whose root is `root`, with the algorithm of RFC 9162 §2.1.3.2.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), Error> {
    if index >= size {
        return Err(Error::IndexOutOfRange { index, size });
    }
    let (inner, border) = decompose(index, size);
    let want = (inner + border) as usize;
    let wrong_length = || Error::InclusionProofLength {
        index,
        size,
        got: proof.len(),
        want,
    };
    // The algorithm below rejects a proof of the wrong length on its own; checking first just
    // gives a more telling error.
    if proof.len() != want {
        return Err(wrong_length());
    }

    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(wrong_length());
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(wrong_length());
    }
    if r != *root {
        return Err(Error::RootMismatch {
            size,
            calculated: r,
            expected: *root,
        });
    }
    Ok(())
}

/// Checks that `proof` proves the tree of `size2` leaves with root `root2` extends the tree of
/// `size1` leaves with root `root1`, with the algorithm of RFC 9162 §2.1.4.2.
///
/// Equal sizes need an empty proof and equal roots (and size 0 needs the empty tree's root). A
/// proof from size 0 to a larger size is refused: it would prove nothing, since every tree
/// extends the empty tree, so a caller that starts from nothing should not ask for one.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &Hash,
    root2: &Hash,
) -> Result<(), Error> {
    if size1 > size2 {
        return Err(Error::SizeOrder { size1, size2 });
    }
    let wrong_length = |want| Error::ConsistencyProofLength {
        size1,
        size2,
        got: proof.len(),
        want,
    };
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(wrong_length(0));
        }
        if size1 == 0 && *root1 != EMPTY_ROOT {
            return Err(Error::RootMismatch {
                size: 0,
                calculated: EMPTY_ROOT,
                expected: *root1,
            });
        }
        if root1 != root2 {
            return Err(Error::RootMismatch {
                size: size2,
                calculated: *root1,
                expected: *root2,
            });
        }
        return Ok(());
    }
    if size1 == 0 {
        return Err(Error::EmptyOldTree { size2 });
    }

    // From here 0 < size1 < size2. The proof is the part of leaf size1-1's inclusion proof in
    // the new tree above the largest complete subtree that ends at size1, preceded by that
    // subtree's root unless it is the whole old tree (size1 a power of two), which the verifier
    // already knows as root1.
    let (inner, border) = decompose(size1 - 1, size2);
    let shift = size1.trailing_zeros();
    let seeded = size1.is_power_of_two();
    let want = (inner.saturating_sub(shift) + border) as usize + usize::from(!seeded);
    if proof.len() != want {
        return Err(wrong_length(want));
    }

    let mut path = seeded.then_some(root1).into_iter().chain(proof);
    let (mut fn_, mut sn) = (size1 - 1, size2 - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let Some(first) = path.next() else {
        return Err(wrong_length(want));
    };
    let (mut fr, mut sr) = (*first, *first);
    for c in path {
        if sn == 0 {
            return Err(wrong_length(want));
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(wrong_length(want));
    }
    if fr != *root1 {
        return Err(Error::RootMismatch {
            size: size1,
            calculated: fr,
            expected: *root1,
        });
    }
    if sr != *root2 {
        return Err(Error::RootMismatch {
            size: size2,
            calculated: sr,
            expected: *root2,
        });
    }
    Ok(())
}

/// The size of the left subtree of a tree of `n >= 2` leaves: the largest power of two below n.
fn split_point(n: usize) -> usize {
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// PATH(m, D[n]) of RFC 9162 §2.1.3.1, appended to `proof`.
fn path(m: usize, leaves: &[Hash], proof: &mut Vec<Hash>) {
    if leaves.len() <= 1 {
        return;
    }
    let k = split_point(leaves.len());
    let (left, right) = leaves.split_at(k);
    if m < k {
        path(m, left, proof);
        proof.push(root(right));
    } else {
        path(m - k, right, proof);
        proof.push(root(left));
    }
}

/// SUBPROOF(m, D[n], b) of RFC 9162 §2.1.4.1, appended to `proof`.
fn subproof(m: usize, leaves: &[Hash], complete: bool, proof: &mut Vec<Hash>) {
    if m == leaves.len() {
        if !complete {
            proof.push(root(leaves));
        }
        return;
    }
    let k = split_point(leaves.len());
    let (left, right) = leaves.split_at(k);
    if m <= k {
        subproof(m, left, complete, proof);
        proof.push(root(right));
    } else {
        subproof(m - k, right, false, proof);
        proof.push(root(left));
    }
}

/// Splits the inclusion proof of leaf `index` in a tree of `size` leaves into the hashes below
/// the level where its path and the path of the last leaf meet (`inner`) and those above, which
/// all sit to the left of the path (`border`).
fn decompose(index: u64, size: u64) -> (u32, u32) {
    let inner = u64::BITS - (index ^ (size - 1)).leading_zeros();
    // `checked_shr` because `inner` is 64 when the paths part at the top bit.
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner, border)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leaf_hash;

    #[test]
    fn split_point_is_the_largest_power_of_two_below() {
        let cases = [
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 4),
            (8, 4),
            (9, 8),
            (1 << 40, 1 << 39),
        ];
        for (n, k) in cases {
            assert_eq!(split_point(n), k, "n = {n}");
        }
    }

    #[test]
    fn proof_lengths_at_the_top_of_the_index_range_do_not_overflow() {
        let (inner, border) = decompose(u64::MAX - 1, u64::MAX);
        assert_eq!((inner, border), (0, 63));
        let (inner, border) = decompose(0, u64::MAX);
        assert_eq!((inner, border), (64, 0));
        let leaf = leaf_hash(b"x");
        assert!(matches!(
            verify_inclusion(0, u64::MAX, &leaf, &[], &leaf),
            Err(Error::InclusionProofLength { want: 64, .. })
        ));
        assert!(matches!(
            verify_consistency(1, u64::MAX, &[], &leaf, &leaf),
            Err(Error::ConsistencyProofLength { want: 64, .. })
        ));
    }

    #[test]
    fn generation_refuses_what_verification_refuses() {
        let leaves: Vec<Hash> = (0u8..5).map(|i| leaf_hash(&[i])).collect();
        assert_eq!(
            inclusion_proof(&leaves, 5),
            Err(Error::IndexOutOfRange { index: 5, size: 5 })
        );
        assert_eq!(
            consistency_proof(&leaves, 6),
            Err(Error::SizeOrder { size1: 6, size2: 5 })
        );
        assert_eq!(
            consistency_proof(&leaves, 0),
            Err(Error::EmptyOldTree { size2: 5 })
        );
        assert_eq!(consistency_proof(&[], 0), Ok(vec![]));
        assert_eq!(consistency_proof(&leaves, 5), Ok(vec![]));
    }

    #[test]
    fn equal_sizes_of_zero_need_the_empty_root() {
        let other = leaf_hash(b"x");
        assert_eq!(
            verify_consistency(0, 0, &[], &EMPTY_ROOT, &EMPTY_ROOT),
            Ok(())
        );
        assert!(verify_consistency(0, 0, &[], &other, &other).is_err());
        assert!(verify_consistency(0, 0, &[], &EMPTY_ROOT, &other).is_err());
    }
}
