//! A member's process: a madsim node task that boots the store from its
//! disk, then ticks, receives and handles raft's Ready until it stops. Its
//! memory (the node, pending requests, the inbox) dies with the madsim node;
//! its disk lives in the world.

use super::wire::{TAG, Wire, member_addr};
use super::world::World;
use madsim::net::Endpoint;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Inbox = Arc<Mutex<VecDeque<(Wire, SocketAddr)>>>;

/// How often a member looks at its inbox.
const POLL_MS: u64 = 2;

/// The entry point of member `id`'s madsim node (run again on restart).
pub async fn member_main(world: Arc<World>, id: u64) {
    let now = world.now_ms();
    if !world.lock().open_member(id, now) {
        return;
    }
    let ep = match Endpoint::bind(member_addr(id)).await {
        Ok(ep) => Arc::new(ep),
        Err(e) => {
            world
                .lock()
                .event(now, Some(id), format_args!("cannot bind: {e}"));
            return;
        }
    };
    let inbox: Inbox = Arc::default();
    madsim::task::spawn(receive(ep.clone(), inbox.clone()));
    let mut next_tick = now + world.lock().tick_delay_ms(id);
    loop {
        // Messages are handled every millisecond or two; raft's logical
        // clock ticks every `tick_ms` plus this member's seeded jitter.
        madsim::time::sleep(Duration::from_millis(POLL_MS)).await;
        let batch: Vec<_> = inbox
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        let now = world.now_ms();
        let tick = now >= next_tick;
        if tick {
            next_tick = now + world.lock().tick_delay_ms(id);
        } else if batch.is_empty() {
            continue;
        }
        let Some(out) = world.lock().step_member(id, batch, now, tick) else {
            return;
        };
        for (dst, wire) in out {
            // A send to an unreachable peer is the network's business.
            let _ = ep.send_to_raw(dst, TAG, Box::new(wire)).await;
        }
    }
}

async fn receive(ep: Arc<Endpoint>, inbox: Inbox) {
    while let Ok((payload, from)) = ep.recv_from_raw(TAG).await {
        if let Ok(wire) = payload.downcast::<Wire>() {
            inbox
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_back((*wire, from));
        }
    }
}
