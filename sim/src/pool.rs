//! A worker pool (layer 0: it knows nothing of runs): jobs `0..count` on a
//! fixed number of OS threads, an optional wall-clock deadline after which
//! no job starts, and a callback as each job finishes.
//!
//! The threads are plain scoped threads created by the caller's thread,
//! outside any simulation (madsim panics if a thread is spawned inside
//! one); each job builds whatever runtime it needs on its worker, so a
//! job's result does not depend on the number of threads or the deadline.
//! Jobs are indexes, so a caller with many jobs need not hold a list of
//! them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Runs `work(index)` for every index of `0..count` on `threads` workers
/// (at least one), calling `done(index, result)` on the worker as each
/// finishes, in the order they finish. Jobs start in order and none starts
/// after `deadline`, so the jobs that ran are always a prefix of `0..count`:
/// returns its length. Nothing is kept here once `done` returns.
pub fn run_pool<R>(
    count: usize,
    threads: usize,
    deadline: Option<Instant>,
    work: impl Fn(usize) -> R + Sync,
    done: impl Fn(usize, R) + Sync,
) -> usize {
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return;
                    }
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= count {
                        return;
                    }
                    done(index, work(index));
                }
            });
        }
    });
    // Every index below `next` was claimed before the deadline, and each
    // claimed job ran to its end (a panic would have propagated above).
    next.into_inner().min(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn every_job_runs_once_whatever_the_thread_count() {
        for threads in [0, 1, 2, 7] {
            let seen = Mutex::new(vec![0u32; 50]);
            let ran = run_pool(
                50,
                threads,
                None,
                |index| index * 2,
                |index, result| {
                    assert_eq!(result, index * 2);
                    seen.lock().unwrap()[index] += 1;
                },
            );
            assert_eq!(ran, 50);
            assert!(seen.into_inner().unwrap().iter().all(|n| *n == 1));
        }
    }

    #[test]
    fn a_passed_deadline_starts_nothing() {
        let ran = run_pool(3, 2, Some(Instant::now()), |_| unreachable!(), |_, ()| {});
        assert_eq!(ran, 0);
    }
}
