//! The start-up repair of Service allocations (Kubernetes' repair loops, run once): allocation keys
//! that no Service holds are removed, values Services hold without a key are recorded, keys naming the
//! wrong holder are corrected.

use std::collections::BTreeMap;

use navarch_api::Object;

use super::{ServiceAllocator, holdings, owner};
use crate::codec::{self, decode_value};
use crate::storage::StorageError;

/// What the start-up repair did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RepairReport {
    /// Allocation keys removed because no Service holds them.
    pub released: usize,
    /// Allocation keys written for values Services hold without one.
    pub recorded: usize,
    /// Allocation keys whose holder was corrected.
    pub corrected: usize,
}

impl ServiceAllocator {
    /// Kubernetes' repair loops, once: removes allocation keys that no Service holds, records values
    /// that Services hold without a key, and corrects keys naming another holder. Every change is
    /// guarded by the revisions read, so it is safe while other api-servers write.
    pub async fn repair(&self) -> Result<RepairReport, StorageError> {
        let info = navarch_api::kind_info("Service").expect("Service is a kind");
        let services = self.storage.list(&codec::kind_prefix(&self.prefix, info), None, 0, 0).await?;
        let rev = services.revision;
        // allocation key → (holder, Service key, its mod_revision)
        let mut wanted: BTreeMap<String, (String, String, i64)> = BTreeMap::new();
        for s in &services.items {
            let svc = match decode_value("Service", &s.value, s.mod_revision) {
                Ok(Object::Service(svc)) => svc,
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(key = %s.key, error = %e, "repair: undecodable Service skipped");
                    continue;
                }
            };
            let holder = owner(&svc);
            let h = holdings(&svc);
            if let Some(ip) = h.ip.filter(|ip| !self.ips.contains(*ip)) {
                tracing::warn!(service = %holder, %ip, range = %self.ips,
                    "repair: cluster IP is not within the service cluster IP range; recreate the Service to move it");
            }
            for key in self.keys_of(&h) {
                if let Some((other, ..)) = wanted.get(&key) {
                    tracing::warn!(%key, first = %other, second = %holder,
                        "repair: the value is held by more than one Service");
                    continue;
                }
                wanted.insert(key, (holder.clone(), s.key.clone(), s.mod_revision));
            }
        }
        let mut report = RepairReport::default();
        for prefix in [&self.ip_prefix, &self.port_prefix] {
            let page = self.storage.list(prefix, None, rev, 0).await?;
            for a in page.items {
                let value = String::from_utf8_lossy(&a.value).into_owned();
                match wanted.remove(&a.key) {
                    None => match self.storage.delete(&a.key, a.mod_revision).await {
                        Ok(_) => {
                            tracing::info!(key = %a.key, holder = %value,
                                "repair: released an allocation no Service holds");
                            report.released += 1;
                        }
                        Err(StorageError::Conflict { .. }) => {}
                        Err(e) => return Err(e),
                    },
                    Some((holder, ..)) if holder == value => {}
                    Some((holder, ..)) => {
                        match self.storage.update(&a.key, a.mod_revision, holder.clone().into()).await {
                            Ok(_) => {
                                tracing::warn!(key = %a.key, was = %value, now = %holder,
                                "repair: corrected the holder of an allocation");
                                report.corrected += 1;
                            }
                            Err(StorageError::Conflict { .. }) => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
            }
        }
        for (key, (holder, service_key, service_rev)) in wanted {
            if self.storage.create_guarded(&key, holder.clone().into(), &service_key, service_rev).await? {
                tracing::warn!(%key, service = %holder, "repair: recorded an allocation the Service held without a key");
                report.recorded += 1;
            }
        }
        Ok(report)
    }
}
