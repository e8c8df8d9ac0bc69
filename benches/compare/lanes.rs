//! rtt, churn and bulk, interleaved finely. Every implementation's session is set up side by side
//! in one runtime (a lane each), then each runs `warmup` uncounted rounds, then the counted rounds
//! in blocks ([`BLOCKS`] at most), the lanes taking turns block by block. On this shared virtual
//! machine the same code's round trip moves by a third between processes run a second apart, more
//! than these rows tell apart; blocks of a few tens of milliseconds in turn give every
//! implementation the same machine. A lane's first rounds after another's block are not the same
//! as the rest: each block begins with a tenth of its rounds uncounted ([`SETTLE`]), and the order
//! of the turns is shuffled anew for every block ([`order`]), so that no lane always follows the
//! same other one (benches/README.md: with a fixed order, which lane led could depend on the lanes
//! beside it).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::future::RemoteHandle;

use crate::peers::{self, Impl, Side};
use crate::rt::{Net, NetKind, Rt, RtKind, Spawner};
use crate::scenarios::Block;

/// Blocks each lane runs, taking turns, at most.
pub const BLOCKS: usize = 20;
/// The share of a block's rounds run uncounted before them, one in so many.
pub const SETTLE: usize = 10;

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
    /// Blocks to count them in (1 to [`BLOCKS`]).
    pub blocks: usize,
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
    let blocks = l.blocks.clamp(1, BLOCKS);
    let per_block = l.rounds.div_ceil(blocks);
    let asks = std::iter::once(l.warmup)
        .chain((0..blocks).map(|b| per_block.min(l.rounds.saturating_sub(b * per_block))));
    for (b, n) in asks.enumerate() {
        let settle = if b == 0 { 0 } else { n / SETTLE };
        for i in order(lanes.len(), b) {
            let lane = &mut lanes[i];
            let Ok(kept) = &mut lane.done else { continue };
            let (tx, rx) = oneshot::channel();
            if n == 0 || lane.blocks.unbounded_send((settle, n, tx)).is_err() {
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

/// The order of the lanes' turns in block `b`: a shuffle, the same in every run (xorshift seeded
/// by `b`), so that no lane always follows the same other one.
fn order(count: usize, b: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..count).collect();
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (b as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    for i in (1..count).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    order
}
