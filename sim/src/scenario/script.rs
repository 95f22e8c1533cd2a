//! Executes a scenario's steps on the supervisor. Every wait polls the
//! supervisor, so restarts, heals and (with `[random]`) random faults go on
//! while the script waits.

use crate::checker::{Invariant, Violation};
use crate::cluster::client::{ScriptOp, ScriptRequest, script_session};
use crate::cluster::world::member_info;
use crate::fault::{ArmedCrash, CrashKind, DiskFault, PowerPlan};
use crate::run::{STEP_MS, Supervisor};
use crate::scenario_file::{Count, EioOn, Mode, Step, Target};
use crate::snapshot_view::Recorded;
use futures_channel::mpsc::{UnboundedSender, unbounded};
use futures_channel::oneshot;
use replica::crash_point::CrashPoint;
use replica::proto::{
    ClusterVersionSetRequest, CompactRequest, Compare, CompareResult, CompareTarget,
    ConfChangeKind, ConfChangeRequest, DeleteRangeRequest, DowngradeInfoSetRequest,
    MemberAttrSetRequest, PutRequest, Request, RequestOp, Response, TxnRequest, V2DeleteRequest,
    V2SetRequest, request, request_op,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a step may wait for the cluster before the scenario fails.
const STEP_LIMIT_MS: u64 = 30_000;
/// Request ids of scripted requests (apart from the random workload's).
const SCRIPT_ID_BASE: u64 = 1 << 40;

struct Script<'a> {
    sup: &'a mut Supervisor,
    /// The scenario's client session, started at its first request (a
    /// script of faults alone adds no task to the simulation, so it runs as
    /// the random run it was recorded from).
    session: Option<UnboundedSender<ScriptRequest>>,
    next_id: u64,
    /// The member the latest `crash`/`eio` step targeted.
    crashed: Option<u64>,
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

fn count(c: &Option<Count>, k: Option<u64>) -> u64 {
    match c {
        Some(Count::N(n)) => *n,
        Some(Count::Var(_)) => k.unwrap_or(1),
        None => 0,
    }
}

impl Script<'_> {
    fn fail(&mut self, message: String) {
        let now = self.sup.now_ms();
        self.sup.world.lock().violation(Violation {
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
                let now = self.sup.now_ms();
                self.sup
                    .world
                    .lock()
                    .event(now, None, format_args!("step: {step:?}"));
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
    async fn wait_for(&mut self, limit_ms: u64, done: impl Fn(&Supervisor) -> bool) -> bool {
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
            self.sup
                .client_node
                .spawn(script_session(self.sup.world.clone(), requests));
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

    async fn request(&mut self, kind: request::Kind) -> Result<Response, String> {
        self.next_id += 1;
        let req = Request {
            id: self.next_id,
            kind: Some(kind),
        };
        self.send(ScriptOp::Request(req)).await
    }

    async fn conf_change(
        &mut self,
        kind: ConfChangeKind,
        id: u64,
        learner: bool,
    ) -> Result<(), String> {
        self.next_id += 1;
        let cc = ConfChangeRequest {
            kind: kind as i32,
            node_id: id,
            member: Some(replica::proto::Member {
                is_learner: learner,
                ..member_info(id)
            }),
            request_id: self.next_id,
        };
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
    fn resolve(&self, target: &Target) -> Result<u64, String> {
        let w = self.sup.world.lock();
        let running = |s: &crate::cluster::world::Slot| s.node.is_some() && !s.removed;
        let leader = w
            .members
            .iter()
            .find(|(_, s)| s.node.as_ref().is_some_and(|n| n.is_leader()))
            .map(|(id, _)| *id);
        match target {
            Target::Id(id) => Ok(*id),
            Target::Role(r) if r == "isolated" => self
                .isolated
                .ok_or_else(|| "no member was isolated yet".to_string()),
            Target::Role(r) if r == "crashed" => self
                .crashed
                .ok_or_else(|| "no member was crashed yet".to_string()),
            Target::Role(r) if r == "leader" => {
                leader.ok_or_else(|| "no leader right now".to_string())
            }
            Target::Role(_) => w
                .members
                .iter()
                .find(|(id, s)| running(s) && Some(**id) != leader)
                .map(|(id, _)| *id)
                .ok_or_else(|| "no running follower right now".to_string()),
        }
    }

    fn crash_armed(&self, id: u64) -> bool {
        let w = self.sup.world.lock();
        w.members
            .get(&id)
            .is_some_and(|s| s.node.is_some() && (s.hook.is_armed() || s.disk.is_armed()))
    }

    fn is_down(&self, id: u64) -> bool {
        self.sup
            .world
            .lock()
            .members
            .get(&id)
            .is_some_and(|s| s.node.is_none())
    }

    async fn step(&mut self, step: &Step, k: Option<u64>) -> Result<(), String> {
        match step {
            Step::Put { key, value } => {
                self.request(request::Kind::Put(PutRequest {
                    key: key.clone().into_bytes(),
                    value: value.clone().into_bytes(),
                }))
                .await?;
            }
            Step::Puts {
                count: n,
                prefix,
                value_bytes,
            } => {
                for i in 0..*n {
                    let mut value = format!("v{i}");
                    if value.len() < *value_bytes {
                        value.push_str(&"x".repeat(value_bytes - value.len()));
                    }
                    self.request(request::Kind::Put(PutRequest {
                        key: format!("{prefix}{i:03}").into_bytes(),
                        value: value.into_bytes(),
                    }))
                    .await?;
                }
            }
            Step::Delete { key, range_end } => {
                self.request(request::Kind::DeleteRange(DeleteRangeRequest {
                    key: key.clone().into_bytes(),
                    range_end: range_end.clone().into_bytes(),
                }))
                .await?;
            }
            Step::Txn {
                key,
                version,
                then_value,
                else_value,
            } => {
                let put = |v: &str| RequestOp {
                    op: Some(request_op::Op::Put(PutRequest {
                        key: key.clone().into_bytes(),
                        value: v.as_bytes().to_vec(),
                    })),
                };
                self.request(request::Kind::Txn(TxnRequest {
                    compare: vec![Compare {
                        key: key.clone().into_bytes(),
                        target: CompareTarget::Version as i32,
                        result: CompareResult::Equal as i32,
                        number: *version,
                        value: Vec::new(),
                    }],
                    success: vec![put(then_value)],
                    failure: vec![put(else_value)],
                }))
                .await?;
            }
            Step::Compact { revision } => {
                self.request(request::Kind::Compact(CompactRequest {
                    revision: *revision,
                }))
                .await?;
            }
            Step::V2Set { path, value } => {
                self.request(request::Kind::V2Set(V2SetRequest {
                    path: path.clone(),
                    value: value.clone(),
                }))
                .await?;
            }
            Step::V2Delete { path, recursive } => {
                self.request(request::Kind::V2Delete(V2DeleteRequest {
                    path: path.clone(),
                    recursive: *recursive,
                }))
                .await?;
            }
            Step::ClusterVersion { version } => {
                self.request(request::Kind::ClusterVersionSet(ClusterVersionSetRequest {
                    version: version.clone(),
                }))
                .await?;
            }
            Step::MemberAttrs { member, name } => {
                self.request(request::Kind::MemberAttrSet(MemberAttrSetRequest {
                    member_id: *member,
                    name: name.clone(),
                    client_urls: vec![format!("http://10.0.0.{member}:2379")],
                }))
                .await?;
            }
            Step::Downgrade {
                enabled,
                target_version,
            } => {
                self.request(request::Kind::DowngradeInfoSet(DowngradeInfoSetRequest {
                    enabled: *enabled,
                    target_version: target_version.clone(),
                }))
                .await?;
            }
            Step::AddMember { id, learner } => {
                let kind = if *learner {
                    ConfChangeKind::AddLearnerNode
                } else {
                    ConfChangeKind::AddNode
                };
                self.conf_change(kind, *id, *learner).await?;
                self.sup.start_member(*id);
            }
            Step::PromoteMember { id } => {
                self.conf_change(ConfChangeKind::Promote, *id, false)
                    .await?;
            }
            Step::RemoveMember { id } => {
                self.conf_change(ConfChangeKind::RemoveNode, *id, false)
                    .await?;
                self.sup.retire(*id);
            }
            Step::Crash {
                member,
                mode,
                at,
                hit,
                after_ops,
                after_disk_ops,
                plan_seed,
            } => {
                let id = self.resolve(member)?;
                self.crashed = Some(id);
                let kind = mode.crash_kind();
                self.set_power_plan(id, *mode, *plan_seed);
                self.sup.held_down.insert(id);
                let point = at.as_deref().and_then(CrashPoint::from_name);
                let disk_ops = count(after_disk_ops, k);
                if let Some(point) = point {
                    let crash = ArmedCrash {
                        point,
                        hits: *hit,
                        kind,
                        after_ops: count(after_ops, k),
                    };
                    let w = self.sup.world.lock();
                    if let Some(slot) = w.members.get(&id) {
                        slot.hook.arm(crash);
                    }
                } else if disk_ops > 0 {
                    let mut w = self.sup.world.lock();
                    if let Some(slot) = w.members.get_mut(&id) {
                        slot.disk_crash_power = kind == CrashKind::Power;
                        slot.disk.arm(DiskFault::CrashAfterOps(disk_ops));
                    }
                } else {
                    self.sup.kill(id, kind == CrashKind::Power);
                }
            }
            Step::Eio {
                member,
                on,
                mode,
                plan_seed,
            } => {
                let id = self.resolve(member)?;
                self.crashed = Some(id);
                self.sup.held_down.insert(id);
                self.set_power_plan(id, *mode, *plan_seed);
                let fault = match on {
                    EioOn::Sync => DiskFault::FailNextSync,
                    EioOn::Write => DiskFault::FailNextWrite,
                };
                let w = self.sup.world.lock();
                if let Some(slot) = w.members.get(&id) {
                    slot.disk.arm(fault);
                }
            }
            Step::Restart {
                member,
                crash_at,
                hit,
                mode,
                plan_seed,
            } => {
                let id = self.resolve(member)?;
                if self.crash_armed(id)
                    && !self
                        .wait_for(STEP_LIMIT_MS, |s| {
                            s.world
                                .lock()
                                .members
                                .get(&id)
                                .is_none_or(|m| m.node.is_none())
                        })
                        .await
                {
                    return Err(format!(
                        "the crash armed on member {id} never fired: the scenario does not reach its crash point"
                    ));
                }
                if !self.is_down(id) {
                    self.sup.held_down.insert(id);
                    self.sup.kill(id, false);
                }
                // Let the supervisor take the stopped member down (and cut
                // its power if the crash asked for it) before the restart.
                self.sup.poll();
                self.sup.held_down.remove(&id);
                {
                    let mut w = self.sup.world.lock();
                    if let Some(slot) = w.members.get_mut(&id) {
                        slot.disk_crash_power = false;
                    }
                }
                let now = self.sup.now_ms();
                self.sup.restarts_due.insert(id, now);
                self.sup.poll();
                if let Some(point) = crash_at.as_deref().and_then(CrashPoint::from_name) {
                    return self
                        .crash_during_boot(id, point, *hit, *mode, *plan_seed)
                        .await;
                }
                let booted = self
                    .wait_for(STEP_LIMIT_MS, |s| {
                        s.world.lock().members.get(&id).is_none_or(|m| {
                            m.node.is_some()
                                || matches!(m.down, Some(crate::cluster::world::Down::Broken))
                        })
                    })
                    .await;
                if !booted {
                    return Err(format!("member {id} did not boot within 30s"));
                }
            }
            Step::Partition { member, ms } => {
                let id = self.resolve(member)?;
                let until = ms.map_or(u64::MAX, |ms| self.sup.now_ms() + ms);
                self.sup.partition(id, until);
            }
            Step::Heal => self.sup.heal_due(true),
            Step::Isolate { member } => {
                let id = self.resolve(member)?;
                self.isolated = Some(id);
                self.sup.isolate(id);
            }
            Step::PutsTo {
                member,
                count: n,
                prefix,
            } => {
                let id = self.resolve(member)?;
                let mut requests = Vec::new();
                for i in 0..*n {
                    self.next_id += 1;
                    requests.push(Request {
                        id: self.next_id,
                        kind: Some(request::Kind::Put(PutRequest {
                            key: format!("{prefix}{i:03}").into_bytes(),
                            value: format!("unacknowledged-{i}").into_bytes(),
                        })),
                    });
                }
                self.sup
                    .client_node
                    .spawn(send_unacknowledged(id, requests));
                self.sleep_polling(STEP_MS).await;
            }
            Step::Expect { stat, at_least } => {
                let value = self.sup.stat(stat);
                if value < *at_least {
                    return Err(format!(
                        "expected {stat} >= {at_least}, got {value}: the scenario did not exercise what it is about"
                    ));
                }
            }
            Step::ForceSnapshot { member } => {
                let id = self.resolve(member)?;
                let result = {
                    let mut w = self.sup.world.lock();
                    w.members
                        .get_mut(&id)
                        .and_then(|s| s.node.as_mut())
                        .map(|n| n.force_snapshot())
                };
                match result {
                    Some(Ok(_)) => {}
                    Some(Err(e)) if e.crashed().is_some() => {
                        // A crash armed at a snapshot crash point fired.
                        let now = self.sup.now_ms();
                        self.sup
                            .world
                            .lock()
                            .member_stopped(id, now, &e.to_string());
                    }
                    Some(Err(e)) => return Err(format!("force_snapshot on member {id}: {e}")),
                    None => return Err(format!("force_snapshot: member {id} is not running")),
                }
            }
            Step::Wait { ms } => self.sleep_polling(*ms).await,
            Step::WaitUntil { ms } => {
                let now = self.sup.now_ms();
                self.sleep_polling(ms.saturating_sub(now)).await;
            }
            Step::WaitConverged => self.converge().await?,
            Step::Check => {
                self.converge().await?;
                self.sup.final_checks();
            }
            Step::Snapshot { label } => {
                self.converge().await?;
                self.record(label);
            }
            Step::Repeat { times, steps } => {
                for i in 1..=u64::from(*times) {
                    self.steps(steps, Some(i)).await?;
                }
            }
        }
        Ok(())
    }

    /// Arms a crash inside the boot that `restart` just started, and waits
    /// for it to fire; the member then stays down.
    async fn crash_during_boot(
        &mut self,
        id: u64,
        point: CrashPoint,
        hits: u32,
        mode: Mode,
        plan_seed: Option<u64>,
    ) -> Result<(), String> {
        self.crashed = Some(id);
        self.sup.held_down.insert(id);
        let boots_before = self
            .sup
            .world
            .lock()
            .members
            .get(&id)
            .map_or(0, |m| m.boots);
        {
            let mut w = self.sup.world.lock();
            if let Some(slot) = w.members.get_mut(&id) {
                slot.power_plan = mode.power_loss().map(|kind| PowerPlan {
                    kind,
                    seed: plan_seed,
                });
                slot.hook.arm(ArmedCrash {
                    point,
                    hits,
                    kind: mode.crash_kind(),
                    after_ops: 0,
                });
            }
        }
        let settled = self
            .wait_for(STEP_LIMIT_MS, |s| {
                s.world
                    .lock()
                    .members
                    .get(&id)
                    .is_none_or(|m| m.boots > boots_before)
            })
            .await;
        let booted = self
            .sup
            .world
            .lock()
            .members
            .get(&id)
            .is_some_and(|m| m.node.is_some());
        if !settled || booted {
            return Err(format!(
                "member {id} booted without reaching {point} (hit {hits}): there was nothing to crash in its recovery"
            ));
        }
        Ok(())
    }

    /// How the member's next power loss goes (a process crash: none).
    fn set_power_plan(&mut self, id: u64, mode: Mode, seed: Option<u64>) {
        if let Some(slot) = self.sup.world.lock().members.get_mut(&id) {
            slot.power_plan = mode.power_loss().map(|kind| PowerPlan { kind, seed });
        }
    }

    async fn converge(&mut self) -> Result<(), String> {
        if self.wait_for(STEP_LIMIT_MS, |s| s.converged()).await {
            Ok(())
        } else {
            Err("the running members did not converge within 30s".into())
        }
    }

    fn record(&mut self, label: &str) {
        let mut members = BTreeMap::new();
        let held = self.sup.held_down.clone();
        let mut w = self.sup.world.lock();
        for (id, slot) in &w.members {
            if held.contains(id) || slot.removed {
                continue;
            }
            if let Some(dump) = slot
                .node
                .as_ref()
                .and_then(|n| n.member().state_dump().ok())
            {
                let value = serde_json::to_value(&dump).unwrap_or_default();
                members.insert(format!("m{id}"), crate::snapshot_view::snapshot_view(value));
            }
        }
        w.recorded.push(Recorded {
            label: label.to_string(),
            members,
        });
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
