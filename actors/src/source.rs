//! Job sources that must not run on the event loop.
//!
//! [`Crawler::run`](crate::Crawler::run) pulls an `Iterator` on the run's event loop, which suits
//! a list in memory. A source that may block (standard input, a file on a slow disk, a pipe fed by
//! another program) goes through [`blocking_source`]: a thread of its own reads it, at most
//! `look_ahead` jobs ahead of the crawl, and the crawl receives them as a `Stream`
//! ([`Crawler::run_stream`](crate::Crawler::run_stream)) without ever waiting for a read.

use futures_util::Stream;
use tokio::sync::mpsc;

use crate::job::Job;

/// Reads `jobs` on a thread of its own, at most `look_ahead` jobs (at least 1) ahead of the
/// crawl. The thread ends when the source does, or at its next job once the stream is dropped (a
/// read blocked on a pipe ends when the pipe gives a line or closes).
pub fn blocking_source<I>(jobs: I, look_ahead: usize) -> impl Stream<Item = Job>
where
    I: IntoIterator<Item = Job>,
    I::IntoIter: Send + 'static,
{
    let (tx, rx) = mpsc::channel(look_ahead.max(1));
    let jobs = jobs.into_iter();
    let reader = std::thread::Builder::new()
        .name("flags-source".into())
        .spawn(move || {
            for job in jobs {
                if tx.blocking_send(job).is_err() {
                    return; // the crawl is over
                }
            }
        });
    if let Err(e) = reader {
        eprintln!("flags: cannot start the thread that reads the jobs: {e}");
    }
    futures_util::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|job| (job, rx)) },
    )
}
