//! The client: one operation at a time. A request goes to the member it
//! believes leads, retried elsewhere on a redirect or a timeout; a read to
//! a member drawn for it (any member serves a serializable read, and any
//! member with a leader a linearizable one). Every response it
//! gets is an acknowledgement the checkers hold the cluster to; every
//! operation goes into the client history with its invoke and return time,
//! and one whose session gave up stays indeterminate there.

use super::wire::{TAG, Wire, client_addr, member_addr, member_of};
use super::world::World;
use crate::linearize::Call;
use madsim::net::Endpoint;
use replica::proto::{ConfChangeRequest, Request, Response};
use std::sync::Arc;
use std::time::Duration;

const REPLY_TIMEOUT: Duration = Duration::from_millis(400);
const MAX_ATTEMPTS: u32 = 12;

/// One client session (`session` picks its port); several run at once.
pub async fn client_main(world: Arc<World>, session: u16) {
    let Ok(ep) = Endpoint::bind(client_addr(session)).await else {
        return;
    };
    let nodes = world.lock().cfg.nodes;
    let interval = Duration::from_millis(world.lock().cfg.request_interval_ms);
    let mut target = u64::from(session) % nodes + 1;
    let mut recent: Option<Vec<u8>> = None;
    loop {
        madsim::time::sleep(interval).await;
        if world.lock().history.is_stopped() {
            return;
        }
        let call = world.lock().next_call(recent.as_deref());
        if let Call::Write(req) = &call
            && let Some(key) = crate::workload::key_of(req)
        {
            recent = Some(key.to_vec());
        }
        let op = {
            let now = world.now_us();
            world
                .lock()
                .history
                .invoked(session.into(), call.clone(), now)
        };
        // A read goes to a member drawn for it (any member serves reads).
        let mut drawn;
        let to = match &call {
            Call::Read { .. } => {
                drawn = world.lock().history.read_member(nodes);
                &mut drawn
            }
            Call::Write(_) => &mut target,
        };
        let answer =
            send_until_answered(&ep, &wire_of(&call), call.id(), to, nodes, MAX_ATTEMPTS).await;
        if let (Some((resp, _)), Call::Write(req)) = (&answer, &call) {
            let now = world.now_ms();
            world.lock().ack(now, req, resp);
        }
        let now = world.now_us();
        world.lock().returned(op, answer, now);
    }
}

/// What goes over the wire for `call`.
fn wire_of(call: &Call) -> Wire {
    match call {
        Call::Write(req) => Wire::Request(req.clone()),
        Call::Read {
            id,
            range,
            serializable,
        } => Wire::Read {
            id: *id,
            range: range.clone(),
            serializable: *serializable,
        },
    }
}

/// Sends `wire` (request `id`) until a member answers it, at most
/// `attempts` times: first to `target`, then to the leader a refusal names,
/// or else, after a short pause, to the next of the `slots` members.
/// `target` carries over between requests: it ends at the member that
/// answered (or the one to try next), where the session's next request
/// goes first. The answer comes with the member that gave it.
async fn send_until_answered(
    ep: &Endpoint,
    wire: &Wire,
    id: u64,
    target: &mut u64,
    slots: u64,
    attempts: u32,
) -> Option<(Response, Option<u64>)> {
    for _ in 0..attempts {
        let _ = ep
            .send_to_raw(member_addr(*target), TAG, Box::new(wire.clone()))
            .await;
        match madsim::time::timeout(REPLY_TIMEOUT, reply_to(ep, id)).await {
            Ok(Some((Wire::Response(resp), from))) => return Some((resp, member_of(from))),
            Ok(Some((Wire::NotLeader { leader, .. }, _))) if leader != 0 && leader != *target => {
                *target = leader;
            }
            _ => {
                *target = *target % slots + 1;
                madsim::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    None
}

/// Waits for the reply to request `id`, dropping stale replies.
async fn reply_to(ep: &Endpoint, id: u64) -> Option<(Wire, std::net::SocketAddr)> {
    loop {
        let (payload, from) = ep.recv_from_raw(TAG).await.ok()?;
        let Ok(wire) = payload.downcast::<Wire>() else {
            continue;
        };
        match *wire {
            Wire::Response(ref r) if r.id == id => return Some((*wire, from)),
            Wire::NotLeader { request_id, .. } if request_id == id => return Some((*wire, from)),
            _ => {}
        }
    }
}

/// What a scenario asks its client session to do.
#[derive(Debug, Clone)]
pub enum ScriptOp {
    Request(Request),
    ConfChange(ConfChangeRequest),
    /// A read (its id is given by the session), sent first to `member`
    /// if one is named.
    Read {
        range: replica::proto::RangeRequest,
        serializable: bool,
        member: Option<u64>,
    },
}

/// One scripted request and where its response goes (`None`: never
/// acknowledged).
pub struct ScriptRequest {
    pub op: ScriptOp,
    pub reply: futures_channel::oneshot::Sender<Option<Response>>,
}

/// How many times a scripted request is sent before it is given up.
const SCRIPT_ATTEMPTS: u32 = 40;

/// The scenario's session number in the client history.
const SCRIPT_SESSION: u16 = 100;

/// The scenario's client session: one scripted request at a time, retried
/// across members until a leader acknowledges it. Requests and reads go
/// into the client history like the random sessions' operations.
pub async fn script_session(
    world: Arc<World>,
    mut requests: futures_channel::mpsc::UnboundedReceiver<ScriptRequest>,
) {
    use futures_util::StreamExt;
    let Ok(ep) = Endpoint::bind(client_addr(SCRIPT_SESSION)).await else {
        return;
    };
    let slots = {
        let w = world.lock();
        w.cfg.nodes + w.cfg.spares
    };
    let mut target = 1;
    while let Some(req) = requests.next().await {
        let call = match &req.op {
            ScriptOp::Request(r) => Some(Call::Write(r.clone())),
            ScriptOp::Read {
                range,
                serializable,
                ..
            } => Some(Call::Read {
                id: world.lock().history.read_id(),
                range: range.clone(),
                serializable: *serializable,
            }),
            ScriptOp::ConfChange(_) => None,
        };
        if let ScriptOp::Read {
            member: Some(m), ..
        } = &req.op
        {
            target = *m;
        }
        let (wire, id) = match (&req.op, &call) {
            (ScriptOp::ConfChange(cc), _) => (Wire::ConfChange(cc.clone()), cc.request_id),
            (_, Some(call)) => (wire_of(call), call.id()),
            (_, None) => continue,
        };
        let op = call.clone().map(|call| {
            let now = world.now_us();
            let mut w = world.lock();
            w.count_call(&call);
            if let Call::Write(r) = &call {
                w.history.issued(r);
            }
            w.history.invoked(SCRIPT_SESSION.into(), call, now)
        });
        if call.is_none() {
            world.lock().stats.requests += 1;
        }
        let result = send_until_answered(&ep, &wire, id, &mut target, slots, SCRIPT_ATTEMPTS).await;
        if let (Some((resp, _)), Some(Call::Write(r))) = (&result, &call) {
            let now = world.now_ms();
            world.lock().ack(now, r, resp);
        }
        if let Some(op) = op {
            let now = world.now_us();
            world.lock().returned(op, result.clone(), now);
        }
        let _ = req.reply.send(result.map(|(resp, _)| resp));
    }
}
