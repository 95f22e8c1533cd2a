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
use crate::mix::{KINDS, Mix, RequestKind, Stretches};
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
pub const NODE_WEIGHTS: [(u64, u32); 7] =
    [(1, 5), (2, 5), (3, 46), (4, 8), (5, 22), (6, 4), (7, 10)];

/// The chance, in per mille, that every applicable fault class is on (the
/// fixed world's choice); otherwise each is on with probability 1/2, at
/// least one. Half, not a third: the rarest switches need several classes
/// together (a damage class late in the run plus crashes, an EIO plus a
/// power loss), and at a third their failures over seeds 1..150 came
/// 5 in 120 from worlds with every class and 2 in 480 from the others,
/// while the common switches were caught as often with every class as
/// without. The other half keeps swarm testing's omissions (a class that
/// masks another is off).
pub const ALL_CLASSES_PER_MILLE: u32 = 500;

/// Expected faults per second while faults run, and their weights.
pub const FAULT_RATES: [(f64, u32); 5] = [(0.25, 1), (0.5, 2), (1.0, 4), (2.0, 2), (4.0, 1)];

/// Virtual seconds of faults and traffic, and their weights.
pub const DURATIONS_S: [(u64, u32); 3] = [(10, 1), (20, 2), (30, 1)];

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
        let octave = |d: Dim, lo: u64, hi: u64| by_octave(&mut dim(seed, d), lo, hi);
        let mut loss = dim(seed, Dim::PacketLoss);
        let lossy = faults.contains(&FaultClass::Net) && !loss.random_ratio(1, 4);
        Swarm {
            nodes,
            faults,
            faults_per_second: weighted(&mut dim(seed, Dim::FaultRate), &FAULT_RATES, 1.0),
            snapshot_count: octave(Dim::SnapshotCount, 5, 10_000),
            batch_limit: octave(Dim::BatchLimit, 1, 10_000) as usize,
            batch_interval_ms: octave(Dim::BatchInterval, 10, 1000),
            wal_segment_size: octave(Dim::SegmentSize, 4, 64 * 1024) * 1024,
            packet_loss: if lossy {
                by_octave(&mut loss, 1, 50) as f64 / 1000.0
            } else {
                0.0
            },
            max_latency_ms: octave(Dim::Latency, 1, 40),
            request_interval_ms: octave(Dim::RequestInterval, 5, 100),
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
    let mut ticket = rng.random_range(0..total);
    for &(value, weight) in choices {
        if ticket < weight {
            return value;
        }
        ticket -= weight;
    }
    fallback
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
            (200..300).contains(&stretched),
            "{stretched} of 500 with stretches"
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
