//! The leader lease of the `lease-read-timed-by-ticks` known bug: a leader
//! answers linearizable reads from its own state while a lease holds,
//! without asking a quorum. The lease is renewed by every read index a
//! quorum confirmed, from the tick the read was asked at (each follower
//! that confirmed it heard from the leader after that tick, and will not
//! vote for anyone else until it has ticked an election timeout since), and
//! lasts half the election timeout, leaving the other half for tick jitter
//! (ticks come 1 to 1.5 tick lengths apart: its 5 ticks take at most 7.5
//! lengths, a follower's 10 at least 9).
//!
//! The flaw is that the lease is counted in the leader's own raft ticks: it
//! trusts that they keep pace with the followers' clocks. A leader whose
//! process stalls (a slow disk: its task sleeps off each step's disk time
//! and ticks once when it wakes) counts few ticks while the followers count
//! many, elect a new leader and commit writes, and it still answers reads
//! from its stale state. A lease must be measured on a clock that stalls
//! cannot stop (etcd does not serve lease reads for this reason).

/// Ticks of the leader's own clock, and the lease it holds.
#[derive(Debug, Default)]
pub(super) struct TickLease {
    ticks: u64,
    term: u64,
    until: u64,
}

impl TickLease {
    /// One raft tick.
    pub(super) fn tick(&mut self) {
        self.ticks += 1;
    }

    /// The tick count now.
    pub(super) fn now(&self) -> u64 {
        self.ticks
    }

    /// A quorum confirmed a read index asked at tick `asked` in `term`: the
    /// lease holds until `len` ticks after it.
    pub(super) fn renew(&mut self, term: u64, asked: u64, len: u64) {
        let until = asked + len;
        if term != self.term || until > self.until {
            self.term = term;
            self.until = until;
        }
    }

    /// Whether the lease holds now in `term`.
    pub(super) fn holds(&self, term: u64) -> bool {
        term == self.term && self.ticks < self.until
    }
}

#[cfg(test)]
mod tests {
    use super::TickLease;

    #[test]
    fn a_lease_lasts_its_length_in_ticks_and_only_in_its_term() {
        let mut lease = TickLease::default();
        assert!(!lease.holds(0), "no lease before a confirmed read");
        lease.tick();
        lease.renew(2, lease.now(), 3);
        assert!(lease.holds(2) && !lease.holds(3));
        lease.tick();
        lease.tick();
        assert!(lease.holds(2));
        lease.tick();
        assert!(!lease.holds(2), "expired {} ticks after it was asked", 3);
        lease.renew(2, 0, 3);
        assert!(
            !lease.holds(2),
            "an older confirmation does not shorten or revive it"
        );
    }
}
