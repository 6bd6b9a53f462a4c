//! Who is still alive: every engine actor (and every task a run starts on its own) counts itself
//! in when it starts and out when it stops, so a run returns only once everything it started has
//! ended (no actor, timer, connection or request of a finished run lingers in a long-lived
//! program).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// Engine actors alive in this process, all runs together.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// The engine actors of this process that have started and not yet stopped, over every run. A
/// program that runs crawls one after another can check that none is left behind.
pub fn live_actors() -> usize {
    LIVE.load(Ordering::SeqCst)
}

/// The live actors of one run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Life(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    live: AtomicUsize,
    /// Told when the last one stops.
    none: Notify,
}

impl Life {
    /// An actor of this run started.
    pub fn born(&self) {
        self.0.live.fetch_add(1, Ordering::SeqCst);
        LIVE.fetch_add(1, Ordering::SeqCst);
    }

    /// An actor of this run stopped.
    pub fn died(&self) {
        LIVE.fetch_sub(1, Ordering::SeqCst);
        if self.0.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.none.notify_waiters();
        }
    }

    /// Counts a task in until the returned guard is dropped.
    pub fn task(&self) -> Alive {
        self.born();
        Alive(self.clone())
    }

    /// Resolves once no actor of this run is alive.
    pub async fn ended(&self) {
        loop {
            let told = self.0.none.notified();
            tokio::pin!(told);
            told.as_mut().enable();
            if self.0.live.load(Ordering::SeqCst) == 0 {
                return;
            }
            told.await;
        }
    }
}

/// A task of a run, alive until dropped.
pub(crate) struct Alive(Life);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.died();
    }
}

/// The message of a caught panic payload (an actor's or a sink's).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}
