//! `pods/<name>/ephemeralcontainers`, what `kubectl debug` patches: GET reads the pod; PUT (a pod) and
//! PATCH (JSON, merge or strategic merge patch, applied to the pod) write it through the subresource,
//! so only its ephemeral containers change, validated as Kubernetes validates them
//! ([`crate::registry::ephemeral`]). The answer is the pod, as Kubernetes gives it.

use http::{Method, Response, StatusCode};
use navarch_api::managed_fields::UpdateWriter;
use serde_json::Value;

use super::{Call, with_warnings};
use crate::registry::FieldManager;
use crate::registry::ephemeral::SUBRESOURCE;
use crate::rest::encode;
use crate::rest::media;
use crate::rest::patch::{self, PatchKind};
use crate::rest::{ResponseBody, StatusError};

impl Call<'_> {
    pub(super) async fn ephemeral_containers(
        &self,
        method: Method,
    ) -> Result<Response<ResponseBody>, StatusError> {
        let (obj, warnings) = match method {
            Method::GET => return self.get().await,
            Method::PUT => {
                let (d, reset) = self.body_object()?;
                let dry_run = self.dry_run()?;
                let manager = self.manager("UpdateOptions")?;
                let writer =
                    FieldManager::Update(UpdateWriter { manager: &manager, subresource: SUBRESOURCE, reset });
                let write = self.state.registry.update(d.object, false, dry_run, writer);
                let obj = self
                    .state
                    .call("update_ephemeralcontainers", "Pod", &self.key(), write)
                    .await
                    .map_err(|e| self.err(e))?;
                (obj, d.warnings)
            }
            Method::PATCH => {
                let kind = PatchKind::from_type(media::patch_type(&self.req.headers))?;
                let doc: Value = super::decode::json_or_yaml(&self.req.body, "the patch")?;
                let dry_run = self.dry_run()?;
                let manager = self.manager("PatchOptions")?;
                let info = self.path.info;
                self.read_modify_write(
                    "patch_ephemeralcontainers",
                    (&manager, SUBRESOURCE),
                    dry_run,
                    |current| patch::apply(kind, info, current, &doc),
                )
                .await?
            }
            m => return Err(StatusError::method_not_allowed(&m)),
        };
        Ok(with_warnings(
            encode::object(StatusCode::OK, self.output, self.include_object(), self.path.info, &obj),
            &warnings,
        ))
    }
}
