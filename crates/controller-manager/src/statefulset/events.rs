//! The StatefulSet controller's events, worded as Kubernetes' `recordPodEvent` and `recordClaimEvent`:
//! `SuccessfulCreate` "create Pod web-0 in StatefulSet web successful", `FailedCreate` "create Claim
//! data-web-0 for Pod web-0 in StatefulSet web failed error: ...", and so on for update and delete.

/// What was done to a pod or claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Create,
    Update,
    Delete,
}

impl Verb {
    fn word(self) -> &'static str {
        match self {
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Delete => "delete",
        }
    }

    fn reason(self, ok: bool) -> &'static str {
        match (self, ok) {
            (Verb::Create, true) => "SuccessfulCreate",
            (Verb::Update, true) => "SuccessfulUpdate",
            (Verb::Delete, true) => "SuccessfulDelete",
            (Verb::Create, false) => "FailedCreate",
            (Verb::Update, false) => "FailedUpdate",
            (Verb::Delete, false) => "FailedDelete",
        }
    }
}

/// One event about the set: its type (Normal, Warning), reason and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: &'static str,
    pub reason: &'static str,
    pub message: String,
}

fn event(verb: Verb, error: Option<&str>, message: String) -> Event {
    let kind = if error.is_none() { "Normal" } else { "Warning" };
    Event { kind, reason: verb.reason(error.is_none()), message }
}

/// The event of `verb` on pod `pod` of set `set`, failed with `error` or not.
pub fn pod_event(verb: Verb, set: &str, pod: &str, error: Option<&str>) -> Event {
    let w = verb.word();
    let message = match error {
        None => format!("{w} Pod {pod} in StatefulSet {set} successful"),
        Some(e) => format!("{w} Pod {pod} in StatefulSet {set} failed error: {e}"),
    };
    event(verb, error, message)
}

/// The event of `verb` on claim `claim` of pod `pod` of set `set`, failed with `error` or not.
pub fn claim_event(verb: Verb, set: &str, pod: &str, claim: &str, error: Option<&str>) -> Event {
    let w = verb.word();
    let message = match error {
        None => format!("{w} Claim {claim} Pod {pod} in StatefulSet {set} success"),
        Some(e) => format!("{w} Claim {claim} for Pod {pod} in StatefulSet {set} failed error: {e}"),
    };
    event(verb, error, message)
}
