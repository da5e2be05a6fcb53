//! End-to-end acknowledgement of records.
//!
//! A source creates one [`AckBatch`] per group of records it reads (for the file source:
//! one chunk of one file) and hands every record an [`Ack`] cloned from it. A sink calls
//! [`Ack::delivered`] once the backend confirmed the record (or a rule deliberately dropped
//! it, or it went to the dead-letter file). When the last `Ack` of a batch is gone, the
//! batch's callback runs once with [`BatchStatus::Delivered`] if every record was settled,
//! or [`BatchStatus::Undelivered`] if any `Ack` was dropped unsettled (shutdown, a bug).
//! The file source moves a checkpoint only past delivered batches.
//!
//! ```
//! use hindsight_exporters::ack::{AckBatch, BatchStatus};
//! use std::sync::{Arc, Mutex};
//!
//! let seen = Arc::new(Mutex::new(None));
//! let seen2 = seen.clone();
//! let batch = AckBatch::new(move |status| *seen2.lock().unwrap() = Some(status));
//! let a = batch.ack();
//! let b = batch.ack();
//! drop(batch);
//! a.delivered();
//! assert!(seen.lock().unwrap().is_none());
//! b.delivered();
//! assert_eq!(*seen.lock().unwrap(), Some(BatchStatus::Delivered));
//! ```

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The outcome of a whole batch, reported once to its callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchStatus {
    /// Every record was delivered or deliberately dropped.
    Delivered,
    /// At least one record was dropped without being settled; it must be read again.
    Undelivered,
}

type Callback = Box<dyn FnOnce(BatchStatus) + Send + Sync>;

struct Inner {
    failed: AtomicBool,
    callback: std::sync::Mutex<Option<Callback>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let status = if self.failed.load(Ordering::Acquire) {
            BatchStatus::Undelivered
        } else {
            BatchStatus::Delivered
        };
        let callback = match self.callback.get_mut() {
            Ok(slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(callback) = callback {
            callback(status);
        }
    }
}

/// A group of records whose outcome is reported together.
pub struct AckBatch {
    inner: Arc<Inner>,
}

impl AckBatch {
    /// Creates a batch; `callback` runs once when the batch and all its acks are gone.
    pub fn new(callback: impl FnOnce(BatchStatus) + Send + Sync + 'static) -> Self {
        AckBatch {
            inner: Arc::new(Inner {
                failed: AtomicBool::new(false),
                callback: std::sync::Mutex::new(Some(Box::new(callback))),
            }),
        }
    }

    /// A new pending acknowledgement that belongs to this batch.
    pub fn ack(&self) -> Ack {
        Ack {
            inner: Some(self.inner.clone()),
        }
    }
}

/// The acknowledgement a record carries until it is settled.
///
/// Dropping it without calling [`Ack::delivered`] marks its batch undelivered.
pub struct Ack {
    inner: Option<Arc<Inner>>,
}

impl Ack {
    /// An acknowledgement that belongs to no batch (records that need no checkpoint).
    pub fn none() -> Self {
        Ack { inner: None }
    }

    /// Settles the record: delivered, dead-lettered or deliberately dropped.
    pub fn delivered(mut self) {
        self.inner = None;
    }
}

impl Drop for Ack {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            inner.failed.store(true, Ordering::Release);
        }
    }
}

impl fmt::Debug for Ack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.inner.is_some() {
            "Ack(pending)"
        } else {
            "Ack(none)"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn recorder() -> (Arc<Mutex<Vec<BatchStatus>>>, AckBatch) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let batch = AckBatch::new(move |s| seen2.lock().unwrap().push(s));
        (seen, batch)
    }

    #[test]
    fn all_delivered_reports_delivered_once() {
        let (seen, batch) = recorder();
        let acks: Vec<_> = (0..3).map(|_| batch.ack()).collect();
        drop(batch);
        for a in acks {
            a.delivered();
        }
        assert_eq!(*seen.lock().unwrap(), vec![BatchStatus::Delivered]);
    }

    #[test]
    fn one_dropped_ack_reports_undelivered() {
        let (seen, batch) = recorder();
        let a = batch.ack();
        let b = batch.ack();
        drop(batch);
        a.delivered();
        drop(b);
        assert_eq!(*seen.lock().unwrap(), vec![BatchStatus::Undelivered]);
    }

    #[test]
    fn batch_without_acks_reports_delivered() {
        let (seen, batch) = recorder();
        drop(batch);
        assert_eq!(*seen.lock().unwrap(), vec![BatchStatus::Delivered]);
    }
}
