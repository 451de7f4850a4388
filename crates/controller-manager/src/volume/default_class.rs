//! navarch's default StorageClass: `local-path` (provisioner `navarch.io/local-path`, the kubelet's
//! node-local provisioner; reclaim Delete; WaitForFirstConsumer; annotated as the default class), created
//! when the controller-manager starts leading if no class of that name exists — a class of that name
//! the user made or changed is never overwritten, and a deleted one comes back only at the next start.

use std::time::Duration;

use navarch_api::Resource;
use navarch_api::storage::{
    ANN_DEFAULT_CLASS, BINDING_WAIT_FOR_FIRST_CONSUMER, LOCAL_PATH_CLASS, LOCAL_PATH_PROVISIONER,
};
use navarch_api::v1::StorageClass;
use navarch_client::Client;

use crate::run::Wiring;

/// How long to wait before trying again when the api-server refuses or is away.
const RETRY: Duration = Duration::from_secs(5);

/// The class created.
pub fn local_path_class() -> StorageClass {
    let mut sc = StorageClass {
        provisioner: LOCAL_PATH_PROVISIONER.into(),
        reclaim_policy: Some("Delete".into()),
        volume_binding_mode: Some(BINDING_WAIT_FOR_FIRST_CONSUMER.into()),
        ..Default::default()
    };
    let m = sc.meta_mut();
    m.name = LOCAL_PATH_CLASS.into();
    m.annotations.insert(ANN_DEFAULT_CLASS.into(), "true".into());
    sc.set_type_meta();
    sc
}

/// Creates the class unless one of its name exists.
pub async fn ensure(client: &Client) -> Result<bool, navarch_client::Error> {
    let api = client.api::<StorageClass>("");
    if api.get_opt(LOCAL_PATH_CLASS).await?.is_some() {
        return Ok(false);
    }
    match api.create(&local_path_class()).await {
        Ok(_) => Ok(true),
        Err(navarch_client::Error::AlreadyExists(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Makes sure the class exists, retrying until it does or the controllers stop.
pub fn spawn(w: &mut Wiring) {
    let client = w.client.clone();
    let stop = w.stop.clone();
    w.spawn(async move {
        loop {
            match ensure(&client).await {
                Ok(created) => {
                    if created {
                        tracing::info!(class = LOCAL_PATH_CLASS, "created the default StorageClass");
                    }
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "making sure the default StorageClass exists"),
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(RETRY) => {}
            }
        }
    });
}
