//! Damage faults that wait (3 s at most) instead of striking at once: WAL
//! damage waits for the records where it can show, as a torn-write power
//! loss waits for a write to tear, and any damage drawn while its bound did
//! not hold waits for the bound. A WAL record can
//! only do harm between its save and the backend's next commit: afterwards
//! a boot skips it (the backend holds its entry), so damage at a random
//! instant mostly lands where no boot reads it. Two aims, each from the
//! damage aim stream (`STREAM_DAMAGE_AIM`), so the fault stream keeps its
//! order:
//!
//! - bit rot at a replayed put value (half of the WAL flips): a byte of a
//!   put value that a boot will replay and then show
//!   (`Supervisor::replayed_put_values`). Most flips elsewhere break the
//!   decoding of the record, entry or request, which the store must refuse
//!   anyway; a flip inside a value still decodes, so only the WAL's CRC can
//!   tell, and a reader that skips it (`wal-crc-unchecked`) boots holding a
//!   value nobody wrote;
//! - a latent sector error past the backend (a WAL bad sector drawn while
//!   its member had no record past the backend's latest sync, and half of
//!   the others): the first whole sector past that sync, on a member (drawn
//!   among those that have some) with committed puts there. A boot that
//!   takes the error for the end of the log (`wal-read-error-as-eof`) loses
//!   entries only there; with a short batch interval the backend commits so
//!   often that a sector drawn at once mostly found none, and a sector that
//!   straddles the sync point takes with it the hard state that committed
//!   the backend's entries, so that boot's verify refuses it even with the
//!   bug.
//!
//! The wait does not hold the damage budget: another damage fault may come
//! first, and then this one is dropped.
//!
//! A third kind of wait is for the damage bound itself: a damage fault drawn
//! in the last quarter of the random phase while some member was down, cut
//! off or armed waits (3 s at most) for every member to be up, rather than
//! being dropped. Busy worlds (high fault rates, five or seven members, long
//! host-in-trouble cuts) are rarely all up at the instant a fault is drawn:
//! with the wait, seeds 1..300 (swarm on) saw 32 bit rot and 32 latent
//! sector errors instead of 29 and 24, and `wal-read-error-as-eof` failed
//! in 23 of seeds 601..1800 instead of 19 (25 with `--swarm off`, where the
//! three members are rarely all busy: unchanged).

use super::ARMED_FAULT_TTL_MS;
use super::Supervisor;
use super::wal_layout::ValueSpan;
use crate::fault::FaultClass;
use crate::scenario_file::DamagedFile;
use rand::Rng;
use rand::seq::IndexedRandom;

/// A damage fault waiting for its moment (`Supervisor::arm_aimed_damage`).
#[derive(Clone, Copy, Debug)]
pub(super) struct AimedDamage {
    /// Dropped at this virtual time.
    until_ms: u64,
    at: AimedAt,
}

/// What a waiting damage waits for.
#[derive(Clone, Copy, Debug)]
pub(super) enum AimedAt {
    /// The damage bound: a bit rot, latent sector error or misdirected
    /// write of `class` on member `id`, drawn late in the random phase while
    /// a member was down, cut off or armed.
    Bound { class: FaultClass, id: u64 },
    /// Bit rot (flipping `xor`) at a put value a boot replays and shows.
    ReplayedValue { xor: u8 },
    /// A latent sector error among the records past the backend's sync.
    PastBackend,
}

impl Supervisor {
    /// Arms a damage fault that strikes once what it waits for holds (one
    /// at a time).
    pub(super) fn arm_aimed_damage(&mut self, now: u64, at: AimedAt) {
        let until_ms = (now + ARMED_FAULT_TTL_MS).min(self.random_until);
        self.aimed_damage = Some(AimedDamage { until_ms, at });
        let what = match at {
            AimedAt::Bound { class, id } => {
                format!(
                    "a {} fault on member {id}, waiting for every member to be up",
                    class.name()
                )
            }
            AimedAt::ReplayedValue { xor } => {
                format!("bit rot at the next replayed put value (xor {xor:#04x})")
            }
            AimedAt::PastBackend => "a latent sector error past the backend's sync".to_string(),
        };
        self.world
            .lock()
            .event(now, None, format_args!("armed {what}"));
        self.fire_aimed_damage();
    }

    /// An armed damage, once the damage bound holds (and, for the WAL aims,
    /// a member has its target): damages it and crashes the member. Dropped
    /// when its time is up or another member was damaged first, and a
    /// bound-waiting one whose member left the cluster. The WAL aims draw
    /// (from their own stream) the member and where; a bound-waiting fault
    /// draws as it would have at once (`inject_damage_now`).
    pub(super) fn fire_aimed_damage(&mut self) {
        let Some(aim) = self.aimed_damage.take() else {
            return;
        };
        let now = self.now_ms();
        if now >= aim.until_ms || self.any_damaged() {
            return;
        }
        let fired = self.may_damage(now)
            && match aim.at {
                AimedAt::Bound { class, id } => {
                    if self.running_members().contains(&id) {
                        self.inject_damage_now(now, id, class);
                    }
                    true
                }
                AimedAt::ReplayedValue { xor } => self.flip_replayed_value(now, xor),
                AimedAt::PastBackend => self.bad_sector_past_backend(now),
            };
        if !fired {
            self.aimed_damage = Some(aim);
        }
    }

    /// Flips `xor` into a byte of a replayed put value of some member, if
    /// one has any.
    fn flip_replayed_value(&mut self, now: u64, xor: u8) -> bool {
        let targets: Vec<(u64, Vec<ValueSpan>, u64)> = (self.running_members().into_iter())
            .filter_map(|m| self.replayed_put_values(m).map(|(v, span)| (m, v, span)))
            .collect();
        let Some((id, values, span)) = targets.choose(&mut self.damage_aim_rng) else {
            return false;
        };
        let Some(value) = values.choose(&mut self.damage_aim_rng) else {
            return false;
        };
        let byte = self.damage_aim_rng.random_range(value.start..value.end);
        // The middle of the byte, so that `corrupt`'s rounding finds it.
        let at = (byte as f64 + 0.5) / *span as f64;
        let id = *id;
        self.damage_and_crash(now, id, DamagedFile::Wal, at, xor);
        true
    }

    /// Makes unreadable the first whole sector past some member's backend
    /// sync in its WAL, if committed put values its boot must replay lie
    /// past it (`Supervisor::first_sector_past_backend`).
    fn bad_sector_past_backend(&mut self, now: u64) -> bool {
        let targets: Vec<(u64, f64)> = (self.running_members().into_iter())
            .filter_map(|m| self.first_sector_past_backend(m).map(|at| (m, at)))
            .collect();
        let Some(&(id, at)) = targets.choose(&mut self.damage_aim_rng) else {
            return false;
        };
        self.bad_sector_and_crash(now, id, DamagedFile::Wal, at);
        true
    }
}
