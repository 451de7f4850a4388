//! Waiting for the cluster to get somewhere: [`eventually`] tries a check again and again until it
//! succeeds or time runs out, then panics saying what it waited for, for how long, and what the last
//! attempt found. [`eventually_blocking`] is the same for code without an async runtime (`e2e`, and
//! checks that run on a blocking thread).
//!
//! A check returns an [`Outcome`]:
//!
//! * `bool`: done when `true`;
//! * `Option<T>`: done with the value when `Some` (so `?` on an `Option` means "not yet");
//! * `Result<T, E>`: done with the value when `Ok`; an `Err` is not yet, and the last one is shown if
//!   time runs out (for a check whose failure needs explaining).
//!
//! ```ignore
//! let pod = eventually("web Running", Duration::from_secs(60), async || {
//!     let p = pods.get("web").await.ok()?;
//!     (p.status.as_ref()?.phase == "Running").then_some(p)
//! })
//! .await;
//! ```
//!
//! `what` is formatted only when time runs out, so it can gather diagnostics at that moment: see
//! [`describe`] (and [`Kubelet::with_log`](crate::Kubelet::with_log)).

use std::fmt::{self, Display};
use std::time::{Duration, Instant};

/// How long [`eventually`] waits between attempts.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// How long [`eventually_blocking`] waits between attempts: its checks run a process each (navctl,
/// curl in a network namespace), so it asks less often.
pub const BLOCKING_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// What one attempt of [`eventually`] found: done (with a value), or not yet.
pub trait Outcome {
    /// What the wait returns when done.
    type Value;

    /// `Ok(value)` when done; `Err(note)` when not yet, `note` being what to report if time runs out.
    fn into_result(self) -> Result<Self::Value, Option<String>>;
}

impl Outcome for bool {
    type Value = ();

    fn into_result(self) -> Result<(), Option<String>> {
        if self { Ok(()) } else { Err(None) }
    }
}

impl<T> Outcome for Option<T> {
    type Value = T;

    fn into_result(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

impl<T, E: Display> Outcome for Result<T, E> {
    type Value = T;

    fn into_result(self) -> Result<T, Option<String>> {
        self.map_err(|e| Some(e.to_string()))
    }
}

/// Runs `check` every [`POLL_INTERVAL`] until it succeeds and returns its value; panics once
/// `timeout` has passed without success, with `what` (the condition waited for), the time waited
/// and what the last attempt reported. The deadline is looked at after each failed attempt, so
/// `check` runs at least once and the last attempt ends after the deadline.
pub async fn eventually<R: Outcome>(
    what: impl Display,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> R,
) -> R::Value {
    let start = Instant::now();
    loop {
        if let Some(value) = judge(check().await, &what, start, timeout) {
            return value;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// [`eventually`] without an async runtime: blocks the thread, trying every
/// [`BLOCKING_POLL_INTERVAL`].
#[track_caller]
pub fn eventually_blocking<R: Outcome>(
    what: impl Display,
    timeout: Duration,
    mut check: impl FnMut() -> R,
) -> R::Value {
    let start = Instant::now();
    loop {
        if let Some(value) = judge(check(), &what, start, timeout) {
            return value;
        }
        std::thread::sleep(BLOCKING_POLL_INTERVAL);
    }
}

/// The value of a successful attempt; `None` to try again; the timeout panic once `timeout` has
/// passed since `start`.
#[track_caller]
fn judge<R: Outcome>(outcome: R, what: &dyn Display, start: Instant, timeout: Duration) -> Option<R::Value> {
    match outcome.into_result() {
        Ok(value) => Some(value),
        Err(note) if start.elapsed() >= timeout => {
            let note = note.map(|n| format!("\nlast attempt: {n}")).unwrap_or_default();
            panic!("timed out after {:.1?} (limit {timeout:?}) waiting for {what}{note}", start.elapsed())
        }
        Err(_) => None,
    }
}

/// A [`Display`] that calls `f` each time it is shown: a `what` for [`eventually`] that gathers
/// diagnostics (a log's tail, the host's state) only if the wait times out.
pub fn describe<F: Fn() -> String>(f: F) -> impl Display {
    Describe(f)
}

struct Describe<F>(F);

impl<F: Fn() -> String> Display for Describe<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&(self.0)())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_value_of_the_first_success() {
        let mut attempts = 0;
        let v = eventually("three attempts", Duration::from_secs(5), async || {
            attempts += 1;
            (attempts == 3).then_some(attempts * 10)
        })
        .await;
        assert_eq!((v, attempts), (30, 3));
        eventually("true", Duration::ZERO, async || true).await;
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for the answer\nlast attempt: still 42")]
    async fn times_out_with_what_and_the_last_attempt() {
        eventually("the answer", Duration::from_millis(120), async || Err::<(), _>("still 42")).await;
    }

    #[test]
    #[should_panic(expected = "waiting for a lazy description")]
    fn blocking_times_out_formatting_what_only_then() {
        eventually_blocking(describe(|| "a lazy description".into()), Duration::ZERO, || false);
    }
}
