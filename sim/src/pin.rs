//! A random run's world with the command line on top ([`RunConfig::random`],
//! [`Overrides`]), and `--pin DIM=VALUE`: one dimension of a random run's world set from the
//! command line (the others stay drawn, or fixed with `--swarm off`), so a
//! measurement can ask what a single dimension does to a switch's failure
//! rate. `VALUE` `fixed` is the fixed world's value (`--swarm off`). The
//! reproduce command names every dimension that differs from the seed's
//! draw this way (`RunConfig::reproduce_command`).

use crate::config::{NetworkModel, RunConfig};
use crate::fault::FaultClass;
use crate::mix::Mix;
use crate::swarm::Swarm;
use std::collections::BTreeSet;
use std::str::FromStr;

/// What the command line sets explicitly in a random run; the rest is drawn
/// (swarm on) or fixed (swarm off).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub nodes: Option<u64>,
    pub duration_ms: Option<u64>,
    pub faults: Option<BTreeSet<FaultClass>>,
    /// `--pin DIM=VALUE`, applied after the three above.
    pub pins: Vec<Pin>,
}

impl Overrides {
    /// The cluster size set by `--nodes` or a pin (which the fault classes
    /// are drawn for).
    fn nodes(&self) -> Option<u64> {
        self.pins
            .iter()
            .rev()
            .find_map(|p| match p {
                Pin::Nodes(n) => Some(n.unwrap_or(3)),
                _ => None,
            })
            .or(self.nodes)
    }
}

impl RunConfig {
    /// A random run: its world drawn by the swarm (`swarm`) or the fixed
    /// one, with the command line's explicit settings on top.
    pub fn random(seed: u64, swarm: bool, set: &Overrides) -> RunConfig {
        let mut cfg = if swarm {
            RunConfig::drawn(seed, Swarm::draw(seed, set.nodes()))
        } else {
            RunConfig::fixed(seed)
        };
        cfg.nodes = set.nodes().unwrap_or(cfg.nodes);
        cfg.duration_ms = set.duration_ms.unwrap_or(cfg.duration_ms);
        if let Some(faults) = &set.faults {
            cfg.faults = faults.clone();
        }
        apply_all(&set.pins, &mut cfg);
        cfg
    }

    /// The `--pin` arguments that make `base` (the seed's draw, or its
    /// fixed world) into this run, for the dimensions that have no flag of
    /// their own.
    pub(crate) fn pin_args(&self, base: &RunConfig) -> String {
        differing(self, base)
    }
}

/// The dimensions `--pin` takes, with the unit of their value.
pub const DIMENSIONS: [(&str, &str); 14] = [
    ("nodes", "members, 1 to 7"),
    ("faults", "fault classes, comma separated, or none"),
    ("fault_rate", "faults per second"),
    ("duration", "virtual seconds, or ms with an `ms` suffix"),
    ("snapshot_count", "entries"),
    ("batch_limit", "writes"),
    ("batch_interval", "ms"),
    ("wal_segment", "KiB"),
    ("packet_loss", "per mille, 0 to 500"),
    ("latency", "the largest message latency, ms, 1 to 1000"),
    ("request_interval", "ms between a session's requests"),
    (
        "mix",
        "the request mix: `fixed` or `reads:30,put:45,…,stretch:L/G`",
    ),
    ("network", "`fixed` only: packet_loss and latency"),
    ("settings", "`fixed` only: the four store settings"),
];

/// One pinned dimension; `None` values are the fixed world's.
#[derive(Debug, Clone, PartialEq)]
pub enum Pin {
    Nodes(Option<u64>),
    Faults(Option<BTreeSet<FaultClass>>),
    FaultRate(Option<f64>),
    DurationMs(Option<u64>),
    SnapshotCount(Option<u64>),
    BatchLimit(Option<u64>),
    BatchIntervalMs(Option<u64>),
    WalSegmentKib(Option<u64>),
    PacketLossPerMille(Option<f64>),
    LatencyMs(Option<u64>),
    RequestIntervalMs(Option<u64>),
    Mix(Mix),
    Network,
    Settings,
}

impl FromStr for Pin {
    type Err = String;

