//! Swarm testing: each random seed draws its whole world (cluster size,
//! fault classes and rate, store settings, network, client pacing and
//! request mix, length)
//! from its own stream, so one seed runs a tiny batch limit with a small
//! WAL segment on five members and the next a lone member with only power
//! losses (Groce et al., "Swarm testing", ISSTA 2012). Every dimension's
//! draw is in the table of `docs/ARCHITECTURE.md` ("The swarm"). Each
//! dimension draws from a stream of its own ([`STREAM_SWARM_BASE`] plus its
//! [`Dim`] number), so overriding one (`--nodes`) or adding one never moves
//! another's value.
//!
//! Integer settings are drawn *by octave*: an octave `[2^k, 2^(k+1))` that
//! meets the range is picked uniformly, then a value uniformly inside it
//! (clipped to the range). That is log-uniform without floating point, so
//! small values (a batch limit of 1 to 9) are as common as large ones.

use crate::fault::FaultClass;
use crate::mix::{KINDS, Mix, RequestKind, Stretches, by_ticket};
use crate::rng::{STREAM_SWARM_BASE, stream};
use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;

/// The drawn dimensions, each numbering its own stream. Append new ones;
/// never renumber (a number is part of every seed's meaning).
#[derive(Debug, Clone, Copy)]
enum Dim {
    Nodes = 0,
    Faults = 1,
    FaultRate = 2,
    SnapshotCount = 3,
    BatchLimit = 4,
    BatchInterval = 5,
    SegmentSize = 6,
    PacketLoss = 7,
    Latency = 8,
    RequestInterval = 9,
    Duration = 10,
    Mix = 11,
    /// Whether the store settings are the fixed world's.
    FixedSettings = 12,
}

/// The stream of one dimension of `seed`'s world.
fn dim(seed: u64, d: Dim) -> ChaCha8Rng {
    stream(seed, STREAM_SWARM_BASE + d as u64)
}

/// Cluster sizes and their weights (in percent): 3 and 5 members, the
/// sizes users run, are common; every size from 1 to 7 is present. A run
/// costs about its member count, so large sizes are kept rarer. One and two
/// members get 5 % each: they cannot show a bug that needs replication or a
/// damage class (bit rot, read errors and misdirected writes need three
/// members): at 8 % each they caught `cindex-before-apply` in 6 of 47
/// seeds against 63 of 253 for the larger sizes, and neither
/// `no-fsync-before-send` nor `cindex-only-grows` in seeds 1..100.
/// Three members get more than half: with every other dimension fixed
/// (`--pin DIM=fixed`), the drawn size alone cut `read-index-before-apply`
/// from 13 to 6 and `wal-zero-word-as-end` from 11 to 5 failures in seeds
/// 1..300 (at 46 % of three members).
pub const NODE_WEIGHTS: [(u64, u32); 7] =
    [(1, 4), (2, 4), (3, 62), (4, 6), (5, 13), (6, 3), (7, 8)];

/// The chance, in per mille, that every applicable fault class is on (the
/// fixed world's choice); otherwise each is on with probability 1/2, at
/// least one. Half, not a third: the rarest switches need several classes
/// together (a damage class late in the run plus crashes, an EIO plus a
/// power loss), and at a third their failures over seeds 1..150 came
/// 5 in 120 from worlds with every class and 2 in 480 from the others,
/// while the common switches were caught as often with every class as
/// without. The other half keeps swarm testing's omissions (a class that
/// masks another is off). Two thirds since the drawn classes alone (every
/// other dimension fixed) cut `read-index-before-apply` from 13 to 4
/// failures in seeds 1..300 at a half.
pub const ALL_CLASSES_PER_MILLE: u32 = 667;

/// Expected faults per second while faults run, and their weights.
pub const FAULT_RATES: [(f64, u32); 5] = [(0.25, 1), (0.5, 2), (1.0, 4), (2.0, 2), (4.0, 1)];

