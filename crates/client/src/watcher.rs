//! The watcher: list (paged), then watch from the list's resourceVersion; resume from the last
//! resourceVersion seen when the stream breaks; relist when the server says the revision expired. Errors
//! are yielded (for logging) and followed by a capped, jittered exponential backoff.

use std::collections::VecDeque;
use std::time::Duration;

use futures::{Stream, StreamExt};
use navarch_api::Resource;
use rand::Rng;

use crate::client::{Api, ListParams, WatchEvent, WatchParams, WatchStream};
use crate::error::{Error, Result};

/// What the watcher reports, kube-runtime's shape: a relist is `Init`, `InitApply`* , `InitDone`.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<K> {
    /// A (re)list starts: what follows until `InitDone` is the complete state.
    Init,
    InitApply(K),
    /// The (re)list is complete.
    InitDone,
    /// An object was created or changed.
    Apply(K),
    /// An object was deleted (its last state).
    Delete(K),
}

#[derive(Debug, Clone)]
pub struct WatcherConfig {
    pub label_selector: String,
    pub field_selector: String,
    /// Items per list page.
    pub page_size: i64,
    /// Ask for bookmarks, so a resumed watch starts from a recent revision.
    pub bookmarks: bool,
}

impl Default for WatcherConfig {
    fn default() -> Self {
        WatcherConfig {
            label_selector: String::new(),
            field_selector: String::new(),
            page_size: 500,
            bookmarks: true,
        }
    }
}

impl WatcherConfig {
    pub fn labels(mut self, selector: &str) -> Self {
        self.label_selector = selector.to_string();
        self
    }
    pub fn fields(mut self, selector: &str) -> Self {
        self.field_selector = selector.to_string();
        self
    }
}

/// Capped exponential backoff with full jitter in [d/2, d].
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff { initial, max, current: initial }
    }

    /// The next delay (and doubles the following one, up to the cap).
    pub fn next_delay(&mut self) -> Duration {
        let d = self.current;
        self.current = (self.current * 2).min(self.max);
        let half = d / 2;
        half + d.saturating_sub(half).mul_f64(rand::rng().random_range(0.0..=1.0))
    }

    pub fn reset(&mut self) {
        self.current = self.initial;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Duration::from_millis(800), Duration::from_secs(30))
    }
}

enum Phase<K> {
    Relist,
    Listing { token: String },
    Watch { rv: String },
    Streaming { rv: String, stream: WatchStream<K> },
}

struct State<K: Resource> {
    api: Api<K>,
    cfg: WatcherConfig,
    phase: Phase<K>,
    pending: VecDeque<Event<K>>,
    backoff: Backoff,
    /// Sleep before the next call (after an error).
    delay: Option<Duration>,
}

impl<K: Resource> State<K> {
    fn fail(&mut self, e: Error) -> Option<Result<Event<K>>> {
        self.delay = Some(self.backoff.next_delay());
        Some(Err(e))
    }

    async fn step(&mut self) -> Option<Result<Event<K>>> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Some(Ok(ev));
            }
            if let Some(d) = self.delay.take() {
                tokio::time::sleep(d).await;
            }
            match std::mem::replace(&mut self.phase, Phase::Relist) {
                Phase::Relist => {
                    self.pending.push_back(Event::Init);
                    self.phase = Phase::Listing { token: String::new() };
                }
                Phase::Listing { token } => {
                    let params = ListParams {
                        label_selector: self.cfg.label_selector.clone(),
                        field_selector: self.cfg.field_selector.clone(),
                        limit: self.cfg.page_size,
                        continue_token: token.clone(),
                        ..Default::default()
                    };
                    match self.api.list(&params).await {
                        Ok(page) => {
                            self.backoff.reset();
                            self.pending.extend(page.items.into_iter().map(Event::InitApply));
                            if page.continue_token.is_empty() {
                                self.pending.push_back(Event::InitDone);
                                self.phase = Phase::Watch { rv: page.resource_version };
                            } else {
                                self.phase = Phase::Listing { token: page.continue_token };
                            }
                        }
                        // A continue token too old to finish the list: start over.
                        Err(Error::Expired(_)) => self.phase = Phase::Relist,
                        Err(e) => {
                            // Retry the same page; Init was already reported, so the state still
                            // builds up to one InitDone.
                            self.phase = Phase::Listing { token };
                            return self.fail(e);
                        }
                    }
                }
                Phase::Watch { rv } => {
                    let params = WatchParams {
                        label_selector: self.cfg.label_selector.clone(),
                        field_selector: self.cfg.field_selector.clone(),
                        resource_version: rv.clone(),
                        allow_bookmarks: self.cfg.bookmarks,
                        ..Default::default()
                    };
                    match self.api.watch(&params).await {
                        Ok(stream) => self.phase = Phase::Streaming { rv, stream },
                        Err(Error::Expired(_)) => self.phase = Phase::Relist,
                        Err(e) => {
                            self.phase = Phase::Watch { rv };
                            return self.fail(e);
                        }
                    }
                }
                Phase::Streaming { mut rv, mut stream } => match stream.next().await {
                    Some(Ok(ev)) => {
                        self.backoff.reset();
                        let out = match ev {
                            WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                                rv = o.meta().resource_version.clone();
                                Some(Event::Apply(o))
                            }
                            WatchEvent::Deleted(o) => {
                                rv = o.meta().resource_version.clone();
                                Some(Event::Delete(o))
                            }
                            WatchEvent::Bookmark(b) => {
                                rv = b;
                                None
                            }
                        };
                        self.phase = Phase::Streaming { rv, stream };
                        if let Some(ev) = out {
                            return Some(Ok(ev));
                        }
                    }
                    Some(Err(Error::Expired(m))) => {
                        tracing::debug!(kind = K::KIND, reason = %m, "watch expired; relisting");
                        self.phase = Phase::Relist;
                    }
                    Some(Err(e)) => {
                        self.phase = Phase::Watch { rv };
                        return self.fail(e);
                    }
                    None => {
                        // The server closed the stream (e.g. restart): resume where we were.
                        self.phase = Phase::Watch { rv };
                        self.delay = Some(self.backoff.next_delay());
                    }
                },
            }
        }
    }
}

/// Watches every object of `api`'s kind (in its namespace, or all namespaces for an empty one).
/// The stream never ends on its own.
pub fn watcher<K: Resource>(api: Api<K>, cfg: WatcherConfig) -> impl Stream<Item = Result<Event<K>>> + Send {
    let state = State {
        api,
        cfg,
        phase: Phase::Relist,
        pending: VecDeque::new(),
        backoff: Backoff::default(),
        delay: None,
    };
    futures::stream::unfold(state, |mut s| async move { s.step().await.map(|ev| (ev, s)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        let d1 = b.next_delay();
        assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
        let d2 = b.next_delay();
        assert!(d2 >= Duration::from_millis(100) && d2 <= Duration::from_millis(200));
        for _ in 0..10 {
            assert!(b.next_delay() <= Duration::from_millis(400));
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