    fn from_str(arg: &str) -> Result<Pin, String> {
        let (name, value) = arg
            .split_once('=')
            .ok_or_else(|| format!("`{arg}`: expected DIMENSION=VALUE"))?;
        let fixed = value.trim() == "fixed";
        let int = |lo: u64, hi: u64| number_in(name, value, lo, hi);
        let float = |lo: f64, hi: f64| number_in(name, value, lo, hi);
        Ok(match name.trim() {
            "nodes" => Pin::Nodes(int(1, 7)?),
            "faults" if fixed => Pin::Faults(None),
            "faults" => Pin::Faults(Some(parse_faults(value)?)),
            "fault_rate" => Pin::FaultRate(float(0.0, 100.0)?),
            "duration" => Pin::DurationMs(match value.trim().strip_suffix("ms") {
                Some(ms) => Some(
                    ms.parse()
                        .map_err(|_| format!("{name}={value}: not a duration"))?,
                ),
                None => int(1, 3600)?.map(|s| s * 1000),
            }),
            "snapshot_count" => Pin::SnapshotCount(int(1, 1 << 40)?),
            "batch_limit" => Pin::BatchLimit(int(1, 1 << 40)?),
            "batch_interval" => Pin::BatchIntervalMs(int(1, 3_600_000)?),
            "wal_segment" => Pin::WalSegmentKib(int(1, 1 << 30)?),
            "packet_loss" => Pin::PacketLossPerMille(float(0.0, 500.0)?),
            "latency" => Pin::LatencyMs(int(1, 1000)?),
            "request_interval" => Pin::RequestIntervalMs(int(1, 1000)?),
            "mix" => Pin::Mix(value.parse()?),
            "network" if fixed => Pin::Network,
            "settings" if fixed => Pin::Settings,
            "network" | "settings" => return Err(format!("{name}={value}: only `fixed`")),
            other => {
                let names: Vec<&str> = DIMENSIONS.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "unknown dimension `{other}`: expected one of {}",
                    names.join(", ")
                ));
            }
        })
    }
}

/// Pin `name`'s `value` as a number in `lo..=hi`, or `None` for `fixed`.
fn number_in<T>(name: &str, value: &str, lo: T, hi: T) -> Result<Option<T>, String>
where
    T: FromStr + PartialOrd + Copy + std::fmt::Display,
{
    if value.trim() == "fixed" {
        return Ok(None);
    }
    match value.trim().parse::<T>() {
        Ok(v) if (lo..=hi).contains(&v) => Ok(Some(v)),
        _ => Err(format!("{name}={value}: expected {lo} to {hi}, or fixed")),
    }
}

/// Fault classes as `--faults` takes them (`none`: no class).
pub fn parse_faults(value: &str) -> Result<BTreeSet<FaultClass>, String> {
    if value.trim() == "none" {
        return Ok(BTreeSet::new());
    }
    value.split(',').map(|c| c.trim().parse()).collect()
}

impl Pin {
    /// Sets this dimension of `cfg`; `fixed` is the fixed world of the
    /// same seed. The network's fixed values follow `cfg`'s fault classes,
    /// so pin the classes first ([`apply_all`]).
    fn apply(&self, cfg: &mut RunConfig, fixed: &RunConfig) {
        let derived = if cfg.has(FaultClass::Net) {
            NetworkModel::LOSSY
        } else {
            NetworkModel::CLEAN
        };
        let mut net = cfg.network();
        match self {
            Pin::Nodes(n) => cfg.nodes = n.unwrap_or(fixed.nodes),
            Pin::Faults(f) => cfg.faults = f.clone().unwrap_or_else(|| fixed.faults.clone()),
            Pin::FaultRate(r) => cfg.faults_per_second = r.unwrap_or(fixed.faults_per_second),
            Pin::DurationMs(d) => cfg.duration_ms = d.unwrap_or(fixed.duration_ms),
            Pin::SnapshotCount(v) => cfg.snapshot_count = v.unwrap_or(fixed.snapshot_count),
            Pin::BatchLimit(v) => {
                cfg.batch_limit = v.map_or(fixed.batch_limit, |v| v as usize);
            }
            Pin::BatchIntervalMs(v) => {
                cfg.batch_interval_ms = v.unwrap_or(fixed.batch_interval_ms);
            }
            Pin::WalSegmentKib(v) => {
                cfg.wal_segment_size = v.map_or(fixed.wal_segment_size, |k| k * 1024);
            }
            Pin::PacketLossPerMille(p) => {
                net.packet_loss = p.map_or(derived.packet_loss, |p| p / 1000.0);
            }
            Pin::LatencyMs(l) => net.max_latency_ms = l.unwrap_or(derived.max_latency_ms),
            Pin::RequestIntervalMs(v) => {
                cfg.request_interval_ms = v.unwrap_or(fixed.request_interval_ms);
            }
            Pin::Mix(m) => cfg.mix = *m,
            Pin::Network => net = derived,
            Pin::Settings => {
                cfg.snapshot_count = fixed.snapshot_count;
                cfg.batch_limit = fixed.batch_limit;
                cfg.batch_interval_ms = fixed.batch_interval_ms;
                cfg.wal_segment_size = fixed.wal_segment_size;
            }
        }
        if net != cfg.network() {
            cfg.network = Some(net);
        }
    }
}

/// Applies `pins` to `cfg`: the fault classes first (the fixed network
/// follows them), then the rest in order.
pub fn apply_all(pins: &[Pin], cfg: &mut RunConfig) {
    let fixed = RunConfig::fixed(cfg.seed);
    let (classes, rest): (Vec<&Pin>, Vec<&Pin>) =
        pins.iter().partition(|p| matches!(p, Pin::Faults(_)));
    for pin in classes.into_iter().chain(rest) {
        pin.apply(cfg, &fixed);
    }
}

