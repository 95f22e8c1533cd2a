//! `sim`: the deterministic simulation harness. It runs the real store
//! (`replica`) in a cluster of madsim nodes under virtual time, injects the
//! faults described in [`fault`], and checks the invariants in [`checker`].

pub mod checker;
pub mod chrome_trace;
pub mod cluster;
pub mod config;
pub mod coverage;
pub mod demo;
pub mod diff;
pub mod explore;
pub mod fault;
pub mod floor;
pub mod guided;
pub mod linearize;
pub mod localize;
pub mod mix;
pub mod panic_guard;
pub mod pin;
pub mod pool;
pub mod report_merge;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod scenario_file;
pub mod shrink;
pub mod snapshot_view;
pub mod stats;
pub mod swarm;
pub mod swarm_table;
pub mod sweep;
pub mod trace;
pub mod workload;
