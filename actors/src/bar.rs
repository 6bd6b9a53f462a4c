//! The progress display the reporter drives: an indicatif bar on stderr with the `progress-bar`
//! feature (on by default), nothing at all without it, so an embedding program can leave every
//! line of terminal code out of its build.

use crate::config::Progress;

#[cfg(feature = "progress-bar")]
pub(crate) use with_bar::Bar;
#[cfg(not(feature = "progress-bar"))]
pub(crate) use without_bar::Bar;

#[cfg(feature = "progress-bar")]
mod with_bar {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

    use super::Progress;

    /// An indicatif bar: a spinner until the job count is known, then a bar.
    pub(crate) struct Bar(ProgressBar);

    impl Bar {
        /// Drawn only when asked for and stderr is a terminal.
        pub fn new(progress: Progress) -> Self {
            let target = match progress {
                Progress::Bar if std::io::IsTerminal::is_terminal(&std::io::stderr()) => {
                    ProgressDrawTarget::stderr_with_hz(10)
                }
                _ => ProgressDrawTarget::hidden(),
            };
            let bar = ProgressBar::with_draw_target(None, target);
            bar.set_style(spinner_style());
            Bar(bar)
        }

        pub fn is_hidden(&self) -> bool {
            self.0.is_hidden()
        }

        pub fn inc(&self) {
            self.0.inc(1);
        }

        pub fn set_length(&self, jobs: u64) {
            if self.0.length().is_none() {
                self.0.set_style(bar_style());
            }
            self.0.set_length(jobs);
        }

        pub fn set_message(&self, msg: String) {
            self.0.set_message(msg);
        }

        /// Leaves the bar on screen, full (`done`) or where the run stopped.
        pub fn end(&self, done: bool) {
            if done {
                self.0.finish();
            } else {
                self.0.abandon();
            }
        }
    }

    fn spinner_style() -> ProgressStyle {
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {pos} done, {rate} | {wide_msg}",
        )
        .map(with_rate)
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
    }

    fn bar_style() -> ProgressStyle {
        ProgressStyle::with_template(
            "[{elapsed_precise}] {bar:30} {pos}/{len} {rate} ETA {eta} | {wide_msg}",
        )
        .map(with_rate)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
    }

    /// Jobs per second as a whole number (indicatif's `{per_sec}` prints four decimals).
    fn with_rate(style: ProgressStyle) -> ProgressStyle {
        style.with_key(
            "rate",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0}/s", state.per_sec());
            },
        )
    }
}

#[cfg(not(feature = "progress-bar"))]
mod without_bar {
    use super::Progress;

    /// No display: built without the `progress-bar` feature.
    pub(crate) struct Bar;

    impl Bar {
        pub fn new(_: Progress) -> Self {
            Bar
        }

        pub fn is_hidden(&self) -> bool {
            true
        }

        pub fn inc(&self) {}

        pub fn set_length(&self, _: u64) {}

        pub fn set_message(&self, _: String) {}

        pub fn end(&self, _: bool) {}
    }
}
