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
/// The run's disk latency model (the base cost of each operation kind).
pub const STREAM_DISK_MODEL: u64 = 4;
/// Cluster events of a random run (a backup restored and grown back).
pub const STREAM_CLUSTER_EVENTS: u64 = 40;
/// Which random torn-write power losses wait for a write to tear, and
/// how (so the fault stream's draws keep their order).
pub const STREAM_TEAR_AIM: u64 = 42;
/// Which random EIOs on a rename wait for a snapshot file's rename.
pub const STREAM_EIO_AIM: u64 = 43;
/// Whether and when a member that carried on after an injected EIO
/// crashes (`run/after_eio.rs`).
pub const STREAM_EIO_AFTERMATH: u64 = 44;
/// Which random WAL bit rot aims at the value of a put a boot replays,
/// and where in it (`run/inject.rs`).
pub const STREAM_DAMAGE_AIM: u64 = 46;
/// Which random `net` faults cut a member off its peers only, which slow
/// episodes come with such a cut of the same member, and how long those
/// cuts last (`run/peer_cut.rs`).
pub const STREAM_PEER_CUT: u64 = 47;
/// When the clients' stretches of a single request kind start, how long
/// they last and their kind (`mix::Phases`; runs without stretches draw
/// nothing from it).
pub const STREAM_MIX_STRETCHES: u64 = 50;
/// Scripted link rules' per-message drop and duplication draws.
pub const STREAM_LINKS: u64 = 5;
/// Dimension `d` of the swarm's per-seed world (`swarm.rs`) is stream
/// `STREAM_SWARM_BASE + d`.
pub const STREAM_SWARM_BASE: u64 = 300;
/// The clients' read/write choice and their reads.
pub const STREAM_READS: u64 = 11;
/// Member `id`'s tick jitter is stream `STREAM_JITTER_BASE + id`.
pub const STREAM_JITTER_BASE: u64 = 100;
/// Member `id`'s disk latency jitter is stream `STREAM_DISK_JITTER_BASE + id`.
pub const STREAM_DISK_JITTER_BASE: u64 = 200;

/// The seed a run's streams are re-seeded from at a fork (`sim localize`):
/// suffix `suffix` of the run of `seed`. Mixed (splitmix64) so that nearby
/// suffixes give unrelated streams.
pub fn suffix_seed(seed: u64, suffix: u64) -> u64 {
    splitmix64(seed ^ splitmix64(suffix.wrapping_add(0x5EED_F0C5)))
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Derives an independent RNG stream for one purpose from the run seed.
pub fn stream(seed: u64, purpose: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(purpose);
    rng
}

#[cfg(test)]
mod tests {
    /// Every `STREAM_*` id of this file, read from its source, so a new
    /// stream cannot be left out of the check below.
    fn declared_streams() -> Vec<(String, u64)> {
        include_str!("rng.rs")
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix("pub const STREAM_")?;
                let (name, value) = rest.split_once(": u64 = ")?;
                Some((name.to_string(), value.trim_end_matches(';').parse().ok()?))
            })
            .collect()
    }

    /// Two purposes on one stream would draw the same numbers (and adding
    /// draws to one would shift the other); the per-member and per-dimension
    /// bases own the hundred ids above them.
    #[test]
    fn every_stream_id_is_its_own() {
        let streams = declared_streams();
        assert!(streams.len() >= 14, "{streams:?}");
        let bases = ["JITTER_BASE", "DISK_JITTER_BASE", "SWARM_BASE"];
        let owner = |id: u64| {
            streams
                .iter()
                .filter(|(name, base)| {
                    if bases.contains(&name.as_str()) {
                        (*base..*base + 100).contains(&id)
                    } else {
                        *base == id
                    }
                })
                .map(|(name, _)| name.as_str())
                .collect::<Vec<_>>()
        };
        for (name, id) in &streams {
            assert_eq!(owner(*id), vec![name.as_str()], "stream {id}");
        }
    }
}
