//! Scripted faults of member-to-member links: a link cut (one way, for a
//! group split or alone) and per-message drop, delay and duplication rules,
//! each for a while. They act where a member hands a message to the
//! network; messages between a client and a member are not affected.
//! Probabilities draw from their own seed stream, and only while a rule
//! matches, so a run without rules draws nothing.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// What happens to messages from `from` to `to` (`None`: any member) until
/// `until_ms` (virtual time).
#[derive(Debug, Clone, PartialEq)]
pub struct LinkRule {
    pub from: Option<u64>,
    pub to: Option<u64>,
    pub until_ms: u64,
    /// The probability that a message is lost (1: the link is cut).
    pub drop: f64,
    /// Extra delay of every message.
    pub delay_ms: u64,
    /// The probability that a message is delivered twice.
    pub duplicate: f64,
}

impl LinkRule {
    fn applies(&self, from: u64, to: u64, now_ms: u64) -> bool {
        now_ms < self.until_ms
            && self.from.is_none_or(|f| f == from)
            && self.to.is_none_or(|t| t == to)
    }
}

/// What the network does with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fate {
    /// 0 (lost), 1, or 2 (duplicated).
    pub copies: u32,
    pub delay_ms: u64,
}

impl Fate {
    /// Sent once, at once.
    pub const NORMAL: Fate = Fate {
        copies: 1,
        delay_ms: 0,
    };
}

/// The member a network address belongs to (`None` for a client).
pub fn member_of(addr: std::net::SocketAddr) -> Option<u64> {
    match addr.ip() {
        std::net::IpAddr::V4(ip) if addr.port() == super::wire::PORT => {
            let [a, b, c, d] = ip.octets();
            ((a, b, c) == (10, 0, 0)).then_some(u64::from(d))
        }
        _ => None,
    }
}

/// The link rules in force, and the stream their probabilities draw from.
#[derive(Debug)]
pub struct LinkRules {
    rules: Vec<LinkRule>,
    rng: ChaCha8Rng,
}

impl LinkRules {
    pub fn new(rng: ChaCha8Rng) -> LinkRules {
        LinkRules {
            rules: Vec::new(),
            rng,
        }
    }

    pub fn add(&mut self, rule: LinkRule) {
        self.rules.push(rule);
    }

    /// Heals every link.
    pub fn clear(&mut self) {
        self.rules.clear();
    }

    /// Whether any rule is in force at `now_ms` (expired ones are dropped).
    pub fn active(&mut self, now_ms: u64) -> bool {
        self.rules.retain(|r| now_ms < r.until_ms);
        !self.rules.is_empty()
    }

    /// The fate of one message from member `from` to member `to`: every
    /// rule that applies acts on it (a cut or a lost draw loses it).
    pub fn fate(&mut self, from: u64, to: u64, now_ms: u64) -> Fate {
        let mut fate = Fate::NORMAL;
        for rule in self.rules.iter().filter(|r| r.applies(from, to, now_ms)) {
            if rule.drop >= 1.0 || (rule.drop > 0.0 && self.rng.random_bool(rule.drop)) {
                fate.copies = 0;
            }
            if rule.duplicate > 0.0 && self.rng.random_bool(rule.duplicate.min(1.0)) {
                fate.copies = fate.copies.min(1) * 2;
            }
            fate.delay_ms += rule.delay_ms;
        }
        fate
    }
}

impl super::world::WorldState {
    /// The fate of a message from member `from` to member `to` at `now`,
    /// counted in the run's statistics.
    pub fn link_fate(&mut self, from: u64, to: u64, now: u64) -> Fate {
        if !self.links.active(now) {
            return Fate::NORMAL;
        }
        let fate = self.links.fate(from, to, now);
        self.stats.messages_dropped += u64::from(fate.copies == 0);
        self.stats.messages_duplicated += u64::from(fate.copies == 2);
        self.stats.messages_delayed += u64::from(fate.copies > 0 && fate.delay_ms > 0);
        fate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rule(from: Option<u64>, to: Option<u64>) -> LinkRule {
        LinkRule {
            from,
            to,
            until_ms: 100,
            drop: 0.0,
            delay_ms: 0,
            duplicate: 0.0,
        }
    }

    #[test]
    fn member_addresses_name_their_member_and_clients_none() {
        use crate::cluster::wire::{client_addr, member_addr};
        assert_eq!(member_of(member_addr(3)), Some(3));
        assert_eq!(member_of(client_addr(1)), None);
    }

    #[test]
    fn a_cut_is_one_way_and_ends_on_time() {
        let mut links = LinkRules::new(ChaCha8Rng::seed_from_u64(1));
        links.add(LinkRule {
            drop: 1.0,
            ..rule(Some(1), Some(2))
        });
        assert_eq!(links.fate(1, 2, 10).copies, 0);
        assert_eq!(links.fate(2, 1, 10).copies, 1);
        assert_eq!(links.fate(1, 3, 10).copies, 1);
        assert_eq!(links.fate(1, 2, 100).copies, 1);
        assert!(!links.active(100));
    }

    #[test]
    fn drop_delay_and_duplication_act_per_message_and_replay() {
        let fates = |seed| {
            let mut links = LinkRules::new(ChaCha8Rng::seed_from_u64(seed));
            links.add(LinkRule {
                drop: 0.3,
                duplicate: 0.3,
                delay_ms: 7,
                ..rule(None, Some(3))
            });
            (0..200).map(|_| links.fate(1, 3, 0)).collect::<Vec<_>>()
        };
        let run = fates(5);
        assert_eq!(run, fates(5));
        assert!(run.iter().all(|f| f.delay_ms == 7));
        for copies in 0..=2 {
            let n = run.iter().filter(|f| f.copies == copies).count();
            assert!(n > 20, "{copies} copies: {n} of 200");
        }
    }
}
