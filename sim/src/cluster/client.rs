//! The client: one request at a time to the member it believes leads,
//! retried elsewhere on a redirect or a timeout. Every response it gets is an
//! acknowledgement the durability check holds the cluster to.

use super::wire::{TAG, Wire, client_addr, member_addr};
use super::world::World;
use madsim::net::Endpoint;
use replica::proto::Request;
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
        if world.lock().stop_client {
            return;
        }
        let req = world.lock().next_request();
        for _ in 0..MAX_ATTEMPTS {
            let _ = ep
                .send_to_raw(
                    member_addr(target),
                    TAG,
                    Box::new(Wire::Request(req.clone())),
                )
                .await;
            match madsim::time::timeout(REPLY_TIMEOUT, reply_to(&ep, &req)).await {
                Ok(Some(Wire::Response(resp))) => {
                    let now = world.now_ms();
                    world.lock().ack(now, &req, &resp);
                    break;
                }
                Ok(Some(Wire::NotLeader { leader, .. })) if leader != 0 && leader != target => {
                    target = leader;
                }
                _ => {
                    target = target % nodes + 1;
                    madsim::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
}

/// Waits for the reply to `req`, dropping stale replies to earlier requests.
async fn reply_to(ep: &Endpoint, req: &Request) -> Option<Wire> {
    loop {
        let (payload, _) = ep.recv_from_raw(TAG).await.ok()?;
        let Ok(wire) = payload.downcast::<Wire>() else {
            continue;
        };
        match *wire {
            Wire::Response(ref r) if r.id == req.id => return Some(*wire),
            Wire::NotLeader { request_id, .. } if request_id == req.id => return Some(*wire),
            _ => {}
        }
    }
}
