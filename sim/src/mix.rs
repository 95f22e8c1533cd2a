//! The random workload's request mix: the share of reads, the weight of
//! each write kind, and whether the clients run long stretches of a single
//! kind (a burst of puts, a compaction storm, a read-only stretch). The
//! swarm draws a mix per seed (`swarm.rs`); [`Mix::FIXED`] is the one mix
//! of the fixed world (`--swarm off`) and of every scenario.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::fmt;
use std::str::FromStr;

/// The kinds of write request the random workload issues, in the order
/// of [`Mix::weights`] (and of the fixed mix's percentages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RequestKind {
    Put,
    DeleteRange,
    Txn,
    Compact,
    V2Set,
    /// A v2 set of `/0/version` (a membership key).
    V2Version,
    /// A v2 set of a member's attributes key.
    V2MemberAttributes,
    V2DeleteDir,
    ClusterVersionSet,
    MemberAttrSet,
    DowngradeInfoSet,
}

/// Every write kind, in [`Mix::weights`] order.
pub const KINDS: [RequestKind; 11] = [
    RequestKind::Put,
    RequestKind::DeleteRange,
    RequestKind::Txn,
    RequestKind::Compact,
    RequestKind::V2Set,
    RequestKind::V2Version,
    RequestKind::V2MemberAttributes,
    RequestKind::V2DeleteDir,
    RequestKind::ClusterVersionSet,
    RequestKind::MemberAttrSet,
    RequestKind::DowngradeInfoSet,
];

impl RequestKind {
    /// The kind's name in a mix's text form.
    pub fn name(self) -> &'static str {
        match self {
            RequestKind::Put => "put",
            RequestKind::DeleteRange => "delete",
            RequestKind::Txn => "txn",
            RequestKind::Compact => "compact",
            RequestKind::V2Set => "v2set",
            RequestKind::V2Version => "v2version",
            RequestKind::V2MemberAttributes => "v2attr",
            RequestKind::V2DeleteDir => "v2rmdir",
            RequestKind::ClusterVersionSet => "version",
            RequestKind::MemberAttrSet => "attr",
            RequestKind::DowngradeInfoSet => "downgrade",
        }
    }

    fn index(self) -> usize {
        KINDS.iter().position(|k| *k == self).unwrap_or(0)
    }
}

/// Stretches of a single kind: after about `gap` mixed operations, about
/// `length` operations of one kind (reads, or one write kind), drawn when
/// the stretch starts (from [`Phases`]'s own stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stretches {
    pub length: u32,
    pub gap: u32,
}

/// The request mix of the random workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    /// Percent of operations that are reads (0..=100).
    pub read_percent: u32,
    /// The relative weight of each write kind, in [`KINDS`] order; a kind
    /// of weight 0 is never issued (outside a stretch of it). At least one
    /// weight is positive.
    pub weights: [u32; 11],
    /// Long stretches of a single kind (`None`: every operation from the
    /// mix).
    pub stretches: Option<Stretches>,
}

impl Mix {
    /// The fixed world's mix (the one mix before the swarm drew it): 30 %
    /// reads; writes 45 % puts, 8 % delete ranges, 10 % txns, 2 %
    /// compactions, 8 % v2 sets, 2 + 2 % v2 membership keys, 4 % v2
    /// directory deletes, 6 % cluster-version, 7 % member-attribute and
    /// 6 % downgrade requests (weights summing to 100, so a kind is one
    /// draw in `0..100` as before); no stretches.
    pub const FIXED: Mix = Mix {
        read_percent: 30,
        weights: [45, 8, 10, 2, 8, 2, 2, 4, 6, 7, 6],
        stretches: None,
    };

    /// The weight of `kind`.
    pub fn weight(&self, kind: RequestKind) -> u32 {
        self.weights[kind.index()]
    }

    /// `kind`'s share of the writes, in percent (rounded).
    pub fn write_percent(&self, kind: RequestKind) -> u32 {
        let total: u32 = self.weights.iter().sum();
        (self.weight(kind) * 100 + total / 2)
            .checked_div(total)
            .unwrap_or(0)
    }

    /// The write kind a ticket in `0..sum of weights` picks (cumulative
    /// weights in [`KINDS`] order).
    pub fn kind_of_ticket(&self, ticket: u32) -> RequestKind {
        by_ticket(KINDS.into_iter().zip(self.weights), ticket).unwrap_or(RequestKind::Put)
    }
}