/// Virtual seconds of faults and traffic, and their weights. Ten-second
/// runs are a seventh: the damage classes' slot opens only in the last
/// quarter of a run, and the drawn duration alone (at weights 1, 2, 1) cut
/// `wal-zero-word-as-end` from 11 to 7 failures in seeds 1..300.
pub const DURATIONS_S: [(u64, u32); 3] = [(10, 1), (20, 3), (30, 3)];

/// The chance, in per mille, that a seed keeps the fixed world's network
/// (1 % loss and 1..15 ms with `net`, else none and 1..3 ms:
/// `NetworkModel::LOSSY` and `CLEAN`), drawn after the latency. The drawn
/// network alone cut `read-index-before-apply` from 13 to 8 failures in
/// seeds 1..300: a follower must lag behind the read index.
pub const FIXED_NETWORK_PER_MILLE: u32 = 333;

/// The chance, in per mille, that a seed keeps the fixed world's store
/// settings ([`fixed_settings`]; its own stream, [`Dim::FixedSettings`]).
/// The drawn settings alone cut `read-index-before-apply` from 13 to 7 and
/// `wal-zero-word-as-end` from 11 to 9 failures in seeds 1..300.
pub const FIXED_SETTINGS_PER_MILLE: u32 = 333;

/// The chance, in per mille, that a seed keeps the fixed world's 15 ms
/// between a session's requests (drawn after the octave): the drawn pacing
/// alone cut `read-index-before-apply` from 13 to 8 failures in seeds
/// 1..300.
pub const FIXED_PACING_PER_MILLE: u32 = 333;

/// The store settings of a world: snapshot count, batch limit, batch
/// interval (ms), WAL segment size (bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub snapshot_count: u64,
    pub batch_limit: usize,
    pub batch_interval_ms: u64,
    pub wal_segment_size: u64,
}

/// The fixed world's store settings of `seed`: each from a short list, from
/// the settings stream (`rng::STREAM_SETTINGS`), as before the swarm.
pub fn fixed_settings(seed: u64) -> Settings {
    let mut rng = stream(seed, crate::rng::STREAM_SETTINGS);
    Settings {
        snapshot_count: *[16, 64, 256].choose(&mut rng).unwrap_or(&64),
        batch_limit: *[3, 8, 40, 10_000].choose(&mut rng).unwrap_or(&40),
        batch_interval_ms: *[20, 100, 500].choose(&mut rng).unwrap_or(&100),
        wal_segment_size: *[8 * 1024, 64 * 1024]
            .choose(&mut rng)
            .unwrap_or(&(64 * 1024)),
    }
}

/// The store settings of `seed`'s world: the fixed world's
/// ([`FIXED_SETTINGS_PER_MILLE`]) or each by octave from its own stream.
fn draw_settings(seed: u64) -> Settings {
    let octave = |d: Dim, lo: u64, hi: u64| by_octave(&mut dim(seed, d), lo, hi);
    let drawn = Settings {
        snapshot_count: octave(Dim::SnapshotCount, 5, 10_000),
        batch_limit: octave(Dim::BatchLimit, 1, 10_000) as usize,
        batch_interval_ms: octave(Dim::BatchInterval, 10, 1000),
        wal_segment_size: octave(Dim::SegmentSize, 4, 64 * 1024) * 1024,
    };
    if dim(seed, Dim::FixedSettings).random_ratio(FIXED_SETTINGS_PER_MILLE, 1000) {
        fixed_settings(seed)
    } else {
        drawn
    }
}

/// The chance, in per mille, that a seed keeps the fixed world's request
/// mix ([`Mix::FIXED`]), drawn first. Every drawn variation cuts
/// `read-index-before-apply` (over seeds 1..300 in the fixed world: 13
/// failures; 80 % reads 5, 5 % reads 2, stretches 7 to 11; the drawn mix
/// alone 3): a stale read needs both writes and reads of the same keys, so
/// the fixed mix stays common.
pub const FIXED_MIX_PER_MILLE: u32 = 400;

