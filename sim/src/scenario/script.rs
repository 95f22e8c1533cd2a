//! Executes a scenario's steps on the supervisor. Every wait polls the
//! supervisor, so restarts, heals and (with `[random]`) random faults go on
//! while the script waits.

use super::fault_steps::BootFault;
use super::requests::{client_read, client_requests};
use crate::checker::{Invariant, Violation};
use crate::cluster::client::{ScriptOp, ScriptRequest};
use crate::cluster::world::conf_change_request;
use crate::run::{STEP_MS, Supervisor};
use crate::scenario_file::{BOOT_DISK_OP, Count, Step, Target};
use futures_channel::mpsc::{UnboundedSender, unbounded};
use futures_channel::oneshot;
use replica::crash_point::CrashPoint;
use replica::proto::{ConfChangeKind, PutRequest, Request, Response, request};
use std::time::Duration;

/// How long a step may wait for the cluster before the scenario fails.
pub(super) const STEP_LIMIT_MS: u64 = 30_000;
/// Request ids of scripted requests (apart from the random workload's).
const SCRIPT_ID_BASE: u64 = 1 << 40;

pub(super) struct Script<'a> {
    pub(super) sup: &'a mut Supervisor,
    /// The scenario's client session, started at its first request (a
    /// script of faults alone adds no task to the simulation, so it runs as
    /// the random run it was recorded from).
    session: Option<UnboundedSender<ScriptRequest>>,
    next_id: u64,
    /// The member the latest `crash`/`eio` step targeted.
    pub(super) crashed: Option<u64>,
    /// The member the latest `isolate` step targeted.
    isolated: Option<u64>,
}

/// Runs `steps` in order; a step that cannot do what it says records a
/// scenario violation and ends the script.
pub(super) async fn run_steps(sup: &mut Supervisor, steps: &[Step]) {
    let mut script = Script {
        sup,
        session: None,
        next_id: SCRIPT_ID_BASE,
        crashed: None,
        isolated: None,
    };
    if let Err(e) = script.steps(steps, None).await {
        script.fail(e);
    }
}

/// A step's count: a number, or the repeat variable `k`.
pub(super) fn count(c: &Option<Count>, k: Option<u64>) -> u64 {
    match c {
        Some(Count::N(n)) => *n,
        Some(Count::Var(_)) => k.unwrap_or(1),
        None => 0,
    }
}