/// The choice a ticket in `0..sum of weights` picks, walking the
/// cumulative weights in order (`None` past their sum); the swarm's
/// weighted draws take the same walk.
pub fn by_ticket<T>(choices: impl IntoIterator<Item = (T, u32)>, mut ticket: u32) -> Option<T> {
    for (choice, weight) in choices {
        if ticket < weight {
            return Some(choice);
        }
        ticket -= weight;
    }
    None
}

impl Default for Mix {
    fn default() -> Mix {
        Mix::FIXED
    }
}

/// The text form `reads:30,put:45,delete:8,…,stretch:64/256` (the weights
/// in [`KINDS`] order, `stretch:LENGTH/GAP` only with stretches), which
/// [`Mix::from_str`] reads back (`--pin mix=…`, a recorded run's
/// `[random].mix`); `fixed` is [`Mix::FIXED`].
impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "reads:{}", self.read_percent)?;
        for (kind, weight) in KINDS.iter().zip(self.weights) {
            write!(f, ",{}:{weight}", kind.name())?;
        }
        if let Some(s) = self.stretches {
            write!(f, ",stretch:{}/{}", s.length, s.gap)?;
        }
        Ok(())
    }
}

impl FromStr for Mix {
    type Err = String;

    /// `fixed`, or `name:value` pairs (comma separated) over
    /// [`Mix::FIXED`]: `reads:PERCENT`, a kind's weight, `stretch:L/G`.
    fn from_str(text: &str) -> Result<Mix, String> {
        let mut mix = Mix::FIXED;
        if text.trim() == "fixed" {
            return Ok(mix);
        }
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = pair
                .split_once(':')
                .ok_or_else(|| format!("mix: `{pair}` is not name:value"))?;
            let number = |v: &str| {
                v.parse::<u32>()
                    .map_err(|_| format!("mix: `{pair}`: {v} is not a whole number"))
            };
            match name {
                "reads" if number(value)? <= 100 => mix.read_percent = number(value)?,
                "reads" => return Err(format!("mix: `{pair}`: reads is a percent, 0 to 100")),
                "stretch" => {
                    let (length, gap) = value
                        .split_once('/')
                        .ok_or_else(|| format!("mix: `{pair}`: expected stretch:LENGTH/GAP"))?;
                    let (length, gap) = (number(length)?, number(gap)?);
                    if length == 0 || gap == 0 {
                        return Err(format!("mix: `{pair}`: length and gap are at least 1"));
                    }
                    mix.stretches = Some(Stretches { length, gap });
                }
                "stretch-off" => mix.stretches = None,
                _ => {
                    let kind = KINDS.iter().find(|k| k.name() == name).ok_or_else(|| {
                        let names: Vec<&str> = KINDS.iter().map(|k| k.name()).collect();
                        format!(
                            "mix: unknown `{name}`: expected reads, stretch or one of {}",
                            names.join(", ")
                        )
                    })?;
                    mix.weights[kind.index()] = number(value)?;
                }
            }
        }
        if mix.weights.iter().all(|w| *w == 0) {
            return Err("mix: every write kind has weight 0".into());
        }
        Ok(mix)
    }
}

/// What the next client operation is, as the stretches say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Drawn from the mix (read share, then write kind by weight).
    Mixed,
    /// A read (a read-only stretch).
    Read,
    /// A write of this kind (a stretch of it).
    Write(RequestKind),
}

/// The run-time side of [`Stretches`]: counts the clients' operations and
/// draws each stretch's kind and both lengths from its own stream (so the
/// mix's own draws, from the workload's and the reads' streams, keep
/// their order). Without stretches it draws nothing.
#[derive(Debug)]
pub struct Phases {
    rng: ChaCha8Rng,
    stretches: Option<Stretches>,
    /// The write kinds the mix issues (a stretch's kind is one of them, or
    /// reads).
    issued: Vec<RequestKind>,
    /// Operations left in the current segment, and what it is.
    left: u32,
    current: Next,
}

