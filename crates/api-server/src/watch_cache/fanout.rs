//! Fan-out of the cache's events to its watchers: what each watcher wants to see ([`WatchFilter`]), how
//! a change looks through a filter ([`transition`], [`BufferedEvent`]), and the history ring and the
//! registered watchers it is delivered to ([`State`]).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

use navarch_api::Object;
use navarch_api::selector::Selector;
use tokio::sync::mpsc;

use super::{CachedEvent, EventType};
use crate::field_selector::FieldSelector;

/// What one watcher wants to see.
#[derive(Debug, Clone, Default)]
pub struct WatchFilter {
    /// Empty: all namespaces.
    pub namespace: String,
    pub labels: Selector,
    pub fields: FieldSelector,
}

impl WatchFilter {
    /// Matches every object.
    pub fn everything() -> WatchFilter {
        WatchFilter::default()
    }

    pub fn is_everything(&self) -> bool {
        self.namespace.is_empty() && self.labels.is_empty() && self.fields.is_empty()
    }

    pub fn matches(&self, obj: &Object) -> bool {
        let meta = obj.meta();
        (self.namespace.is_empty() || meta.namespace == self.namespace)
            && self.labels.matches(&meta.labels)
            && self.fields.matches(obj)
    }
}

/// What a watcher sees of a change, given whether the object matches its filter now (`current`) and
/// matched before (`previous`, known for modifications only). `None`: nothing.
pub fn transition(event: EventType, current: bool, previous: Option<bool>) -> Option<EventType> {
    match (event, current, previous.unwrap_or(current)) {
        (EventType::Added | EventType::Deleted, true, _) => Some(event),
        (EventType::Added | EventType::Deleted, false, _) => None,
        (EventType::Modified, true, true) => Some(EventType::Modified),
        (EventType::Modified, true, false) => Some(EventType::Added),
        (EventType::Modified, false, true) => Some(EventType::Deleted),
        (EventType::Modified, false, false) => None,
    }
}

/// One change in the history buffer: the event as it happened, the previous object (for
/// modifications, to filter on both) and lazily built variants for watchers that see it as a
/// transition into or out of their selection.
pub(super) struct BufferedEvent {
    event: Arc<CachedEvent>,
    previous: Option<Arc<Object>>,
    as_added: OnceLock<Arc<CachedEvent>>,
    as_deleted: OnceLock<Arc<CachedEvent>>,
}

impl BufferedEvent {
    pub(super) fn new(event: CachedEvent, previous: Option<Arc<Object>>) -> BufferedEvent {
        BufferedEvent {
            event: Arc::new(event),
            previous,
            as_added: OnceLock::new(),
            as_deleted: OnceLock::new(),
        }
    }

    pub(super) fn revision(&self) -> i64 {
        self.event.revision
    }

    /// The event as a watcher with `filter` sees it, if at all.
    pub(super) fn for_filter(&self, filter: &WatchFilter) -> Option<Arc<CachedEvent>> {
        if filter.is_everything() {
            return Some(self.event.clone());
        }
        let current = filter.matches(&self.event.object);
        let previous = match self.event.event_type {
            EventType::Modified => self.previous.as_ref().map(|p| filter.matches(p)),
            EventType::Added | EventType::Deleted => None,
        };
        let seen = transition(self.event.event_type, current, previous)?;
        Some(if seen == self.event.event_type {
            self.event.clone()
        } else {
            let cell = match seen {
                EventType::Added => &self.as_added,
                _ => &self.as_deleted,
            };
            cell.get_or_init(|| Arc::new(self.event.retyped(seen))).clone()
        })
    }
}

pub(super) const LIVE: u8 = 0;
const OVERFLOWED: u8 = 1;
pub(super) const RESET: u8 = 2;

pub(super) struct Watcher {
    /// Events at or below this revision are not delivered (the watcher asked for events after it).
    pub(super) after: i64,
    pub(super) filter: WatchFilter,
    pub(super) tx: mpsc::Sender<Arc<CachedEvent>>,
    /// Why the cache dropped this watcher (shared with its [`Subscription`]).
    pub(super) end: Arc<AtomicU8>,
}

pub(super) struct State {
    pub(super) buffer: VecDeque<BufferedEvent>,
    /// Every event with a revision above the floor is in `buffer`.
    pub(super) floor: i64,
    pub(super) watchers: HashMap<u64, Watcher>,
    pub(super) next_id: u64,
    pub(super) closed: bool,
}

