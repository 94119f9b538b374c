//! Keyed hashing shared by the layers: hash maps whose keys come from records (the cleaner's key
//! map, views' keyed state) are hashed under random keys, so that a producer cannot plan collisions.

use std::hash::BuildHasher;

/// An aHash state under four random 64-bit keys (from std's randomly keyed SipHash: each
/// `std::hash::RandomState` draws fresh keys).
pub(crate) fn random_state() -> ahash::RandomState {
    let k = || std::hash::RandomState::new().hash_one(0u8);
    ahash::RandomState::with_seeds(k(), k(), k(), k())
}
