//! The scheduling queue's order: pending pods by `spec.priority`, highest first, then by when they
//! were queued (Kubernetes' PrioritySort); each pod at most once.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashSet};

#[derive(Debug, PartialEq, Eq)]
struct Entry {
    priority: i32,
    seq: Reverse<u64>,
    key: String,
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.priority, self.seq).cmp(&(other.priority, other.seq))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Pod keys in scheduling order.
#[derive(Debug, Default)]
pub struct Queue {
    heap: BinaryHeap<Entry>,
    queued: HashSet<String>,
    seq: u64,
}

impl Queue {
    /// Queues `key` behind the pods of its priority already queued; a key already queued keeps its place.
    pub fn push(&mut self, key: String, priority: i32) {
        if self.queued.insert(key.clone()) {
            self.seq += 1;
            self.heap.push(Entry { priority, seq: Reverse(self.seq), key });
        }
    }

    /// The key of the highest priority queued first.
    pub fn pop(&mut self) -> Option<String> {
        let e = self.heap.pop()?;
        self.queued.remove(&e.key);
        Some(e.key)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_then_arrival_once_each() {
        let mut q = Queue::default();
        q.push("low-1".into(), 0);
        q.push("high".into(), 1000);
        q.push("low-2".into(), 0);
        q.push("neg".into(), -5);
        q.push("low-1".into(), 0); // already queued: keeps its place
        q.push("high-2".into(), 1000);
        let order: Vec<String> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, ["high", "high-2", "low-1", "low-2", "neg"]);
        q.push("low-1".into(), 0);
        assert_eq!(q.len(), 1, "popped keys may be queued again");
    }
}