impl Phases {
    pub fn new(rng: ChaCha8Rng, mix: &Mix) -> Phases {
        let mut phases = Phases {
            rng,
            stretches: mix.stretches,
            issued: KINDS.into_iter().filter(|k| mix.weight(*k) > 0).collect(),
            left: 0,
            current: Next::Mixed,
        };
        if let Some(s) = mix.stretches {
            phases.left = phases.around(s.gap);
        }
        phases
    }

    /// Draws from `rng` from now on (a fork of the run, `sim localize`).
    pub fn reseed(&mut self, rng: ChaCha8Rng) {
        self.rng = rng;
    }

    /// A length between half and one and a half times `n`.
    fn around(&mut self, n: u32) -> u32 {
        self.rng.random_range(n.div_ceil(2)..=n + n / 2).max(1)
    }

    /// What the next operation is. A stretch is reads a quarter of the
    /// time, else of a write kind the mix issues (each as likely: a kind
    /// of small weight gets its storms too).
    pub fn next_op(&mut self) -> Next {
        let Some(s) = self.stretches else {
            return Next::Mixed;
        };
        if self.left == 0 {
            (self.current, self.left) = match self.current {
                Next::Mixed => (self.stretch_kind(), self.around(s.length)),
                _ => (Next::Mixed, self.around(s.gap)),
            };
        }
        self.left -= 1;
        self.current
    }

    fn stretch_kind(&mut self) -> Next {
        if self.issued.is_empty() || self.rng.random_ratio(1, 4) {
            return Next::Read;
        }
        Next::Write(self.issued[self.rng.random_range(0..self.issued.len())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    #[test]
    fn the_text_form_reads_back() {
        let mut mix = Mix::FIXED;
        mix.weights[3] = 40;
        mix.read_percent = 80;
        mix.stretches = Some(Stretches {
            length: 64,
            gap: 200,
        });
        assert_eq!(mix.to_string().parse::<Mix>(), Ok(mix));
        assert_eq!("fixed".parse::<Mix>(), Ok(Mix::FIXED));
        assert_eq!(Mix::FIXED.to_string().parse::<Mix>(), Ok(Mix::FIXED));
        assert!("reads:101".parse::<Mix>().is_err());
        assert!("bogus:1".parse::<Mix>().is_err());
        let all_off: Vec<String> = KINDS.iter().map(|k| format!("{}:0", k.name())).collect();
        assert!(all_off.join(",").parse::<Mix>().is_err());
    }

    #[test]
    fn the_fixed_mix_is_the_old_percentages() {
        assert_eq!(Mix::FIXED.weights.iter().sum::<u32>(), 100);
        // The old match arms: 0..=44 put, 45..=52 delete, 53..=62 txn,
        // 63..=64 compact, …, 94..=99 downgrade.
        let at = |t| Mix::FIXED.kind_of_ticket(t);
        assert_eq!(
            (at(44), at(45), at(52)),
            (
                RequestKind::Put,
                RequestKind::DeleteRange,
                RequestKind::DeleteRange
            )
        );
        assert_eq!(
            (at(53), at(63), at(64)),
            (RequestKind::Txn, RequestKind::Compact, RequestKind::Compact)
        );
        assert_eq!(
            (at(93), at(94), at(99)),
            (
                RequestKind::MemberAttrSet,
                RequestKind::DowngradeInfoSet,
                RequestKind::DowngradeInfoSet
            )
        );
    }

    #[test]
    fn stretches_alternate_with_mixed_operations() {
        let mut mix = Mix::FIXED;
        mix.stretches = Some(Stretches {
            length: 20,
            gap: 10,
        });
        let mut phases = Phases::new(stream(3, 45), &mix);
        let ops: Vec<Next> = (0..2000).map(|_| phases.next_op()).collect();
        let mixed = ops.iter().filter(|n| **n == Next::Mixed).count();
        assert!((400..1000).contains(&mixed), "{mixed} mixed of 2000");
        assert!(ops.contains(&Next::Read));
        assert!(ops.contains(&Next::Write(RequestKind::Compact)));
        // A stretch is one kind throughout.
        let runs = ops.chunk_by(|a, b| a == b).filter(|r| r[0] != Next::Mixed);
        assert!(runs.clone().all(|r| (1..=60).contains(&r.len())));
        let mut none = Phases::new(stream(3, 45), &Mix::FIXED);
        assert!((0..100).all(|_| none.next_op() == Next::Mixed));
    }
}