impl Script<'_> {
    fn fail(&mut self, message: String) {
        let now = self.sup.now_ms();
        self.sup.violation(Violation {
            invariant: Invariant::Scenario,
            time_ms: now,
            member: None,
            detail: message,
            diffs: Vec::new(),
        });
    }

    fn steps<'s>(
        &'s mut self,
        steps: &'s [Step],
        k: Option<u64>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + 's>> {
        Box::pin(async move {
            for step in steps {
                self.sup.event(None, format_args!("step: {step:?}"));
                self.step(step, k).await?;
            }
            Ok(())
        })
    }

    async fn sleep_polling(&mut self, ms: u64) {
        let until = self.sup.now_ms() + ms;
        while self.sup.now_ms() < until {
            madsim::time::sleep(Duration::from_millis(STEP_MS)).await;
            self.sup.poll();
        }
    }

    /// Polls until `done` holds; false after `limit_ms`.
    pub(super) async fn wait_for(
        &mut self,
        limit_ms: u64,
        done: impl Fn(&Supervisor) -> bool,
    ) -> bool {
        let until = self.sup.now_ms() + limit_ms;
        while !done(self.sup) {
            if self.sup.now_ms() >= until {
                return false;
            }
            madsim::time::sleep(Duration::from_millis(STEP_MS)).await;
            self.sup.poll();
        }
        true
    }

    async fn send(&mut self, op: ScriptOp) -> Result<Response, String> {
        let (tx, mut rx) = oneshot::channel();
        let what = format!("{op:?}");
        let session = self.session.get_or_insert_with(|| {
            let (session, requests) = unbounded();
            self.sup.start_script_session(requests);
            session
        });
        session
            .unbounded_send(ScriptRequest { op, reply: tx })
            .map_err(|_| "the scenario's client session is gone".to_string())?;
        let until = self.sup.now_ms() + STEP_LIMIT_MS;
        loop {
            match madsim::time::timeout(Duration::from_millis(STEP_MS), &mut rx).await {
                Ok(Ok(Some(resp))) => return Ok(resp),
                Ok(_) => return Err(format!("request never acknowledged: {what}")),
                Err(_) => {
                    self.sup.poll();
                    if self.sup.now_ms() > until {
                        return Err(format!("request not acknowledged within 30s: {what}"));
                    }
                }
            }
        }
    }

    pub(super) async fn request(&mut self, kind: request::Kind) -> Result<Response, String> {
        self.next_id += 1;
        let req = Request {
            id: self.next_id,
            kind: Some(kind),
        };
        self.send(ScriptOp::Request(req)).await
    }

    pub(super) async fn conf_change(
        &mut self,
        kind: ConfChangeKind,
        id: u64,
        learner: bool,
    ) -> Result<(), String> {
        self.next_id += 1;
        let cc = conf_change_request(kind, id, learner, self.next_id);
        let resp = self.send(ScriptOp::ConfChange(cc)).await?;
        if !resp.error.is_empty() {
            return Err(format!(
                "conf change {kind:?} of member {id} was rejected: {}",
                resp.error
            ));
        }
        Ok(())
    }

    /// The member id a target names now.
    pub(super) fn resolve(&mut self, target: &Target) -> Result<u64, String> {
        match target {
            Target::Id(id) => Ok(*id),
            Target::Role(r) if r == "isolated" => self
                .isolated
                .ok_or_else(|| "no member was isolated yet".to_string()),
            Target::Role(r) if r == "crashed" => self
                .crashed
                .ok_or_else(|| "no member was crashed yet".to_string()),
            Target::Role(r) if r == "leader" => self
                .sup
                .leader()
                .ok_or_else(|| "no leader right now".to_string()),
            Target::Role(r) if r == "any follower" => self
                .sup
                .any_follower()
                .ok_or_else(|| "no running follower right now".to_string()),
            Target::Role(_) => self
                .sup
                .running_follower()
                .ok_or_else(|| "no running follower right now".to_string()),
        }
    }

    /// Runs one step: one handler per step kind.
    async fn step(&mut self, step: &Step, k: Option<u64>) -> Result<(), String> {
        if let Some(done) = self.link_step(step) {
            return done;
        }
        if let Some(requests) = client_requests(step) {
            for kind in requests {
                self.request(kind).await?;
            }
            return Ok(());
        }
        if let Some(read) = client_read(step) {
            let member = read.member.as_ref().map(|t| self.resolve(t)).transpose()?;
            self.send(ScriptOp::Read {
                range: read.range,
                serializable: read.serializable,
                member,
            })
            .await?;
            return Ok(());
        }
        match step {
            Step::Compact { revision } => self.compact_relative(revision).await,
            Step::Wait { .. }
            | Step::WaitUntil { .. }
            | Step::WaitConverged
            | Step::Check
            | Step::Snapshot { .. }
            | Step::Expect { .. }
            | Step::Repeat { .. } => self.control_step(step).await,
            _ => self.cluster_step(step, k).await,
        }
    }

    /// Membership, fault and network steps.
    async fn cluster_step(&mut self, step: &Step, k: Option<u64>) -> Result<(), String> {
        match step {
            Step::AddMember { .. }
            | Step::PromoteMember { .. }
            | Step::RemoveMember { .. }
            | Step::TransferLeader { .. }
            | Step::SnapshotRestore { .. }
            | Step::BackupRestore { .. } => self.membership_step(step).await,
            Step::Crash { .. } => self.crash(step, k),
            Step::Eio { file: Some(_), .. } | Step::Eio { nth: Some(_), .. } => {
                self.targeted_eio(step, k)
            }
            Step::Eio {
                member,
                on,
                mode,
                plan_seed,
                ..
            } => self.eio(member, on, *mode, *plan_seed),
            Step::Restart {
                member,
                mode,
                plan_seed,
                ..
            } => {
                self.restart(member, boot_fault(step), *mode, *plan_seed)
                    .await
            }
            Step::Corrupt {
                member,
                file,
                at,
                xor,
            } => {
                let id = self.resolve(member)?;
                self.sup.corrupt(id, *file, *at, *xor)
            }
            Step::DiskFull { member, free_bytes } => {
                let id = self.resolve(member)?;
                self.crashed = Some(id);
                self.sup.hold_down(id);
                self.sup.fill_disk(id, *free_bytes);
                Ok(())
            }
            Step::ReadError { member, file, at } => {
                let id = self.resolve(member)?;
                self.sup.bad_sector(id, *file, *at)
            }
            Step::Misdirect { .. } | Step::Slow { .. } => self.disk_step(step),
            Step::Pause { member, ms } => {
                let id = self.resolve(member)?;
                self.sup.pause_process(id, *ms)
            }
            Step::PowerOffAll => {
                let all = self.sup.running_members();
                self.sup.power_off(&all);
                Ok(())
            }
            Step::Partition { member, ms } => self.partition(member, *ms),
            Step::Heal => {
                self.sup.heal_due(true);
                Ok(())
            }
            Step::Isolate { member, ms } => self.isolate(member, *ms),
            Step::PutsTo {
                member,
                count,
                prefix,
            } => self.puts_to(member, *count, prefix).await,
            Step::ForceSnapshot { member } => {
                let id = self.resolve(member)?;
                self.sup.force_snapshot(id)
            }
            // Request and control steps are dispatched by `step`.
            _ => Ok(()),
        }
    }

    /// Waits, checks, expectations, snapshots and repeats.
    async fn control_step(&mut self, step: &Step) -> Result<(), String> {
        match step {
            Step::Wait { ms } => self.sleep_polling(*ms).await,
            Step::WaitUntil { ms } => {
                let now = self.sup.now_ms();
                self.sleep_polling(ms.saturating_sub(now)).await;
            }
            Step::WaitConverged => self.converge().await?,
            Step::Check => {
                self.converge().await?;
                self.sup.final_checks();
                self.sup.check_clients_so_far();
            }
            Step::Snapshot { label } => {
                self.converge().await?;
                self.sup.record_states(label);
            }
            Step::Expect {
                stat,
                at_least,
                at_most,
                equals,
            } => {
                let bounds = super::expect::Bounds::new(*at_least, *at_most, *equals);
                bounds.check(stat, self.sup.stat(stat))?;
            }
            Step::Repeat { times, steps } => {
                for i in 1..=u64::from(*times) {
                    self.steps(steps, Some(i)).await?;
                }
            }
            // Every other kind is dispatched by `step`.
            _ => {}
        }
        Ok(())
    }

    pub(super) async fn add_member(&mut self, id: u64, learner: bool) -> Result<(), String> {
        let kind = if learner {
            ConfChangeKind::AddLearnerNode
        } else {
            ConfChangeKind::AddNode
        };
        self.conf_change(kind, id, learner).await?;
        self.sup.start_member(id);
        self.sup.count(|s| {
            s.members_added += 1;
            s.learners_added += u64::from(learner);
        });
        Ok(())
    }

    pub(super) async fn remove_member(&mut self, id: u64) -> Result<(), String> {
        if self.sup.leader() == Some(id) {
            // As etcd does: the leader hands over before it is removed.
            let to = self
                .sup
                .running_follower()
                .ok_or_else(|| "no follower to take over from the leader".to_string())?;
            self.transfer_leader(to).await?;
        }
        self.conf_change(ConfChangeKind::RemoveNode, id, false)
            .await?;
        self.sup.retire(id);
        self.sup.count(|s| s.members_removed += 1);
        Ok(())
    }

    fn partition(&mut self, member: &Target, ms: Option<u64>) -> Result<(), String> {
        let id = self.resolve(member)?;
        let until = ms.map_or(u64::MAX, |ms| self.sup.now_ms() + ms);
        self.sup.partition(id, until);
        Ok(())
    }

    /// Cuts the member off its peers: until `heal`, or for `ms`.
    fn isolate(&mut self, member: &Target, ms: Option<u64>) -> Result<(), String> {
        let id = self.resolve(member)?;
        self.isolated = Some(id);
        match ms {
            Some(ms) => self.sup.cut_from_peers(id, self.sup.now_ms() + ms),
            None => self.sup.isolate(id),
        }
        Ok(())
    }

    /// Sends `count` puts straight to one member, without waiting for any
    /// acknowledgement (they may or may not commit).
    async fn puts_to(&mut self, member: &Target, count: u32, prefix: &str) -> Result<(), String> {
        let id = self.resolve(member)?;
        let mut requests = Vec::new();
        for i in 0..count {
            self.next_id += 1;
            requests.push(Request {
                id: self.next_id,
                kind: Some(request::Kind::Put(PutRequest {
                    key: format!("{prefix}{i:03}").into_bytes(),
                    value: format!("unacknowledged-{i}").into_bytes(),
                })),
            });
        }
        self.sup.spawn_on_client(send_unacknowledged(id, requests));
        self.sleep_polling(STEP_MS).await;
        Ok(())
    }

    async fn converge(&mut self) -> Result<(), String> {
        if self.wait_for(STEP_LIMIT_MS, |s| s.converged()).await {
            Ok(())
        } else {
            Err("the running members did not converge within 30s".into())
        }
    }
}

