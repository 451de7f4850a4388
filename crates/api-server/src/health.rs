//! The api-server's health checks on the daemon shell's admin server: `/healthz` passes while the
//! process serves; `/readyz` also needs every watch cache started and etcd answering within 2 s.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use navarch_daemon::Admin;

use crate::storage::Storage;

/// Registers the readiness checks.
pub fn register_checks(admin: &mut Admin, storage: Storage, caches_ready: Arc<AtomicBool>) {
    admin.readiness("watch-caches", Admin::flag_check(caches_ready, "watch caches starting"));
    admin.readiness(
        "etcd",
        Arc::new(move || {
            let storage = storage.clone();
            Box::pin(async move {
                match tokio::time::timeout(Duration::from_secs(2), storage.current_revision()).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("no answer within 2s".into()),
                }
            })
        }),
    );
}
