//! The fault schedule of a random run, recorded as scenario steps at their
//! virtual times, so `sim shrink` can turn a failing random run into a
//! scenario file whose every fault is explicit.
//!
//! A fault the supervisor injects at once (a kill, a partition, a restart)
//! is recorded as it happens. An armed fault (a crash point, a disk-op
//! crash, an EIO, a crash during the next boot) counts only once it fires:
//! one that expires, or whose member is restarted first, changed nothing
//! and is left out. A power loss fills in the mode and the plan seed of the
//! step that stopped the member, so the replay loses the same writes.

use crate::fault::PowerLossKind;
use crate::scenario_file::{Mode, Step};

/// One recorded step and when the supervisor took it.
#[derive(Debug, Clone)]
pub struct TimedStep {
    pub at_ms: u64,
    pub step: Step,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for its moment.
    Armed,
    /// It happened: part of the schedule.
    Happened,
    /// Never fired: left out.
    Dropped,
}

#[derive(Debug, Clone)]
struct Entry {
    timed: TimedStep,
    member: u64,
    state: State,
}

impl Entry {
    /// An armed fault that never fired changed nothing and is dropped; a
    /// restart whose boot crash never fired is still a plain restart.
    fn forget_if_armed(&mut self) {
        if self.state != State::Armed {
            return;
        }
        if let Step::Restart {
            crash_at,
            hit,
            mode,
            ..
        } = &mut self.timed.step
        {
            *crash_at = None;
            *hit = 1;
            *mode = Mode::Process;
            self.state = State::Happened;
        } else {
            self.state = State::Dropped;
        }
    }
}

/// Records what the supervisor's random choices did.
#[derive(Debug, Default)]
pub(crate) struct ScheduleRecorder {
    entries: Vec<Entry>,
    /// The faults stopped (the run quiesces): what follows, such as the
    /// final restarts, every run does by itself, so it is not recorded.
    stopped: bool,
}

impl ScheduleRecorder {
    fn push(&mut self, at_ms: u64, member: u64, step: Step, state: State) {
        if self.stopped {
            return;
        }
        self.entries.push(Entry {
            timed: TimedStep { at_ms, step },
            member,
            state,
        });
    }

    /// A fault that took effect at once.
    pub(crate) fn happened(&mut self, at_ms: u64, member: u64, step: Step) {
        self.push(at_ms, member, step, State::Happened);
    }

    /// A fault that waits for its moment.
    pub(crate) fn armed(&mut self, at_ms: u64, member: u64, step: Step) {
        self.push(at_ms, member, step, State::Armed);
    }

    /// Marks the latest armed fault of `member` whose step `is` accepts as
    /// one that took effect (while recording).
    fn took_effect(&mut self, member: u64, is: fn(&Step) -> bool) {
        if self.stopped {
            return;
        }
        let latest = (self.entries.iter_mut().rev())
            .find(|e| e.member == member && e.state == State::Armed && is(&e.timed.step));
        if let Some(entry) = latest {
            entry.state = State::Happened;
        }
    }

    /// `member`'s armed misdirected write landed.
    pub(crate) fn misdirect_landed(&mut self, member: u64) {
        self.took_effect(member, |step| matches!(step, Step::Misdirect { .. }));
    }

    /// `member` carried on after its armed EIO failed an operation: the
    /// EIO took effect, though it did not stop the member.
    pub(crate) fn eio_survived(&mut self, member: u64) {
        self.took_effect(member, |step| matches!(step, Step::Eio { .. }));
    }

    /// The latest restart of `member`, while recording.
    fn latest_restart(&mut self, member: u64) -> Option<&mut Entry> {
        if self.stopped {
            return None;
        }
        self.entries
            .iter_mut()
            .rev()
            .find(|e| e.member == member && matches!(e.timed.step, Step::Restart { .. }))
    }

    /// A crash during the boot the latest restart of `member` started.
    pub(crate) fn armed_boot_crash(&mut self, member: u64, point: &str, hits: u32, mode: Mode) {
        if let Some(entry) = self.latest_restart(member) {
            entry.timed.step = Step::Restart {
                member: member.into(),
                crash_at: Some(point.to_string()),
                hit: hits,
                mode,
                plan_seed: None,
                power_at_sync: false,
            };
            entry.state = State::Armed;
        }
    }

    /// The latest restart of `member` ends in a power loss at its first
    /// sync. It stays a restart that happened: if the power loss never
    /// comes, a replay arms it the same way and it expires the same way.
    pub(crate) fn armed_power_at_reboot_sync(&mut self, member: u64) {
        if let Some(Entry {
            timed:
                TimedStep {
                    step: Step::Restart { power_at_sync, .. },
                    ..
                },
            ..
        }) = self.latest_restart(member)
        {
            *power_at_sync = true;
        }
    }