fn differing(cfg: &RunConfig, base: &RunConfig) -> String {
    let mut args = String::new();
    let mut pin = |name: &str, value: String| args += &format!(" --pin {name}={value}");
    if cfg.faults_per_second != base.faults_per_second {
        pin("fault_rate", cfg.faults_per_second.to_string());
    }
    let settings = [
        ("snapshot_count", cfg.snapshot_count, base.snapshot_count),
        (
            "batch_limit",
            cfg.batch_limit as u64,
            base.batch_limit as u64,
        ),
        (
            "batch_interval",
            cfg.batch_interval_ms,
            base.batch_interval_ms,
        ),
        (
            "wal_segment",
            cfg.wal_segment_size / 1024,
            base.wal_segment_size / 1024,
        ),
    ];
    for (name, mine, theirs) in settings {
        if mine != theirs {
            pin(name, mine.to_string());
        }
    }
    let (net, base_net) = (cfg.network(), base.network());
    if net.packet_loss != base_net.packet_loss {
        let per_mille = net.packet_loss * 1000.0;
        let rounded = per_mille.round();
        let exact = rounded / 1000.0 == net.packet_loss;
        pin(
            "packet_loss",
            if exact { rounded } else { per_mille }.to_string(),
        );
    }
    if net.max_latency_ms != base_net.max_latency_ms {
        pin("latency", net.max_latency_ms.to_string());
    }
    if cfg.request_interval_ms != base.request_interval_ms {
        pin("request_interval", cfg.request_interval_ms.to_string());
    }
    if cfg.mix != base.mix {
        pin("mix", cfg.mix.to_string());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pins(args: &[&str]) -> Vec<Pin> {
        args.iter().map(|a| a.parse().expect(a)).collect()
    }

    #[test]
    fn pins_parse_and_refuse_what_is_out_of_range() {
        assert_eq!("latency=12".parse(), Ok(Pin::LatencyMs(Some(12))));
        assert_eq!("latency=fixed".parse(), Ok(Pin::LatencyMs(None)));
        assert_eq!("duration=500ms".parse(), Ok(Pin::DurationMs(Some(500))));
        assert_eq!("duration=20".parse(), Ok(Pin::DurationMs(Some(20_000))));
        assert_eq!("mix=fixed".parse(), Ok(Pin::Mix(Mix::FIXED)));
        assert!("latency=0".parse::<Pin>().is_err());
        assert!("nodes=8".parse::<Pin>().is_err());
        assert!("network=3".parse::<Pin>().is_err());
        assert!("colour=red".parse::<Pin>().is_err());
        assert!("latency".parse::<Pin>().is_err());
    }

    #[test]
    fn a_pinned_dimension_is_set_and_the_others_keep_their_draw() {
        let set = Overrides {
            pins: pins(&["batch_limit=3", "network=fixed", "mix=fixed"]),
            ..Overrides::default()
        };
        let drawn = RunConfig::random(9, true, &Overrides::default());
        let pinned = RunConfig::random(9, true, &set);
        assert_eq!(pinned.batch_limit, 3);
        assert_eq!(pinned.mix, Mix::FIXED);
        let fixed_net = RunConfig {
            network: None,
            ..pinned.clone()
        };
        assert_eq!(pinned.network(), fixed_net.network());
        assert_eq!(
            (pinned.snapshot_count, pinned.duration_ms, &pinned.faults),
            (drawn.snapshot_count, drawn.duration_ms, &drawn.faults)
        );
    }

    #[test]
    fn the_reproduce_command_carries_the_pins_and_they_give_the_same_world() {
        let set = Overrides {
            pins: pins(&[
                "packet_loss=7",
                "latency=33",
                "mix=reads:80,compact:90",
                "settings=fixed",
            ]),
            ..Overrides::default()
        };
        for swarm in [true, false] {
            let pinned = RunConfig::random(4, swarm, &set);
            let command = pinned.reproduce_command();
            assert!(command.contains("--pin latency=33"), "{command}");
            assert!(command.contains("--pin packet_loss=7"), "{command}");
            assert!(command.contains("--pin mix=reads:80,"), "{command}");
            // Parse the pins back from the command: the same world.
            let again: Vec<Pin> = command
                .split(" --pin ")
                .skip(1)
                .map(|a| a.split(' ').next().unwrap_or(a).parse().expect(a))
                .collect();
            let again = RunConfig::random(
                4,
                swarm,
                &Overrides {
                    pins: again,
                    ..Overrides::default()
                },
            );
            assert_eq!(again.world_line(), pinned.world_line());
            assert_eq!(again.reproduce_command(), command);
        }
        let plain = RunConfig::random(4, true, &Overrides::default());
        assert!(!plain.reproduce_command().contains("--pin"));
    }
}
