//! Network faults: a member partitioned until a time, a member isolated
//! from its peers (links cut; for a while, a peer-only partition), scripted
//! link rules (group splits, one-way cuts, per-message drop / delay /
//! duplication; see `cluster::links`), and healing.

use super::supervisor::Supervisor;
use crate::cluster::links::LinkRule;

impl Supervisor {
    /// Cuts member `id` off the network until `until` (virtual ms).
    pub(crate) fn partition(&mut self, id: u64, until: u64) {
        let now = self.now_ms();
        let mid = {
            let mut w = self.world.lock();
            w.stats.partitions += 1;
            if until == u64::MAX {
                w.event(now, Some(id), format_args!("partitioned"));
            } else {
                w.event(now, Some(id), format_args!("partitioned until {until}ms"));
            }
            let Some(slot) = w.members.get_mut(&id) else {
                return;
            };
            slot.partitioned_until = Some(until);
            slot.madsim_id
        };
        if let Some(mid) = mid {
            madsim::net::NetSim::current().clog_node(mid);
        }
    }

    /// Cuts the links between member `id` and every other member.
    pub(crate) fn isolate(&mut self, id: u64) {
        let now = self.now_ms();
        let ids: Vec<(u64, Option<madsim::task::NodeId>)> = {
            let mut w = self.world.lock();
            w.event(
                now,
                Some(id),
                format_args!("isolated from the other members"),
            );
            w.members.iter().map(|(i, s)| (*i, s.madsim_id)).collect()
        };
        let Some(me) = ids.iter().find(|(i, _)| *i == id).and_then(|(_, m)| *m) else {
            return;
        };
        let net = madsim::net::NetSim::current();
        for (other, mid) in ids {
            if let (true, Some(mid)) = (other != id, mid) {
                net.clog_link(me, mid);
                net.clog_link(mid, me);
                self.isolated_links.push((me, mid));
            }
        }
    }

    /// Cuts member `id` off from every other member until `until` (virtual
    /// ms) while its clients still reach it: a peer-only partition (etcd's
    /// "blackhole peer network" failpoint). Its messages to and from peers
    /// are lost by link rules that end on their own; the member counts as
    /// unavailable in the fault budget until `heal_due` sees the time pass.
    pub(crate) fn cut_from_peers(&mut self, id: u64, until: u64) {
        let now = self.now_ms();
        let mut w = self.world.lock();
        let Some(slot) = w.slot_mut(id) else {
            return;
        };
        slot.peers_cut_until = Some(until);
        // Counted here, not where a host in trouble strikes, so that a
        // replay of its recorded `slow` and `isolate` steps counts it too.
        let slow = slot.disk.is_slow();
        w.stats.peer_cuts += 1;
        w.stats.slow_peer_cuts += u64::from(slow);
        w.event(
            now,
            Some(id),
            format_args!("cut off from its peers until {until}ms (clients still reach it)"),
        );
        for (from, to) in [(Some(id), None), (None, Some(id))] {
            w.links.add(LinkRule {
                from,
                to,
                until_ms: until,
                drop: 1.0,
                delay_ms: 0,
                duplicate: 0.0,
            });
        }
    }

    /// Adds scripted link rules (a split's or a cut's, or per-message
    /// faults), described by `what` in the event log.
    pub(crate) fn add_link_rules(&mut self, rules: Vec<LinkRule>, what: std::fmt::Arguments<'_>) {
        let now = self.now_ms();
        let mut w = self.world.lock();
        if rules.iter().any(|r| r.drop >= 1.0) {
            w.stats.partitions += 1;
        }
        w.event(now, None, what);
        for rule in rules {
            w.links.add(rule);
        }
    }

    pub(crate) fn heal_due(&mut self, all: bool) {
        let now = self.world.now_ms();
        let healed: Vec<(u64, Option<madsim::task::NodeId>)> = {
            let mut w = self.world.lock();
            let mut out = Vec::new();
            let mut rejoined = Vec::new();
            for (id, slot) in w.members.iter_mut() {
                if slot.partitioned_until.is_some_and(|t| all || t <= now) {
                    slot.partitioned_until = None;
                    out.push((*id, slot.madsim_id));
                }
                if slot.peers_cut_until.is_some_and(|t| all || t <= now) {
                    slot.peers_cut_until = None;
                    rejoined.push(*id);
                }
            }
            for (id, _) in &out {
                w.event(now, Some(*id), format_args!("partition healed"));
            }
            for id in rejoined {
                w.event(now, Some(id), format_args!("peer links healed"));
            }
            out
        };
        for (_, mid) in healed {
            if let Some(mid) = mid {
                madsim::net::NetSim::current().unclog_node(mid);
            }
        }
        if all {
            self.world.lock().links.clear();
            for (a, b) in std::mem::take(&mut self.isolated_links) {
                madsim::net::NetSim::current().unclog_link(a, b);
                madsim::net::NetSim::current().unclog_link(b, a);
            }
        }
    }
}
