//! The buffers bid responses are written into, kept per thread for the
//! next response.
//!
//! A response runs to kilobytes: past what the allocator keeps in its
//! per-thread caches, so each was a trip through its general paths to
//! allocate and another to free (some 800 instructions of a banner bid's
//! 59k). A buffer is taken from this thread's spares when the answer is
//! written, travels as the HTTP body ([`bytes::Bytes::from_owner`]), and
//! goes back to the spares of whichever thread drops it once it is sent.
//!
//! Bounded twice: a thread keeps at most [`MAX_SPARES`] buffers, and none
//! that grew past [`MAX_KEPT`] (an answer of many bids, or with a huge
//! request id); those are freed. A spare only grows to the answers it held,
//! so a thread holds at most `MAX_SPARES * MAX_KEPT` (512 KB), usually a
//! few kilobytes a spare. Tasks move between worker threads, so a buffer
//! may go back to another thread than the one it came from: each thread's
//! spares stay within those bounds all the same.

use std::cell::RefCell;

/// Spares a thread keeps: about the answers one worker has in flight at
/// once on a loaded server (each connection has at most one).
const MAX_SPARES: usize = 32;

/// The largest buffer kept, in bytes: a VAST answer of two imps (a bid
/// reserves 6 KB for each). A larger one, once sent, is freed rather than
/// held for the answers of one imp, which need a third of it.
const MAX_KEPT: usize = 16 * 1024;

thread_local! {
    static SPARES: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A written bid response. Derefs to its bytes; dropped, its buffer goes
/// back to the spares of the thread that drops it.
pub struct AnswerBuf(Vec<u8>);

impl std::fmt::Debug for AnswerBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("AnswerBuf")
            .field(&String::from_utf8_lossy(&self.0))
            .finish()
    }
}

impl AnswerBuf {
    /// An empty string with room for `bytes`, in a spare buffer when this
    /// thread has one.
    pub(crate) fn string(bytes: usize) -> String {
        let mut buf = SPARES
            .try_with(|s| s.borrow_mut().pop())
            .ok()
            .flatten()
            .unwrap_or_default();
        // Cleared first: a spare too small grows without copying what it
        // held.
        buf.clear();
        buf.reserve(bytes);
        // Empty, so valid UTF-8 whatever it held before.
        String::from_utf8(buf).unwrap_or_default()
    }

    /// The answer written into a buffer from [`AnswerBuf::string`].
    pub(crate) fn of(answer: String) -> AnswerBuf {
        AnswerBuf(answer.into_bytes())
    }
}

impl std::ops::Deref for AnswerBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for AnswerBuf {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for AnswerBuf {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.0);
        if buf.capacity() == 0 || buf.capacity() > MAX_KEPT {
            return;
        }
        // A thread past its thread-locals' end (shutting down) frees it.
        let _ = SPARES.try_with(|s| {
            if let Ok(mut spares) = s.try_borrow_mut() {
                if spares.len() < MAX_SPARES {
                    spares.push(buf);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spares() -> usize {
        SPARES.with(|s| s.borrow().len())
    }

    #[test]
    fn a_dropped_answer_is_the_next_ones_buffer() {
        let mut first = AnswerBuf::string(2048);
        first.push_str("{\"id\":\"1\"}");
        let first = AnswerBuf::of(first);
        assert_eq!(&*first, b"{\"id\":\"1\"}");
        let at = first.0.as_ptr();
        let before = spares();
        drop(first);
        assert_eq!(spares(), before + 1);
        // Taken back empty, whatever it held.
        let second = AnswerBuf::string(100);
        assert_eq!(second.as_ptr(), at);
        assert!(second.is_empty() && second.capacity() >= 2048);
        assert_eq!(spares(), before);
    }

    #[test]
    fn spares_are_bounded_in_number_and_size() {
        let answers: Vec<AnswerBuf> = (0..MAX_SPARES + 10)
            .map(|_| AnswerBuf::of(AnswerBuf::string(16)))
            .collect();
        drop(answers);
        assert_eq!(spares(), MAX_SPARES);
        SPARES.with(|s| s.borrow_mut().clear());
        drop(AnswerBuf::of(String::with_capacity(MAX_KEPT + 1)));
        assert_eq!(spares(), 0, "a buffer past MAX_KEPT is freed");
        drop(AnswerBuf::of(String::with_capacity(MAX_KEPT)));
        assert_eq!(spares(), 1, "one of MAX_KEPT is kept");
    }
}
