//! Power loss in the middle of a redb commit: stop the disk at its k-th
//! operation for every k of one commit, then lose power in several ways, and
//! check that the reopened backend holds exactly the previous commit or the
//! new one (data and consistent index together).

use super::tests::{DB, image, open, write_a_then_buffer_b};
use super::*;
use crate::crash_point::NoCrash;
use crate::disk::{FaultyDisk, MemDisk, PendingOp, PowerLossPlan, Survival};

/// Which unsynced operations survive the power loss.
#[derive(Debug, Clone, Copy)]
enum Plan {
    /// Keep the first `n` pending operations, tear the next one at half
    /// (when `tear`), lose the rest.
    Prefix { n: usize, tear: bool },
    /// Keep the operations whose index has the given parity: a disk that
    /// reordered writes before the sync.
    Parity(usize),
    /// Keep all but the first (redb's header write).
    AllButFirst,
}

impl PowerLossPlan for Plan {
    fn file_op(&mut self, _: &Path, i: usize, op: &PendingOp) -> Survival {
        match *self {
            Plan::Prefix { n, tear } => {
                if i < n {
                    Survival::Kept
                } else if i == n && tear {
                    match op {
                        PendingOp::Write { data, .. } => Survival::Torn {
                            keep_bytes: data.len() / 2,
                        },
                        PendingOp::SetLen(_) => Survival::Lost,
                    }
                } else {
                    Survival::Lost
                }
            }
            Plan::Parity(p) => {
                if i % 2 == p {
                    Survival::Kept
                } else {
                    Survival::Lost
                }
            }
            Plan::AllButFirst => {
                if i == 0 {
                    Survival::Lost
                } else {
                    Survival::Kept
                }
            }
        }
    }
    fn name_change(&mut self, _: &Path) -> bool {
        true
    }
}

fn plans(pending: usize) -> Vec<Plan> {
    let mut plans = vec![Plan::Parity(0), Plan::Parity(1), Plan::AllButFirst];
    for n in 0..=pending {
        plans.push(Plan::Prefix { n, tear: false });
        plans.push(Plan::Prefix { n, tear: true });
    }
    plans
}

#[test]
fn power_loss_at_every_disk_operation_of_a_commit_yields_old_or_new_state() {
    // The two states a crash may legitimately leave: A (committed, entry 3
    // only buffered) and B (entry 3 committed).
    let a = {
        let disk = Arc::new(MemDisk::new());
        let mut be = open(disk.clone(), BackendOptions::default());
        write_a_then_buffer_b(&mut be);
        drop(be);
        disk.crash_power_loss();
        image(&open(disk, BackendOptions::default()))
    };
    let b = {
        let mut be = open(Arc::new(MemDisk::new()), BackendOptions::default());
        write_a_then_buffer_b(&mut be);
        be.force_commit().unwrap();
        image(&be)
    };
    assert_eq!(a.1.consistent_index.index, 2);
    assert_eq!(b.1.consistent_index.index, 3);

    let mut saw_old = false;
    let mut saw_new = false;
    let mut k = 0u64;
    loop {
        let mem = Arc::new(MemDisk::new());
        let disk = Arc::new(FaultyDisk::new(mem.clone()));
        let mut be = Backend::open(
            disk.clone(),
            Path::new(DB),
            BackendOptions::default(),
            Arc::new(NoCrash),
        )
        .unwrap();
        write_a_then_buffer_b(&mut be);
        // The member stops at the k-th operation of the commit: that one
        // fails and so does everything after it, reads included.
        let before = disk.mutations();
        disk.freeze_at(k);
        let result = be.force_commit();
        let ops = disk.mutations() - before;
        if result.is_ok() {
            assert!(k >= ops, "commit succeeded although op {k} failed");
            assert!(k > 0, "a commit performs disk operations");
            break;
        }
        assert!(matches!(
            be.get(Table::Key, b"key000"),
            Err(BackendError::Poisoned { .. })
        ));
        drop(be);
        let pending = mem.pending_ops(Path::new(DB)).unwrap().len();
        eprintln!("k={k} ops={ops} pending={pending}");
        for plan in plans(pending) {
            let crashed = Arc::new(mem.fork());
            crashed.crash_power_loss_with(&mut plan.clone());
            let be = Backend::open(
                crashed,
                Path::new(DB),
                BackendOptions::default(),
                Arc::new(NoCrash),
            )
            .unwrap_or_else(|e| panic!("k={k} {plan:?}: reopen failed: {e}"));
            let got = image(&be);
            if got == a {
                saw_old = true;
            } else if got == b {
                saw_new = true;
            } else {
                panic!(
                    "k={k} {plan:?}: state is neither the previous nor the new commit \
                     (meta {:?})",
                    got.1
                );
            }
        }
        k += 1;
        assert!(k < 10_000, "commit never finished");
    }
    assert!(saw_old, "some crash must lose the commit");
    assert!(saw_new, "a crash after the sync must keep the commit");
}
