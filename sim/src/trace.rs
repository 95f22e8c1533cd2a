//! The run's event trace: every fault, restart, acknowledgement and applied
//! entry, stamped with virtual time and member. Its hash is the run's
//! fingerprint for the determinism self-check; with `--trace` the events are
//! also printed as they happen.

use std::fmt::Write as _;

/// FNV-1a, 64 bit: a tiny stable hash (no per-process keys, unlike std's
/// `RandomState`), so equal traces hash equal in any process.
#[derive(Debug, Clone, Copy)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv64 {
    pub fn update(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub fn finish(self) -> u64 {
        self.0
    }
}

/// The trace of one run.
#[derive(Debug, Default)]
pub struct Trace {
    hash: Fnv64,
    events: u64,
    print: bool,
    line: String,
}

impl Trace {
    pub fn new(print: bool) -> Self {
        Trace {
            print,
            ..Trace::default()
        }
    }

    /// Records one event.
    pub fn event(&mut self, now_ms: u64, member: Option<u64>, what: std::fmt::Arguments<'_>) {
        self.line.clear();
        let who = member.map_or_else(|| "sim".to_string(), |m| format!("m{m}"));
        let _ = write!(
            self.line,
            "{:>6}.{:03}s {who:>4} {what}",
            now_ms / 1000,
            now_ms % 1000
        );
        self.hash.update(self.line.as_bytes());
        self.hash.update(b"\n");
        self.events += 1;
        if self.print {
            println!("{}", self.line);
        }
    }

    /// Records a frequent event without formatting it (unless printing):
    /// its kind and numbers are hashed as raw bytes.
    pub fn numbers(&mut self, now_ms: u64, member: u64, kind: &str, nums: &[i64]) {
        self.hash.update(&now_ms.to_le_bytes());
        self.hash.update(&member.to_le_bytes());
        self.hash.update(kind.as_bytes());
        for n in nums {
            self.hash.update(&n.to_le_bytes());
        }
        self.events += 1;
        if self.print {
            let nums: Vec<String> = nums.iter().map(i64::to_string).collect();
            println!(
                "{:>6}.{:03}s {:>4} {kind} {}",
                now_ms / 1000,
                now_ms % 1000,
                format!("m{member}"),
                nums.join(" ")
            );
        }
    }

    pub fn hash(&self) -> u64 {
        self.hash.finish()
    }

    pub fn events(&self) -> u64 {
        self.events
    }
}
