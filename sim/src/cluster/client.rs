//! The client: one request at a time to the member it believes leads,
//! retried elsewhere on a redirect or a timeout. Every response it gets is an
//! acknowledgement the durability check holds the cluster to.

use super::wire::{TAG, Wire, client_addr, member_addr};
use super::world::World;
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
    loop {
        madsim::time::sleep(interval).await;
        if world.lock().history.is_stopped() {
            return;
        }
        let req = world.lock().next_request();
        let wire = Wire::Request(req.clone());
        let answer =
            send_until_answered(&ep, &wire, req.id, &mut target, nodes, MAX_ATTEMPTS).await;
        if let Some(resp) = answer {
            let now = world.now_ms();
            world.lock().ack(now, &req, &resp);
        }
    }
}

/// Sends `wire` (request `id`) until a member answers it, at most
/// `attempts` times: first to `target`, then to the leader a refusal names,
/// or else, after a short pause, to the next of the `slots` members.
/// `target` carries over between requests: it ends at the member that
/// answered (or the one to try next), where the session's next request
/// goes first.
async fn send_until_answered(
    ep: &Endpoint,
    wire: &Wire,
    id: u64,
    target: &mut u64,
    slots: u64,
    attempts: u32,
) -> Option<Response> {
    for _ in 0..attempts {
        let _ = ep
            .send_to_raw(member_addr(*target), TAG, Box::new(wire.clone()))
            .await;
        match madsim::time::timeout(REPLY_TIMEOUT, reply_to(ep, id)).await {
            Ok(Some(Wire::Response(resp))) => return Some(resp),
            Ok(Some(Wire::NotLeader { leader, .. })) if leader != 0 && leader != *target => {
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
async fn reply_to(ep: &Endpoint, id: u64) -> Option<Wire> {
    loop {
        let (payload, _) = ep.recv_from_raw(TAG).await.ok()?;
        let Ok(wire) = payload.downcast::<Wire>() else {
            continue;
        };
        match *wire {
            Wire::Response(ref r) if r.id == id => return Some(*wire),
            Wire::NotLeader { request_id, .. } if request_id == id => return Some(*wire),
            _ => {}
        }
    }
}

/// What a scenario asks its client session to do.
#[derive(Debug, Clone)]
pub enum ScriptOp {
    Request(Request),
    ConfChange(ConfChangeRequest),
}

/// One scripted request and where its response goes (`None`: never
/// acknowledged).
pub struct ScriptRequest {
    pub op: ScriptOp,
    pub reply: futures_channel::oneshot::Sender<Option<Response>>,
}

/// How many times a scripted request is sent before it is given up.
const SCRIPT_ATTEMPTS: u32 = 40;

/// The scenario's client session: one scripted request at a time, retried
/// across members until a leader acknowledges it.
pub async fn script_session(
    world: Arc<World>,
    mut requests: futures_channel::mpsc::UnboundedReceiver<ScriptRequest>,
) {
    use futures_util::StreamExt;
    let Ok(ep) = Endpoint::bind(client_addr(100)).await else {
        return;
    };
    let slots = {
        let w = world.lock();
        w.cfg.nodes + w.cfg.spares
    };
    let mut target = 1;
    while let Some(req) = requests.next().await {
        world.lock().stats.requests += 1;
        let (wire, id) = match &req.op {
            ScriptOp::Request(r) => {
                world.lock().history.issued(r);
                (Wire::Request(r.clone()), r.id)
            }
            ScriptOp::ConfChange(cc) => (Wire::ConfChange(cc.clone()), cc.request_id),
        };
        let result = send_until_answered(&ep, &wire, id, &mut target, slots, SCRIPT_ATTEMPTS).await;
        if let (Some(resp), ScriptOp::Request(r)) = (&result, &req.op) {
            let now = world.now_ms();
            world.lock().ack(now, r, resp);
        }
        let _ = req.reply.send(result);
    }
}
