//! A downloaded body on its way to the sink: whole in memory, or written in pieces as it arrived
//! (to the sink's own [`Part`], or to a spool file for a sink that does not stream), so memory per
//! job stays a small buffer whatever the body limit allows.

use std::io::{Seek, Write};
use std::path::Path;

use bytes::Bytes;
use sha1::{Digest, Sha1};

use crate::job::Job;
use crate::sink::{Part, Sink};

/// A complete body: in memory, or already written in pieces.
pub(crate) enum Body {
    Memory(Bytes),
    /// Boxed: its digest state is large, and most bodies are small.
    Parts(Box<PartState>),
}

/// A body being written in pieces. Dropping it discards the body.
pub(crate) struct PartState {
    job: Job,
    inner: Partial,
    bytes: u64,
    /// The SHA-1 of what was written (for the crawl's index and archives).
    sha1: Sha1,
}

enum Partial {
    Streaming(Box<dyn Part>),
    /// For a sink that does not stream: the pieces go to an anonymous temp file (deleted by the
    /// system when closed), and the sink reads them from there.
    Spooled(std::fs::File),
}

impl PartState {
    /// Starts a body of `job` in `sink`: its own part, or a spool file.
    pub fn begin(sink: &dyn Sink, job: Job) -> std::io::Result<Self> {
        let inner = match sink.begin(&job)? {
            Some(part) => Partial::Streaming(part),
            None => Partial::Spooled(tempfile::tempfile()?),
        };
        Ok(PartState {
            job,
            inner,
            bytes: 0,
            sha1: Sha1::new(),
        })
    }

    /// Appends the next piece.
    pub fn write(&mut self, piece: &[u8]) -> std::io::Result<()> {
        match &mut self.inner {
            Partial::Streaming(p) => p.write(piece)?,
            Partial::Spooled(f) => f.write_all(piece)?,
        }
        self.bytes += piece.len() as u64;
        self.sha1.update(piece);
        Ok(())
    }

    /// Completes the body as `file`; returns its length and SHA-1.
    pub fn commit(self, sink: &dyn Sink, file: &Path) -> std::io::Result<(u64, [u8; 20])> {
        let bytes = self.bytes;
        let sha1 = self.sha1.finalize().into();
        match self.inner {
            Partial::Streaming(p) => p.commit(file)?,
            Partial::Spooled(mut spool) => {
                spool.rewind()?;
                let mut body = std::io::BufReader::with_capacity(64 * 1024, spool);
                sink.store(&self.job, file, &mut body)?;
            }
        }
        Ok((bytes, sha1))
    }
}