impl State {
    /// Where in the buffer a watcher resuming after revision `after` starts. Objects written in one
    /// transaction share its revision (batched bindings): a client resuming at such a revision may have
    /// seen only some of them, so it is sent all of them again. A repeated event is harmless to a
    /// level-triggered client; a missed one is not.
    pub(super) fn resume_index(&self, after: i64) -> usize {
        let past = self.buffer.partition_point(|e| e.revision() <= after);
        let at = self.buffer.partition_point(|e| e.revision() < after);
        if past - at > 1 { at } else { past }
    }

    /// Delivers `entry` to every interested watcher and appends it to the history.
    pub(super) fn publish(&mut self, entry: BufferedEvent, history: usize, kind: &str) {
        let rev = entry.revision();
        self.watchers.retain(|id, w| {
            if rev <= w.after {
                return !w.tx.is_closed();
            }
            let Some(ev) = entry.for_filter(&w.filter) else {
                return !w.tx.is_closed();
            };
            match w.tx.try_send(ev) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    w.end.store(OVERFLOWED, Ordering::SeqCst);
                    tracing::info!(kind, watcher = id, revision = rev, "watcher fell behind; dropped");
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        self.buffer.push_back(entry);
        while self.buffer.len() > history {
            if let Some(old) = self.buffer.pop_front() {
                self.floor = self.floor.max(old.revision());
            }
        }
    }

    /// Drops every watcher, marking why.
    pub(super) fn drop_watchers(&mut self, why: u8) {
        for w in self.watchers.values() {
            w.end.store(why, Ordering::SeqCst);
        }
        self.watchers.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field_selector::tests::{fields, pod};
    use crate::watch_cache::{FELL_BEHIND, Subscription};
    use futures::{FutureExt, StreamExt};

    #[test]
    fn transitions() {
        use EventType::*;
        assert_eq!(transition(Added, true, None), Some(Added));
        assert_eq!(transition(Added, false, None), None);
        assert_eq!(transition(Deleted, true, None), Some(Deleted));
        assert_eq!(transition(Deleted, false, None), None);
        assert_eq!(transition(Modified, true, Some(true)), Some(Modified));
        assert_eq!(transition(Modified, true, Some(false)), Some(Added));
        assert_eq!(transition(Modified, false, Some(true)), Some(Deleted));
        assert_eq!(transition(Modified, false, Some(false)), None);
        // Previous object unknown: judged on the current one.
        assert_eq!(transition(Modified, true, None), Some(Modified));
        assert_eq!(transition(Modified, false, None), None);
    }

    fn filter(ns: &str, labels: &str, f: &str) -> WatchFilter {
        WatchFilter { namespace: ns.into(), labels: Selector::parse(labels).unwrap(), fields: fields(f) }
    }

    fn modified(old: Object, new: Object, rev: i64) -> BufferedEvent {
        BufferedEvent::new(CachedEvent::new(EventType::Modified, new, rev), Some(Arc::new(old)))
    }

    #[test]
    fn watch_filter_matches() {
        let p = pod("team-a", "web", "n1", &[("app", "web")]);
        assert!(WatchFilter::everything().matches(&p));
        assert!(filter("team-a", "app=web", "spec.nodeName=n1").matches(&p));
        assert!(!filter("team-b", "", "").matches(&p));
        assert!(!filter("", "app=db", "").matches(&p));
        assert!(!filter("", "", "spec.nodeName=n2").matches(&p));
    }

    #[test]
    fn buffered_event_seen_through_filters() {
        let before = pod("default", "web", "", &[("app", "web")]);
        let after = pod("default", "web", "n1", &[("app", "db")]);
        let e = modified(before, after, 7);

        let all = e.for_filter(&WatchFilter::everything()).unwrap();
        assert_eq!(all.event_type, EventType::Modified);
        assert!(Arc::ptr_eq(&all, &e.event));

        // Label left the selection: DELETED with the new object.
        let left = e.for_filter(&filter("", "app=web", "")).unwrap();
        assert_eq!(left.event_type, EventType::Deleted);
        assert_eq!(left.object.meta().labels["app"], "db");
        assert_eq!(left.raw, e.event.raw);
        assert_eq!(left.revision, 7);
        // Shared between watchers.
        assert!(Arc::ptr_eq(&left, &e.for_filter(&filter("default", "app=web", "")).unwrap()));

        // Scheduled onto n1: ADDED for the node's watcher, DELETED for the unscheduled-pods watcher.
        assert_eq!(e.for_filter(&filter("", "", "spec.nodeName=n1")).unwrap().event_type, EventType::Added);
        assert_eq!(e.for_filter(&filter("", "", "spec.nodeName=")).unwrap().event_type, EventType::Deleted);
        assert!(e.for_filter(&filter("", "", "spec.nodeName=n2")).is_none());
        assert!(e.for_filter(&filter("other", "", "")).is_none());
        assert_eq!(e.for_filter(&filter("default", "", "")).unwrap().event_type, EventType::Modified);
    }

    fn state() -> State {
        State { buffer: VecDeque::new(), floor: 0, watchers: HashMap::new(), next_id: 0, closed: false }
    }

    fn added(name: &str, rev: i64) -> BufferedEvent {
        BufferedEvent::new(CachedEvent::new(EventType::Added, pod("default", name, "", &[]), rev), None)
    }

    fn add_watcher(st: &mut State, after: i64, filter: WatchFilter, cap: usize) -> Subscription {
        let (tx, rx) = mpsc::channel(cap);
        let end = Arc::new(AtomicU8::new(LIVE));
        let id = st.next_id;
        st.next_id += 1;
        st.watchers.insert(id, Watcher { after, filter, tx, end: end.clone() });
        Subscription { snapshot: VecDeque::new(), rx: Some(rx), end, registration: None }
    }

    fn drain(sub: &mut Subscription) -> Vec<Result<i64, String>> {
        let mut out = Vec::new();
        while let Some(Some(item)) = sub.next().now_or_never() {
            out.push(item.map(|e| e.revision).map_err(|e| e.to_string()));
        }
        out
    }

    #[test]
    fn resuming_at_a_shared_revision_repeats_all_of_it() {
        let mut st = state();
        for (name, rev) in [("a", 5), ("b", 6), ("c", 6), ("d", 6), ("e", 7)] {
            st.publish(added(name, rev), 100, "Pod");
        }
        let from =
            |after| st.buffer.range(st.resume_index(after)..).map(|e| e.revision()).collect::<Vec<_>>();
        assert_eq!(from(4), [5, 6, 6, 6, 7]);
        assert_eq!(from(5), [6, 6, 6, 7], "a revision of one event is not repeated");
        assert_eq!(from(6), [6, 6, 6, 7], "the three events of revision 6 again");
        assert_eq!(from(7), Vec::<i64>::new());
    }

    #[test]
    fn ring_buffer_raises_floor() {
        let mut st = state();
        for rev in 1..=5 {
            st.publish(added(&format!("p{rev}"), rev * 10), 3, "Pod");
        }
        assert_eq!(st.buffer.len(), 3);
        assert_eq!(st.floor, 20);
        assert_eq!(st.buffer.front().unwrap().revision(), 30);
    }

    #[test]
    fn fan_out_skips_old_filters_and_drops_slow_watchers() {
        let mut st = state();
        let mut fast = add_watcher(&mut st, 0, WatchFilter::everything(), 10);
        let mut slow = add_watcher(&mut st, 0, WatchFilter::everything(), 2);
        let mut late = add_watcher(&mut st, 2, WatchFilter::everything(), 10);
        let mut picky = add_watcher(&mut st, 0, filter("", "", "metadata.name=p3"), 10);
        for rev in 1..=4 {
            st.publish(added(&format!("p{rev}"), rev), 100, "Pod");
        }
        assert_eq!(st.watchers.len(), 3, "the slow watcher is removed");
        assert_eq!(drain(&mut fast), vec![Ok(1), Ok(2), Ok(3), Ok(4)]);
        assert_eq!(drain(&mut late), vec![Ok(3), Ok(4)]);
        assert_eq!(drain(&mut picky), vec![Ok(3)]);
        assert_eq!(drain(&mut slow), vec![Err(FELL_BEHIND.to_string())]);
        // Closed receivers are pruned on the next event.
        drop(late);
        st.publish(added("p5", 5), 100, "Pod");
        assert_eq!(st.watchers.len(), 2);
        // A reset expires everyone.
        st.drop_watchers(RESET);
        assert_eq!(drain(&mut fast), vec![Err(FELL_BEHIND.to_string())]);
        // A clean close ends streams after what was queued.
        let mut quiet = add_watcher(&mut st, 0, WatchFilter::everything(), 10);
        st.publish(added("p6", 6), 100, "Pod");
        st.drop_watchers(LIVE);
        assert_eq!(drain(&mut quiet), vec![Ok(6)]);
        assert!(quiet.next().now_or_never().is_some_and(|x| x.is_none()));
    }
}
