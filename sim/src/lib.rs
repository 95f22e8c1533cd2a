//! `sim`: the deterministic simulation harness. It runs the real store
//! (`replica`) in a cluster of madsim nodes under virtual time, injects the
//! faults described in [`fault`], and checks the invariants in [`checker`].

pub mod checker;
pub mod chrome_trace;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod diff;
pub mod explore;
pub mod fault;
pub mod linearize;
pub mod panic_guard;
pub mod pool;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod scenario_file;
pub mod shrink;
pub mod snapshot_view;
pub mod stats;
pub mod sweep;
pub mod trace;
pub mod workload;
