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

/// One event kept for export (`sim run --trace-out`).
#[derive(Debug, Clone, PartialEq)]
pub struct TraceRecord {
    pub time_ms: u64,
    /// `None`: the supervisor or the client.
    pub member: Option<u64>,
    /// The event's text (for numeric events, its kind without the field
    /// list).
    pub what: String,
    /// Named numbers of a numeric event.
    pub numbers: Vec<(String, i64)>,
}

/// The trace of one run.
#[derive(Debug, Default)]
pub struct Trace {
    hash: Fnv64,
    events: u64,
    print: bool,
    line: String,
    /// Every event, when an export was asked for (off by default: the
    /// random runs' hot loop does not pay for it).
    records: Option<Vec<TraceRecord>>,
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
        if let Some(records) = self.records.as_mut() {
            records.push(TraceRecord {
                time_ms: now_ms,
                member,
                what: what.to_string(),
                numbers: Vec::new(),
            });
        }
    }

    /// Keeps every event from now on, for [`Trace::records`].
    pub fn keep_records(&mut self) {
        self.records.get_or_insert_with(Vec::new);
    }

    /// The kept events (empty unless [`Trace::keep_records`] was called).
    pub fn records(&self) -> &[TraceRecord] {
        self.records.as_deref().unwrap_or(&[])
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
        if let Some(records) = self.records.as_mut() {
            // "apply first,last,revision,v2:" names its numbers.
            let (name, fields) = kind.split_once(' ').unwrap_or((kind, ""));
            let fields = fields.trim_end_matches(':').split(',');
            records.push(TraceRecord {
                time_ms: now_ms,
                member: (member != 0).then_some(member),
                what: name.to_string(),
                numbers: fields.zip(nums).map(|(f, n)| (f.to_string(), *n)).collect(),
            });
        }
    }

    pub fn hash(&self) -> u64 {
        self.hash.finish()
    }

    pub fn events(&self) -> u64 {
        self.events
    }
}
