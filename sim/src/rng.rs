//! Seed streams: every random choice of a run comes from a ChaCha8 stream
//! derived from the run seed and a purpose, so adding draws for one purpose
//! never shifts another's.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The client workload.
pub const STREAM_WORKLOAD: u64 = 1;
/// The supervisor's fault schedule (and each power loss's plan seed).
pub const STREAM_FAULTS: u64 = 2;
/// Store settings drawn per seed.
pub const STREAM_SETTINGS: u64 = 3;
/// The clients' read/write choice and their reads.
pub const STREAM_READS: u64 = 11;
/// Member `id`'s tick jitter is stream `STREAM_JITTER_BASE + id`.
pub const STREAM_JITTER_BASE: u64 = 100;

/// Derives an independent RNG stream for one purpose from the run seed.
pub fn stream(seed: u64, purpose: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(purpose);
    rng
}