    /// `member` stopped: its latest armed fault that fires by stopping it
    /// fired (a misdirected write fires when it lands, `misdirect_landed`).
    pub(crate) fn fired(&mut self, member: u64) {
        self.took_effect(member, |step| !matches!(step, Step::Misdirect { .. }));
    }

    /// `member`'s armed faults were forgotten (expired, or the member was
    /// restarted or the run quiesced before they fired). A restart whose
    /// boot crash never fired is still a restart.
    pub(crate) fn disarmed(&mut self, member: u64) {
        if self.stopped {
            return;
        }
        self.entries
            .iter_mut()
            .filter(|e| e.member == member)
            .for_each(Entry::forget_if_armed);
    }

    /// The run quiesces: every armed fault is forgotten, and nothing more
    /// is recorded.
    pub(crate) fn stop(&mut self) {
        if !self.stopped {
            self.entries.iter_mut().for_each(Entry::forget_if_armed);
        }
        self.stopped = true;
    }

    /// `member` lost power: the step that stopped it gets the plan.
    pub(crate) fn power_loss(&mut self, member: u64, kind: PowerLossKind, seed: u64) {
        if self.stopped {
            return;
        }
        let stop = self.entries.iter_mut().rev().find(|e| {
            e.member == member
                && e.state == State::Happened
                && matches!(
                    e.timed.step,
                    Step::Crash { .. }
                        | Step::Eio { .. }
                        | Step::Restart {
                            crash_at: Some(_),
                            ..
                        }
                        | Step::Restart {
                            power_at_sync: true,
                            ..
                        }
                )
        });
        let Some(entry) = stop else {
            return;
        };
        match &mut entry.timed.step {
            Step::Crash {
                mode, plan_seed, ..
            }
            | Step::Eio {
                mode, plan_seed, ..
            }
            | Step::Restart {
                mode, plan_seed, ..
            } => {
                *mode = Mode::of_power_loss(kind);
                *plan_seed = Some(seed);
            }
            _ => {}
        }
    }

    /// The schedule: every fault that happened, in order.
    pub(crate) fn steps(&self) -> Vec<TimedStep> {
        self.entries
            .iter()
            .filter(|e| e.state == State::Happened)
            .map(|e| e.timed.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario_file::{EioOn, Target};

    fn eio(member: u64) -> Step {
        Step::Eio {
            member: Target::Id(member),
            on: EioOn::Sync,
            mode: Mode::Power,
            plan_seed: None,
            file: None,
            nth: None,
        }
    }

    fn restart(member: u64) -> Step {
        Step::Restart {
            member: Target::Id(member),
            crash_at: None,
            hit: 1,
            mode: Mode::Process,
            plan_seed: None,
            power_at_sync: false,
        }
    }

    #[test]
    fn only_faults_that_fired_are_kept_with_their_power_plan() {
        let mut r = ScheduleRecorder::default();
        r.armed(10, 1, eio(1));
        r.disarmed(1); // expired
        r.armed(20, 2, eio(2));
        r.fired(2);
        r.power_loss(2, PowerLossKind::Reorder, 77);
        r.happened(30, 2, restart(2));
        let steps = r.steps();
        assert_eq!(steps.len(), 2, "{steps:?}");
        assert_eq!(steps[0].at_ms, 20);
        assert!(matches!(
            steps[0].step,
            Step::Eio {
                mode: Mode::Reorder,
                plan_seed: Some(77),
                ..
            }
        ));
    }

    #[test]
    fn a_survived_eio_is_kept_before_the_crash_that_follows_it() {
        let mut r = ScheduleRecorder::default();
        r.armed(10, 1, eio(1));
        r.eio_survived(1);
        r.happened(40, 1, restart(1));
        r.disarmed(1); // the restart forgets what is still armed
        let steps = r.steps();
        assert_eq!(steps.len(), 2, "{steps:?}");
        assert!(matches!(steps[0].step, Step::Eio { .. }));
    }

    #[test]
    fn a_boot_crash_that_never_fired_leaves_a_plain_restart() {
        let mut r = ScheduleRecorder::default();
        r.happened(5, 3, restart(3));
        r.armed_boot_crash(3, "backend.commit.after", 2, Mode::Power);
        r.stop();
        r.happened(6, 3, restart(3));
        let steps = r.steps();
        assert_eq!(steps.len(), 1);
        assert!(matches!(
            steps[0].step,
            Step::Restart { crash_at: None, .. }
        ));

        let mut r = ScheduleRecorder::default();
        r.happened(5, 3, restart(3));
        r.armed_boot_crash(3, "backend.commit.after", 2, Mode::Power);
        r.fired(3);
        r.power_loss(3, PowerLossKind::Lose, 9);
        let steps = r.steps();
        assert!(matches!(
            &steps[0].step,
            Step::Restart { crash_at: Some(p), hit: 2, mode: Mode::Power, plan_seed: Some(9), .. }
                if p == "backend.commit.after"
        ));
    }
}