/// Sends requests to one member without waiting for replies.
async fn send_unacknowledged(member: u64, requests: Vec<Request>) {
    use crate::cluster::wire::{TAG, Wire, client_addr, member_addr};
    let Ok(ep) = madsim::net::Endpoint::bind(client_addr(101)).await else {
        return;
    };
    for req in requests {
        let _ = ep
            .send_to_raw(member_addr(member), TAG, Box::new(Wire::Request(req)))
            .await;
    }
}

/// What a `restart` step arms for the boot it starts: a crash at the k-th
/// disk operation or at a named point, a power loss at its first sync, or
/// nothing.
fn boot_fault(step: &Step) -> BootFault {
    let Step::Restart {
        crash_at,
        hit,
        power_at_sync,
        ..
    } = step
    else {
        return BootFault::None;
    };
    let at_disk_op = crash_at.as_deref() == Some(BOOT_DISK_OP);
    let crash_at = crash_at.as_deref().and_then(CrashPoint::from_name);
    match (crash_at, *power_at_sync) {
        _ if at_disk_op => BootFault::CrashAtDiskOp(*hit),
        (Some(point), _) => BootFault::CrashAt(point, *hit),
        (None, true) => BootFault::PowerAtSync,
        (None, false) => BootFault::None,
    }
}