/// The share of reads, in percent, and its weights: the fixed world's 30
/// most often, a read-heavy or a write-heavy world a fifth of the time each.
pub const READ_PERCENTS: [(u32, u32); 5] = [(5, 1), (15, 2), (30, 3), (50, 2), (80, 2)];

/// Each write kind's weight is its weight in the fixed mix times one of
/// these eighths (with their weights): off, a quarter, a half, the same,
/// twice. Puts are never off (the durability check and most reads need
/// them).
pub const KIND_SCALES_EIGHTHS: [(u32, u32); 5] = [(0, 1), (2, 1), (4, 2), (8, 3), (16, 2)];

/// The chance, in per mille, that one write kind (each as likely) is the
/// mix's focus: sixteen times its fixed weight, so any kind, compaction
/// included, is in some seeds a good part of the writes. One focus at
/// most: scaling every kind up at random drowned the puts (under a tenth
/// of the writes in 8 of seeds 1..20).
pub const FOCUS_PER_MILLE: u32 = 500;

/// The chance, in per mille, that the clients run stretches of a single
/// kind (a stretch of 8..=256 operations, by octave, every 16..=1024
/// mixed ones).
pub const STRETCHES_PER_MILLE: u32 = 500;

/// The request mix of `rng`'s seed: the read share, each write kind's
/// weight, and maybe stretches (in this order, from one stream).
fn draw_mix(rng: &mut ChaCha8Rng) -> Mix {
    if rng.random_ratio(FIXED_MIX_PER_MILLE, 1000) {
        return Mix::FIXED;
    }
    let read_percent = weighted(rng, &READ_PERCENTS, 30);
    let mut weights = Mix::FIXED.weights;
    for (weight, kind) in weights.iter_mut().zip(KINDS) {
        let mut eighths = weighted(rng, &KIND_SCALES_EIGHTHS, 8);
        if kind == RequestKind::Put {
            eighths = eighths.max(2);
        }
        *weight *= eighths;
    }
    if rng.random_ratio(FOCUS_PER_MILLE, 1000) {
        let focus = rng.random_range(0..weights.len());
        weights[focus] = Mix::FIXED.weights[focus] * 16 * 8;
    }
    let stretches = rng
        .random_ratio(STRETCHES_PER_MILLE, 1000)
        .then(|| Stretches {
            length: by_octave(rng, 8, 256) as u32,
            gap: by_octave(rng, 16, 1024) as u32,
        });
    Mix {
        read_percent,
        weights,
        stretches,
    }
}

/// One seed's drawn world.
#[derive(Debug, Clone, PartialEq)]
pub struct Swarm {
    /// Members at the start (1..=7, [`NODE_WEIGHTS`]).
    pub nodes: u64,
    /// Fault classes on: only classes that apply to `nodes`
    /// ([`FaultClass::applies_to`]); at least one.
    pub faults: BTreeSet<FaultClass>,
    /// [`FAULT_RATES`].
    pub faults_per_second: f64,
    /// By octave in 5..=10_000 entries.
    pub snapshot_count: u64,
    /// By octave in 1..=10_000 writes.
    pub batch_limit: usize,
    /// By octave in 10..=1000 ms.
    pub batch_interval_ms: u64,
    /// By octave in 4 KiB..=64 MiB, a whole number of KiB.
    pub wal_segment_size: u64,
    /// With `net` on: none a quarter of the time, else by octave in
    /// 1..=50 per mille. Without `net`: none.
    pub packet_loss: f64,
    /// By octave in 1..=40 ms (each message takes 1 ms to this).
    pub max_latency_ms: u64,
    /// By octave in 5..=100 ms between a session's requests.
    pub request_interval_ms: u64,
    /// [`DURATIONS_S`], in ms.
    pub duration_ms: u64,
    /// [`READ_PERCENTS`], [`KIND_SCALES_EIGHTHS`], [`FOCUS_PER_MILLE`],
    /// [`STRETCHES_PER_MILLE`].
    pub mix: Mix,
}

