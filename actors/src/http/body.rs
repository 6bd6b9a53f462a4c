//! Reading a body: within a size limit (announced or streamed), checked against its
//! `Content-Length`, and handed on in pieces when it is too large to hold in memory.

use awc::error::PayloadError;
use awc::http::header;
use awc::ClientResponse;
use bytes::{Bytes, BytesMut};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;

use super::record::{Cut, Tape};
use super::Failure;
use crate::job::ErrorKind;

/// Bodies up to this size are held in memory and stored in one go; larger ones are handed to a
/// [`Spill`] in pieces of this size as they arrive, so memory stays bounded by the pool size.
pub(crate) const STREAM_THRESHOLD: usize = 1 << 20;

/// Where the pieces of a body too large to hold in memory go while it is read (the fetcher hands
/// them to the writer).
pub(crate) trait Spill {
    /// Forget the pieces of an earlier attempt: the body starts again.
    fn reset(&mut self);
    /// Takes the next piece.
    fn spill(&mut self, piece: Bytes) -> LocalBoxFuture<'_, Result<(), Failure>>;
}

/// How a body was read.
pub(crate) enum Read {
    /// Whole, in memory.
    Memory(Bytes),
    /// Handed to the spill, in pieces.
    Spilled,
}

/// What to do at the limit.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum AtLimit {
    /// The body is an error (too large).
    Refuse,
    /// Keep the first `limit` bytes, drop the rest (robots.txt).
    Cut,
}

/// The bytes read and not yet handed on. The common small body arrives as one chunk and is kept
/// without copying.
#[derive(Default)]
struct Held {
    first: Option<Bytes>,
    buf: BytesMut,
}

impl Held {
    fn len(&self) -> usize {
        self.first.as_ref().map_or(0, Bytes::len) + self.buf.len()
    }

    fn push(&mut self, chunk: Bytes, capacity: usize) {
        match self.first.take() {
            None if self.buf.is_empty() => self.first = Some(chunk),
            prev => {
                if let Some(prev) = prev {
                    self.buf.reserve(capacity.max(prev.len() + chunk.len()));
                    self.buf.extend_from_slice(&prev);
                }
                self.buf.extend_from_slice(&chunk);
            }
        }
    }

    fn take(&mut self) -> Bytes {
        match self.first.take() {
            Some(b) => b,
            None => self.buf.split().freeze(),
        }
    }
}

/// Reads the whole body, at most `limit` bytes whether announced or streamed. With a spill,
/// bodies over [`STREAM_THRESHOLD`] are handed on in pieces as they arrive. With a tape, every
/// byte accepted is recorded as it arrives, and a body not read to its end is marked cut (the
/// caller ends the exchange).
pub(crate) async fn read_body<S>(
    resp: &mut ClientResponse<S>,
    limit: u64,
    at_limit: AtLimit,
    spill: Option<&mut (dyn Spill + 'static)>,
    mut tape: Option<&mut (dyn Tape + 'static)>,
) -> Result<Read, Failure>
where
    S: futures_util::Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    let mut cut = None;
    let result = read(resp, limit, at_limit, spill, tape.as_deref_mut(), &mut cut).await;
    if let Some(tape) = tape {
        let why = match &result {
            Ok(_) => cut,
            Err(f) if f.kind == ErrorKind::TooLarge => Some(Cut::Length),
            Err(f) if f.kind == ErrorKind::Truncated => Some(Cut::Disconnect),
            // The writer refused a piece: the rest of the body was not read.
            Err(_) => Some(Cut::Unspecified),
        };
        if let Some(why) = why {
            tape.cut(why);
        }
    }
    result
}

async fn read<S>(
    resp: &mut ClientResponse<S>,
    limit: u64,
    at_limit: AtLimit,
    mut spill: Option<&mut (dyn Spill + 'static)>,
    mut tape: Option<&mut (dyn Tape + 'static)>,
    cut: &mut Option<Cut>,
) -> Result<Read, Failure>
where
    S: futures_util::Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    let announced = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(len) = announced {
        if len > limit && at_limit == AtLimit::Refuse {
            return Err(too_large(len, limit));
        }
    }
    let capacity = announced.map_or(0, |n| n.min(limit).min(STREAM_THRESHOLD as u64) as usize);
    let mut held = Held::default();
    let mut spilled = false;
    let mut total: u64 = 0;
    while let Some(chunk) = resp.next().await {
        let mut chunk = chunk
            .map_err(|e| Failure::transient(ErrorKind::Truncated, format!("reading body: {e}")))?;
        if total + chunk.len() as u64 > limit {
            if at_limit == AtLimit::Refuse {
                return Err(too_large(total + chunk.len() as u64, limit));
            }
            chunk.truncate((limit - total) as usize);
            if let Some(tape) = tape.as_deref_mut() {
                tape.piece(chunk.clone()).await;
            }
            *cut = Some(Cut::Length);
            held.push(chunk, capacity);
            return Ok(Read::Memory(held.take()));
        }
        total += chunk.len() as u64;
        if let Some(tape) = tape.as_deref_mut() {
            // A clone of a `Bytes` shares its buffer: recording copies nothing here.
            tape.piece(chunk.clone()).await;
        }
        held.push(chunk, capacity);
        if let Some(spill) = spill.as_deref_mut() {
            if held.len() >= STREAM_THRESHOLD {
                spill.spill(held.take()).await?;
                spilled = true;
            }
        }
    }
    // awc ends the body quietly when the connection closes early: check the length ourselves,
    // or a truncated body would be stored as complete.
    if let Some(len) = announced {
        if total != len {
            return Err(Failure::transient(
                ErrorKind::Truncated,
                format!("reading body: truncated: received {total} of {len} bytes"),
            ));
        }
    }
    match spill {
        Some(spill) if spilled => {
            if held.len() > 0 {
                spill.spill(held.take()).await?;
            }
            Ok(Read::Spilled)
        }
        _ => Ok(Read::Memory(held.take())),
    }
}

fn too_large(len: u64, limit: u64) -> Failure {
    Failure::permanent(
        ErrorKind::TooLarge,
        format!("body of {len} bytes or more exceeds the limit of {limit} bytes"),
    )
}
