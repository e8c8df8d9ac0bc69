//! rtt and churn, interleaved finely. Every implementation's session is set up side by side in one
//! runtime (a lane each), then each runs `warmup` uncounted rounds, then the counted rounds in
//! [`BLOCKS`] blocks, the lanes taking turns block by block, the order rotating. On this shared
//! virtual machine the same code's round trip moves by a third between processes run a second
//! apart, more than these rows tell apart; blocks of a few tens of milliseconds in turn give every
//! implementation the same machine.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::future::RemoteHandle;

use crate::peers::{self, Impl, Side};
use crate::rt::{Net, NetKind, Rt, RtKind, Spawner};
use crate::scenarios::Block;

/// Blocks each lane runs, taking turns.
pub const BLOCKS: usize = 20;

/// What to run side by side.
pub struct Lanes {
    /// One lane each, in this order.
    pub impls: Vec<Impl>,
    pub rtk: RtKind,
    pub netk: NetKind,
    /// Uncounted rounds each lane runs first.
    pub warmup: usize,
    /// Counted rounds of each lane, over all blocks.
    pub rounds: usize,
    /// How long one block may take.
    pub timeout: Duration,
}

/// One implementation's session and the task running its scenario.
struct Lane<T> {
    imp: Impl,
    blocks: mpsc::UnboundedSender<Block<T>>,
    done: Result<Vec<T>, String>,
    _task: RemoteHandle<()>,
}

/// Runs `lane` (the scenario, serving the blocks asked of it) for every implementation of `l`.
/// Returns each lane's counted blocks, or why it failed.
pub fn run<T, F, Fut>(l: &Lanes, lane: F) -> Vec<(Impl, Result<Vec<T>, String>)>
where
    T: Send + 'static,
    F: Fn(Spawner, Side, Side, mpsc::UnboundedReceiver<Block<T>>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let rt = Rt::new(l.rtk);
    let sp = rt.spawner();
    let mut lanes: Vec<Lane<T>> = l
        .impls
        .iter()
        .map(|&imp| {
            let (sp2, rtk, netk) = (sp.clone(), l.rtk, l.netk);
            let sides = rt.run(async move {
                let net = Arc::new(Net::new(netk, rtk).await?);
                peers::pair(imp, &sp2, net).await
            });
            let (tx, rx) = mpsc::unbounded();
            let (done, task) = match sides {
                Ok((c, s)) => (Ok(Vec::new()), sp.spawn(lane(sp.clone(), c, s, rx))),
                Err(e) => (Err(format!("session: {e}")), sp.spawn(async {})),
            };
            Lane {
                imp,
                blocks: tx,
                done,
                _task: task,
            }
        })
        .collect();
    let per_block = l.rounds.div_ceil(BLOCKS);
    let asks = std::iter::once(l.warmup)
        .chain((0..BLOCKS).map(|b| per_block.min(l.rounds.saturating_sub(b * per_block))));
    for (b, n) in asks.enumerate() {
        let count = lanes.len();
        for i in 0..count {
            let lane = &mut lanes[(i + b) % count];
            let Ok(kept) = &mut lane.done else { continue };
            let (tx, rx) = oneshot::channel();
            if n == 0 || lane.blocks.unbounded_send((n, tx)).is_err() {
                continue;
            }
            let (sp2, timeout) = (sp.clone(), l.timeout);
            let got = rt.run(async move {
                match sp2.timeout(timeout, rx).await {
                    Some(Ok(Ok(v))) => Ok(v),
                    Some(Ok(Err(e))) => Err(format!("{e}")),
                    Some(Err(_)) => Err("the lane ended".to_string()),
                    None => Err(format!("timed out after {} s", timeout.as_secs())),
                }
            });
            match got {
                Ok(v) if b > 0 => kept.push(v),
                Ok(_) => {} // the warm-up
                Err(e) => lane.done = Err(e),
            }
        }
    }
    lanes.into_iter().map(|l| (l.imp, l.done)).collect()
}