impl Swarm {
    /// The world of `seed`. `nodes` overrides the drawn size (the draw is
    /// still made, so the other dimensions keep their values), and the
    /// fault classes are drawn for the size the run has.
    pub fn draw(seed: u64, nodes: Option<u64>) -> Swarm {
        let nodes = nodes.unwrap_or_else(|| weighted(&mut dim(seed, Dim::Nodes), &NODE_WEIGHTS, 3));
        let faults = draw_faults(&mut dim(seed, Dim::Faults), nodes);
        let settings = draw_settings(seed);
        let mut pace = dim(seed, Dim::RequestInterval);
        let request_interval_ms = by_octave(&mut pace, 5, 100);
        let mut loss = dim(seed, Dim::PacketLoss);
        let net = faults.contains(&FaultClass::Net);
        let lossy = net && !loss.random_ratio(1, 4);
        let mut latency = dim(seed, Dim::Latency);
        let max_latency_ms = by_octave(&mut latency, 1, 40);
        let fixed_network = latency.random_ratio(FIXED_NETWORK_PER_MILLE, 1000);
        Swarm {
            nodes,
            faults,
            faults_per_second: weighted(&mut dim(seed, Dim::FaultRate), &FAULT_RATES, 1.0),
            snapshot_count: settings.snapshot_count,
            batch_limit: settings.batch_limit,
            batch_interval_ms: settings.batch_interval_ms,
            wal_segment_size: settings.wal_segment_size,
            packet_loss: match (fixed_network, lossy) {
                (true, _) if net => 0.01,
                (false, true) => by_octave(&mut loss, 1, 50) as f64 / 1000.0,
                _ => 0.0,
            },
            max_latency_ms: match (fixed_network, net) {
                (true, true) => 15,
                (true, false) => 3,
                (false, _) => max_latency_ms,
            },
            request_interval_ms: if pace.random_ratio(FIXED_PACING_PER_MILLE, 1000) {
                15
            } else {
                request_interval_ms
            },
            duration_ms: weighted(&mut dim(seed, Dim::Duration), &DURATIONS_S, 20) * 1000,
            mix: draw_mix(&mut dim(seed, Dim::Mix)),
        }
    }
}

/// The fault classes of a cluster of `nodes`: half the time all that
/// apply, else each on with probability 1/2; if none came up, one of
/// them.
fn draw_faults(rng: &mut ChaCha8Rng, nodes: u64) -> BTreeSet<FaultClass> {
    let applicable: Vec<FaultClass> = FaultClass::ALL
        .into_iter()
        .filter(|c| c.applies_to(nodes))
        .collect();
    if rng.random_ratio(ALL_CLASSES_PER_MILLE, 1000) {
        return applicable.into_iter().collect();
    }
    let mut on: BTreeSet<FaultClass> = applicable
        .iter()
        .copied()
        .filter(|_| rng.random_bool(0.5))
        .collect();
    if on.is_empty()
        && let Some(&class) = applicable.choose(rng)
    {
        on.insert(class);
    }
    on
}

/// One of `choices`, each as likely as its weight (`fallback` only if the
/// weights are all zero). Draws one number.
fn weighted<T: Copy>(rng: &mut ChaCha8Rng, choices: &[(T, u32)], fallback: T) -> T {
    let total: u32 = choices.iter().map(|(_, w)| w).sum();
    if total == 0 {
        return fallback;
    }
    by_ticket(choices.iter().copied(), rng.random_range(0..total)).unwrap_or(fallback)
}

