//! Network faults: a member partitioned until a time, a member isolated
//! from its peers (links cut), scripted link rules (group splits, one-way
//! cuts, per-message drop / delay / duplication; see `cluster::links`),
//! and healing.

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
            for (id, slot) in w.members.iter_mut() {
                if slot.partitioned_until.is_some_and(|t| all || t <= now) {
                    slot.partitioned_until = None;
                    out.push((*id, slot.madsim_id));
                }
            }
            for (id, _) in &out {
                w.event(now, Some(*id), format_args!("partition healed"));
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
