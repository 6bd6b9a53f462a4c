//! The command line: clap's raw arguments (`args`) and their checked form (`check`: a
//! [`Plan`] for flags, [`Checked`] for what every crawl shares) that the runs use.

mod args;
mod check;

pub use args::*;
pub use check::*;