/// A value in `lo..=hi` (`1 <= lo <= hi`), log-uniform by octave: an
/// octave `[2^k, 2^(k+1))` that meets the range uniformly, then a value
/// uniformly in its part of the range. Draws two numbers.
pub fn by_octave(rng: &mut ChaCha8Rng, lo: u64, hi: u64) -> u64 {
    let lo = lo.max(1);
    let hi = hi.max(lo);
    let (first, last) = (lo.ilog2(), hi.ilog2());
    let k = rng.random_range(first..=last);
    let start = (1u64 << k).max(lo);
    let end = ((1u64 << k) * 2 - 1).min(hi);
    rng.random_range(start..=end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octave_draws_stay_in_range_and_favour_no_size() {
        let mut rng = stream(1, STREAM_SWARM_BASE);
        let draws: Vec<u64> = (0..4000).map(|_| by_octave(&mut rng, 1, 10_000)).collect();
        assert!(draws.iter().all(|v| (1..=10_000).contains(v)));
        // 14 octaves: 1 to 9 covers three and a quarter of them.
        let small = draws.iter().filter(|v| **v < 10).count();
        assert!((800..1100).contains(&small), "{small} of 4000 below 10");
        assert!(draws.contains(&1) && draws.iter().any(|v| *v > 8192));
    }

    #[test]
    fn every_size_is_drawn_and_faults_apply_to_it() {
        let worlds: Vec<Swarm> = (1..=500).map(|s| Swarm::draw(s, None)).collect();
        for n in 1..=7 {
            assert!(worlds.iter().any(|w| w.nodes == n), "no {n}-member world");
        }
        for w in &worlds {
            assert!(!w.faults.is_empty());
            assert!(w.faults.iter().all(|c| c.applies_to(w.nodes)), "{w:?}");
            assert!(w.packet_loss == 0.0 || w.faults.contains(&FaultClass::Net));
        }
        assert_eq!(Swarm::draw(7, None), Swarm::draw(7, None));
    }

    #[test]
    fn the_mix_is_drawn_within_its_bounds() {
        let mixes: Vec<Mix> = (1..=500).map(|s| Swarm::draw(s, None).mix).collect();
        for mix in &mixes {
            assert!(READ_PERCENTS.iter().any(|(p, _)| *p == mix.read_percent));
            assert!(mix.weight(RequestKind::Put) > 0, "{mix}");
            for (kind, (weight, fixed)) in
                KINDS.iter().zip(mix.weights.iter().zip(Mix::FIXED.weights))
            {
                assert!(
                    *weight == 0 || (fixed..=fixed * 128).contains(weight),
                    "{kind:?} {mix}"
                );
            }
            if let Some(s) = mix.stretches {
                assert!((8..=256).contains(&s.length) && (16..=1024).contains(&s.gap));
            }
        }
        // Every kind is in some world heavily over- and in another heavily
        // under-represented (against its share of the fixed mix).
        for kind in KINDS {
            let fixed = Mix::FIXED.write_percent(kind);
            let shares: Vec<u32> = mixes.iter().map(|m| m.write_percent(kind)).collect();
            let heavy = (2 * fixed + 10).min((100 + fixed) / 2);
            assert!(shares.iter().any(|s| *s >= heavy), "{kind:?} never heavy");
            assert!(
                shares.iter().any(|s| *s * 4 <= fixed),
                "{kind:?} never rare"
            );
        }
        let stretched = mixes.iter().filter(|m| m.stretches.is_some()).count();
        assert!(
            (110..190).contains(&stretched),
            "{stretched} of 500 with stretches"
        );
        let fixed = mixes.iter().filter(|m| **m == Mix::FIXED).count();
        assert!(
            (160..240).contains(&fixed),
            "{fixed} of 500 with the fixed mix"
        );
        assert!(
            mixes.iter().any(|m| m.read_percent == 80) && mixes.iter().any(|m| m.read_percent == 5)
        );
    }

    #[test]
    fn a_size_override_keeps_the_other_draws() {
        let drawn = Swarm::draw(11, None);
        let one = Swarm::draw(11, Some(1));
        assert_eq!(one.nodes, 1);
        assert!(!one.faults.contains(&FaultClass::Net));
        assert_eq!(
            (one.snapshot_count, one.batch_limit, one.duration_ms),
            (drawn.snapshot_count, drawn.batch_limit, drawn.duration_ms)
        );
    }
}
