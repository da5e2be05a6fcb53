//! Request id ↔ trace id pairs learnt at the HTTP edge, so a log line that carries only
//! one of the two ids can be given the other.
//!
//! Bounded: the oldest pair is forgotten first once `capacity` pairs are known.
//!
//! ```
//! use hindsight_correlation::id_pairs::IdPairs;
//! use hindsight_correlation::ids::TraceId;
//!
//! let trace = TraceId::from_u64(7).unwrap();
//! let mut pairs = IdPairs::new(2);
//! pairs.insert("req-1", trace);
//! assert_eq!(pairs.trace_of("req-1"), Some(trace));
//! assert_eq!(pairs.request_of(trace), Some("req-1"));
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::ids::TraceId;

/// A bounded two-way map between request ids and trace ids.
#[derive(Debug, Default)]
pub struct IdPairs {
    capacity: usize,
    by_request: HashMap<Arc<str>, TraceId>,
    by_trace: HashMap<TraceId, Arc<str>>,
    order: VecDeque<Arc<str>>,
}

impl IdPairs {
    /// A map that remembers at most `capacity` pairs (at least one).
    pub fn new(capacity: usize) -> Self {
        IdPairs {
            capacity: capacity.max(1),
            ..IdPairs::default()
        }
    }

    /// Remembers that `request_id` belongs to `trace_id`; a newer pair replaces an older
    /// one for the same request id.
    pub fn insert(&mut self, request_id: &str, trace_id: TraceId) {
        if let Some(old_trace) = self.by_request.get(request_id).copied() {
            self.by_trace.remove(&old_trace);
            let key = self
                .by_request
                .get_key_value(request_id)
                .map(|(k, _)| k.clone());
            if let Some(key) = key {
                self.by_request.insert(key.clone(), trace_id);
                self.by_trace.insert(trace_id, key);
            }
            return;
        }
        while self.by_request.len() >= self.capacity {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(trace) = self.by_request.remove(&oldest) {
                self.by_trace.remove(&trace);
            }
        }
        let key: Arc<str> = Arc::from(request_id);
        self.by_request.insert(key.clone(), trace_id);
        self.by_trace.insert(trace_id, key.clone());
        self.order.push_back(key);
    }

    /// The trace of a request id, when known.
    pub fn trace_of(&self, request_id: &str) -> Option<TraceId> {
        self.by_request.get(request_id).copied()
    }

    /// The request id of a trace, when known.
    pub fn request_of(&self, trace_id: TraceId) -> Option<&str> {
        self.by_trace.get(&trace_id).map(|id| &**id)
    }

    /// How many pairs are remembered.
    pub fn len(&self) -> usize {
        self.by_request.len()
    }

    /// True when no pair is remembered.
    pub fn is_empty(&self) -> bool {
        self.by_request.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(n: u64) -> TraceId {
        TraceId::from_u64(n).unwrap()
    }

    #[test]
    fn oldest_pair_is_forgotten_first() {
        let mut pairs = IdPairs::new(2);
        pairs.insert("a", trace(1));
        pairs.insert("b", trace(2));
        pairs.insert("c", trace(3));
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs.trace_of("a"), None);
        assert_eq!(pairs.request_of(trace(1)), None);
        assert_eq!(pairs.trace_of("c"), Some(trace(3)));
        assert_eq!(pairs.request_of(trace(2)), Some("b"));
    }

    #[test]
    fn a_request_id_seen_again_moves_to_its_new_trace() {
        let mut pairs = IdPairs::new(4);
        pairs.insert("a", trace(1));
        pairs.insert("a", trace(9));
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs.trace_of("a"), Some(trace(9)));
        assert_eq!(pairs.request_of(trace(1)), None);
        assert_eq!(pairs.request_of(trace(9)), Some("a"));
    }
}
