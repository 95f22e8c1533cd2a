//! A sweep's memory must not grow with its runs: what it keeps after a run
//! is counters and, for a failed run, one line; never the run's report or
//! anything the run's simulation allocated. The heap is counted by a global
//! allocator, so this test sits alone in its own binary.

use sim::config::RunConfig;
use sim::sweep::{Plan, run_sweep};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call goes to `System` unchanged; the counter is a side
// effect that never touches the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// `count` short random runs (every fault class, one simulated second).
fn short_runs(first_seed: u64, count: u64) -> Plan {
    let mut plan = Plan::default();
    plan.random(
        first_seed..first_seed + count,
        Arc::new(|seed| RunConfig {
            duration_ms: 1_000,
            ..RunConfig::new(seed)
        }),
    );
    plan
}

/// Heap bytes still allocated after sweeping `plan`, while the sweep's
/// result is alive.
fn retained_by_sweep(plan: &Plan) -> isize {
    let before = LIVE.load(Ordering::SeqCst);
    let (result, written) = run_sweep(plan, 2, None, &mut std::io::sink(), &|o| {
        assert!(o.report.passed(), "{}", o.report.failure_report());
    });
    written.unwrap();
    let retained = LIVE.load(Ordering::SeqCst) - before;
    assert_eq!(result.runs, plan.len());
    drop(result);
    retained
}

#[test]
fn a_sweep_keeps_nothing_per_passing_run() {
    // The first sweep pays for what is set up once per process.
    retained_by_sweep(&short_runs(1, 2));
    let few = retained_by_sweep(&short_runs(100, 4));
    let many = retained_by_sweep(&short_runs(200, 44));
    let per_run = (many - few) / 40;
    eprintln!("retained: {few} bytes after 4 runs, {many} after 44: {per_run} per run");
    // A kept `RunReport` costs over a kilobyte, a leaked simulation
    // megabytes; counters cost nothing per run. The slack is for what the
    // workers' thread-locals may still hold when the sweep returns.
    assert!(
        per_run < 128,
        "the sweep keeps {per_run} bytes per passing run ({few} after 4 runs, {many} after 44)"
    );
}
