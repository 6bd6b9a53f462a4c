//! Signals: the first SIGINT or SIGTERM stops a run in order (no new jobs, the ones in flight get
//! a grace period, the partial summary is printed); a second one exits at once.

use actix_rt::signal::unix::{signal, Signal, SignalKind};

use crate::report::EXIT_INTERRUPTED;

/// SIGINT and SIGTERM, caught from the moment this is created (before anything is written), so a
/// signal at any point of the crawl gets the orderly stop rather than the default death.
pub(crate) struct Signals {
    int: Option<Signal>,
    term: Option<Signal>,
}

impl Signals {
    pub(crate) fn install() -> Self {
        Signals {
            int: signal(SignalKind::interrupt()).ok(),
            term: signal(SignalKind::terminate()).ok(),
        }
    }

    async fn next(&mut self) {
        async fn recv(s: &mut Option<Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            _ = recv(&mut self.int) => {}
            _ = recv(&mut self.term) => {}
        }
    }

    /// Resolves on the first signal; from then on, a second one exits the process at once.
    pub(crate) async fn first_then_exit_on_second(mut self) {
        self.next().await;
        eprintln!(
            "flags: stopping: in-flight requests get a few seconds; signal again to quit now"
        );
        actix_rt::spawn(async move {
            self.next().await;
            std::process::exit(EXIT_INTERRUPTED as i32);
        });
    }
}
