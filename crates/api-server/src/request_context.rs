//! Who is making the request being served, for the code deep inside it (the registry's admission
//! step), as Kubernetes carries the user in the request's `context.Context`: each door runs its handler
//! inside [`with_user`], and [`current_user`] reads it on the same task. Writes the api-server makes on
//! its own (the default policy, allocations' repair) run outside any request: no user, no admission.

use std::future::Future;

use crate::user_info::UserInfo;

tokio::task_local! {
    static REQUESTER: UserInfo;
}

/// Runs `f` as a request of `user`.
pub async fn with_user<F: Future>(user: UserInfo, f: F) -> F::Output {
    REQUESTER.scope(user, f).await
}

/// The user of the request this task serves, if it serves one.
pub fn current_user() -> Option<UserInfo> {
    REQUESTER.try_with(UserInfo::clone).ok()
}
