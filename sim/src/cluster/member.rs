//! A member's process: a madsim node task that boots the store from its
//! disk, then ticks, receives and handles raft's Ready until it stops. Its
//! memory (the node, pending requests, the inbox) dies with the madsim node;
//! its disk lives in the world.

use super::links::Fate;
use super::member_step::StepOutcome;
use super::wire::{TAG, Wire, member_addr};
use super::world::World;
use futures_channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use futures_util::StreamExt;
use madsim::net::Endpoint;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The entry point of member `id`'s madsim node (run again on restart).
pub async fn member_main(world: Arc<World>, id: u64) {
    let now = world.now_ms();
    if !world.lock().open_member(id, now) {
        return;
    }
    disk_time(&world, id).await;
    let ep = match Endpoint::bind(member_addr(id)).await {
        Ok(ep) => Arc::new(ep),
        Err(e) => {
            world
                .lock()
                .event(now, Some(id), format_args!("cannot bind: {e}"));
            return;
        }
    };
    let (tx, mut rx) = unbounded();
    madsim::task::spawn(receive(ep.clone(), tx));
    let mut next_tick = now + world.lock().tick_delay_ms(id);
    loop {
        // Wake on the first message or at the next raft tick, whichever
        // comes first; raft's logical clock ticks every `tick_ms` plus this
        // member's seeded jitter.
        let wait = next_tick.saturating_sub(world.now_ms());
        let mut batch = Vec::new();
        if let Ok(Some(first)) = madsim::time::timeout(Duration::from_millis(wait), rx.next()).await
        {
            batch.push(first);
            drain(&mut rx, &mut batch);
        }
        if paused(&world, id).await {
            drain(&mut rx, &mut batch);
        }
        let now = world.now_ms();
        let tick = now >= next_tick;
        if tick {
            next_tick = now + world.lock().tick_delay_ms(id);
        }
        let (out, running) = match world.lock().step_member(id, batch, now, tick) {
            StepOutcome::Running(out) => (out, true),
            StepOutcome::Stopped(out) => (out, false),
        };
        disk_time(&world, id).await;
        for (dst, wire) in out {
            send(&world, &ep, id, dst, wire).await;
        }
        if !running {
            return;
        }
    }
}

/// Sleeps off the virtual time the member's disk operations since the last
/// call cost (none without disk time). The store is synchronous, so they
/// all took effect when it stepped; what waits is what follows them: its
/// messages and replies, its next step, and its next tick. A crash that
/// lands meanwhile finds their effects on the disk and its outputs unsent.
async fn disk_time(world: &World, id: u64) {
    let now = world.now_ms();
    let owed = world
        .lock()
        .slot(id)
        .map_or(Duration::ZERO, |s| s.disk.take_owed(now));
    if !owed.is_zero() {
        madsim::time::sleep(owed).await;
    }
}

/// Sleeps while the member's process is paused, and says whether it was.
/// It wakes as a descheduled process does: its inbox holds everything that
/// came meanwhile, and its raft clock ticks once, however long the pause.
async fn paused(world: &World, id: u64) -> bool {
    let now = world.now_ms();
    let until = world.lock().slot(id).and_then(|s| s.paused_until);
    match until {
        Some(until) if until > now => {
            madsim::time::sleep(Duration::from_millis(until - now)).await;
            true
        }
        _ => false,
    }
}

/// Sends one message as the scripted link rules say: lost, late, or twice.
async fn send(world: &World, ep: &Arc<Endpoint>, from: u64, dst: SocketAddr, wire: Wire) {
    let fate = match super::links::member_of(dst) {
        Some(to) => {
            let now = world.now_ms();
            world.lock().link_fate(from, to, now)
        }
        None => Fate::NORMAL,
    };
    if fate.delay_ms == 0 {
        for _ in 0..fate.copies {
            // A send to an unreachable peer is the network's business.
            let _ = ep.send_to_raw(dst, TAG, Box::new(wire.clone())).await;
        }
        return;
    }
    let ep = ep.clone();
    madsim::task::spawn(async move {
        madsim::time::sleep(Duration::from_millis(fate.delay_ms)).await;
        for _ in 0..fate.copies {
            let _ = ep.send_to_raw(dst, TAG, Box::new(wire.clone())).await;
        }
    });
}

/// Moves every message already queued into `batch`.
fn drain(rx: &mut UnboundedReceiver<(Wire, SocketAddr)>, batch: &mut Vec<(Wire, SocketAddr)>) {
    while let Ok(m) = rx.try_recv() {
        batch.push(m);
    }
}

async fn receive(ep: Arc<Endpoint>, tx: UnboundedSender<(Wire, SocketAddr)>) {
    while let Ok((payload, from)) = ep.recv_from_raw(TAG).await {
        if let Ok(wire) = payload.downcast::<Wire>()
            && tx.unbounded_send((*wire, from)).is_err()
        {
            return;
        }
    }
}
