//! Who is still alive: every engine actor counts itself in when it starts and out when it stops,
//! so a run returns only once everything it started has ended (no actor, timer, connection or
//! request of a finished run lingers in a long-lived program).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Engine actors alive in this process, all runs together.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// The engine actors of this process that have started and not yet stopped, over every run. A
/// program that runs crawls one after another can check that none is left behind.
pub fn live_actors() -> usize {
    LIVE.load(Ordering::SeqCst)
}

/// The live actors of one run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Life(Arc<AtomicUsize>);

impl Life {
    /// An actor of this run started.
    pub fn born(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        LIVE.fetch_add(1, Ordering::SeqCst);
    }

    /// An actor of this run stopped.
    pub fn died(&self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }

    /// How many actors of this run are alive.
    pub fn live(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}
