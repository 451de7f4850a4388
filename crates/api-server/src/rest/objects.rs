//! The object endpoints: get, list (and watch), create, update, patch (server-side apply included),
//! delete and deletecollection on a kind's collection or object, the `status`, `scale` and `binding`
//! subresources, and a CertificateSigningRequest's `approval` (get, update and patch, served like `status`;
//! [`crate::registry::approval`] keeps such a write to the request's conditions). Every write names its
//! field manager (`fieldManager`, else the User-Agent's product), which the registry records in
//! `metadata.managedFields`.

use std::pin::Pin;

use http::{HeaderValue, Method, Response, StatusCode};
use navarch_api::managed_fields::{self, UpdateWriter};
use navarch_api::{KindInfo, Object};
use serde::Deserialize;
use serde_json::{Value, json};

use super::decode::{self, FieldValidation};
use super::encode::{self, IncludeObject, ListMeta};
use super::media::{self, Output};
use super::path::ResourcePath;
use super::query;
use super::status::{Cause, Details, StatusError};
use super::{ResponseBody, RestRequest, patch, watch};
use crate::error::ApiError;
use crate::registry::binding::BindTarget;
use crate::registry::{self, DeleteOptions, FieldManager, ListOptions, approval};
use crate::state::ApiState;

mod ephemeral;

/// How often a patch is retried when the object changed between its read and its write.
const PATCH_ATTEMPTS: usize = 5;

/// What a request on one kind needs besides the state: its path, and its encoding choices.
struct Call<'a> {
    state: &'a ApiState,
    path: ResourcePath,
    req: RestRequest,
    output: Output,
}

pub async fn handle(
    state: &ApiState,
    path: ResourcePath,
    req: RestRequest,
) -> Result<Response<ResponseBody>, StatusError> {
    let info = path.info;
    // A namespaced object is addressed inside its namespace; `/api/v1/pods/x` names nothing.
    if info.namespaced && path.name.is_some() && path.namespace.is_none() {
        return Err(StatusError::no_such_path());
    }
    // The resource metrics kinds are read-only: get and list, no subresources (metrics-server's routes).
    if !info.is_stored() {
        if path.subresource.is_some() {
            return Err(StatusError::no_such_path());
        }
        if req.method != Method::GET || req.query.bool("watch") {
            return Err(StatusError::method_not_supported());
        }
    }
    let output = Output::negotiate(&req.headers);
    let method = req.method.clone();
    let c = Call { state, path, req, output };
    let sub = c.path.subresource.clone();
    let named = c.path.name.is_some();
    let written = written_through(info, sub.as_deref());
    let through = written.unwrap_or_default();
    let reply: Reply<'_> = match (sub.as_deref(), named, method) {
        (None, false, Method::GET) if c.req.query.bool("watch") => {
            boxed(|| watch::serve(c.state, &c.path, &c.req, c.output))
        }
        (None, false, Method::GET) => boxed(|| c.list()),
        (None, false, Method::POST) if info.namespaced && c.path.namespace.is_none() => {
            return Err(StatusError::method_not_allowed(&Method::POST));
        }
        (None, false, Method::POST) => boxed(|| c.create()),
        (None, false, Method::DELETE) => boxed(|| c.delete_collection()),
        (None | Some("status"), true, Method::GET) => boxed(|| c.get()),
        (Some(_), true, Method::GET) if written.is_some() => boxed(|| c.get()),
        (_, true, Method::PUT) if written.is_some() => boxed(|| c.update(through)),
        (_, true, Method::PATCH) if written.is_some() => boxed(|| c.patch(through)),
        (None, true, Method::DELETE) => boxed(|| c.delete()),
        (Some("scale"), true, m) if super::discovery::SCALABLE.contains(&info.kind) => boxed(|| c.scale(m)),
        (Some("binding"), true, Method::POST) if info.kind == "Pod" => boxed(|| c.bind()),
        (Some("token"), true, Method::POST) if info.kind == "ServiceAccount" => {
            boxed(|| super::reviews::token_request(c.state, &c.path, &c.req))
        }
        (Some("token"), true, m) if info.kind == "ServiceAccount" => {
            return Err(StatusError::method_not_allowed(&m));
        }
        (Some("eviction"), true, Method::POST) if info.kind == "Pod" => boxed(|| c.evict()),
        (Some("log"), true, Method::GET) if info.kind == "Pod" => {
            boxed(|| super::logs::serve(c.state, &c.path, &c.req))
        }
        (Some("ephemeralcontainers"), true, m) if info.kind == "Pod" => boxed(|| c.ephemeral_containers(m)),
        (Some(_), true, m) if written.is_some() => return Err(StatusError::method_not_allowed(&m)),
        (Some("status" | "scale" | "binding" | "eviction" | "log"), true, m) | (None, _, m) => {
            return Err(StatusError::method_not_allowed(&m));
        }
        _ => return Err(StatusError::no_such_path()),
    };
    reply.await
}

/// The subresource a PUT or PATCH of `<object>[/<sub>]` writes the object through: `""` (the object itself),
/// `status` of a kind that has one, `approval` of a CertificateSigningRequest; `None` for other paths.
fn written_through(info: &KindInfo, sub: Option<&str>) -> Option<&'static str> {
    match sub {
        None => Some(""),
        Some("status") if info.has_status => Some("status"),
        Some(approval::SUBRESOURCE) if info.kind == "CertificateSigningRequest" => {
            Some(approval::SUBRESOURCE)
        }
        _ => None,
    }
}

/// What a write through `subresource` is measured as: `(update verb, patch verb)`.
fn write_verbs(subresource: &str) -> (&'static str, &'static str) {
    match subresource {
        "status" => ("update_status", "patch_status"),
        approval::SUBRESOURCE => ("update_approval", "patch_approval"),
        _ => ("update", "patch"),
    }
}

/// A handler's reply, boxed.
type Reply<'a> = Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, StatusError>> + Send + 'a>>;

/// `make()`'s future, made and boxed here. Unoptimized builds give every temporary of a function its own
/// stack slot: had `handle` made each arm's future itself, all of them (some hundreds of KiB each) would sit
/// on its stack at once, close to the 2 MiB of a runtime thread with a request's deepest decoding on top.
fn boxed<'a, F>(make: impl FnOnce() -> F) -> Reply<'a>
where
    F: Future<Output = Result<Response<ResponseBody>, StatusError>> + Send + 'a,
{
    Box::pin(make())
}

impl Call<'_> {
    fn err(&self, e: ApiError) -> StatusError {
        StatusError::from_api(e, Some(self.path.info))
    }

    fn namespace(&self) -> &str {
        self.path.namespace.as_deref().unwrap_or("")
    }

    fn name(&self) -> &str {
        self.path.name.as_deref().unwrap_or("")
    }

    fn key(&self) -> String {
        format!("{}/{}", self.namespace(), self.name())
    }

    fn include_object(&self) -> IncludeObject {
        IncludeObject::from_query(&self.req.query)
    }

    fn dry_run(&self) -> Result<bool, StatusError> {
        self.req.query.dry_run()
    }

    async fn get(&self) -> Result<Response<ResponseBody>, StatusError> {
        let kind = self.path.info.kind;
        let obj = self
            .state
            .call("get", kind, &self.key(), self.state.registry.get(kind, self.namespace(), self.name()))
            .await
            .map_err(|e| self.err(e))?;
        Ok(encode::object(StatusCode::OK, self.output, self.include_object(), self.path.info, &obj))
    }

    async fn list(&self) -> Result<Response<ResponseBody>, StatusError> {
        let q = &self.req.query;
        let kind = self.path.info.kind;
        let opts = ListOptions {
            namespace: self.namespace().to_string(),
            label_selector: q.str("labelSelector"),
            field_selector: q.str("fieldSelector"),
            limit: q.int("limit")?.unwrap_or(0).max(0),
            continue_token: q.str("continue"),
        };
        let l = self
            .state
            .call("list", kind, self.namespace(), self.state.registry.list(kind, &opts))
            .await
            .map_err(|e| self.err(e))?;
        let meta = ListMeta {
            resource_version: l.resource_version.to_string(),
            continue_token: l.continue_token,
            remaining: l.remaining,
        };
        Ok(encode::list(self.path.info, self.output, self.include_object(), &l.items, &meta))
    }

    /// The request body as an object of this kind, with its namespace (and name) checked against the
    /// path's, and whether it sent `metadata.managedFields: []` (a reset).
    fn body_object(&self) -> Result<(decode::Decoded, bool), StatusError> {
        let format =
            media::body_format(&self.req.headers).map_err(|t| StatusError::unsupported_media_type(&t))?;
        let message = navarch_api::versions::message(self.path.info);
        let value = decode::value(&self.req.body, format, Some(message))?;
        let reset = value
            .get("metadata")
            .and_then(|m| m.get("managedFields"))
            .and_then(serde_yaml::Value::as_sequence)
            .is_some_and(Vec::is_empty);
        let validation = FieldValidation::from_query(&self.req.query)?;
        let mut d = decode::object(self.path.info, value, validation)?;
        self.check_identity(&mut d.object)?;
        Ok((d, reset))
    }

    /// The field manager of a write: `fieldManager`, else the User-Agent's product (`kubectl/v1.32.4 ...`
    /// is `kubectl`), checked as Kubernetes checks it (`options` names the request's options kind in the
    /// error: `CreateOptions`, `UpdateOptions`, `PatchOptions`).
    fn manager(&self, options: &str) -> Result<String, StatusError> {
        let manager = match self.req.query.get("fieldManager") {
            Some(m) => m.to_string(),
            None => {
                let ua = self.req.headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok());
                managed_fields::manager_from_user_agent(ua.unwrap_or(""))
            }
        };
        managed_fields::check_manager(&manager).map_err(|e| options_invalid(options, "fieldManager", &e))?;
        Ok(manager)
    }

    fn check_identity(&self, obj: &mut Object) -> Result<(), StatusError> {
        let info = self.path.info;
        let meta = obj.meta_mut();
        if info.namespaced {
            let ns = self.namespace();
            if meta.namespace.is_empty() {
                meta.namespace = ns.to_string();
            } else if meta.namespace != ns {
                return Err(StatusError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        } else {
            meta.namespace.clear();
        }
        if let Some(name) = &self.path.name {
            if meta.name.is_empty() {
                meta.name = name.clone();
            } else if &meta.name != name {
                return Err(StatusError::bad_request(format!(
                    "the name of the object ({}) does not match the name on the URL ({name})",
                    meta.name
                )));
            }
        }
        Ok(())
    }

    async fn create(&self) -> Result<Response<ResponseBody>, StatusError> {
        let (d, reset) = self.body_object()?;
        let dry_run = self.dry_run()?;
        let manager = self.manager("CreateOptions")?;
        let writer = FieldManager::Update(UpdateWriter { manager: &manager, subresource: "", reset });
        let key = d.object.key();
        let obj = self
            .state
            .call("create", self.path.info.kind, &key, self.state.registry.create(d.object, dry_run, writer))
            .await
            .map_err(|e| self.err(e))?;
        Ok(with_warnings(
            encode::object(StatusCode::CREATED, self.output, self.include_object(), self.path.info, &obj),
            &d.warnings,
        ))
    }

    /// A PUT of the object through `subresource` ([`written_through`]).
    async fn update(&self, subresource: &'static str) -> Result<Response<ResponseBody>, StatusError> {
        let (d, reset) = self.body_object()?;
        let dry_run = self.dry_run()?;
        let manager = self.manager("UpdateOptions")?;
        let writer = FieldManager::Update(UpdateWriter { manager: &manager, subresource, reset });
        let status_only = subresource == "status";
        let obj = self
            .state
            .call(
                write_verbs(subresource).0,
                self.path.info.kind,
                &self.key(),
                self.state.registry.update(d.object, status_only, dry_run, writer),
            )
            .await
            .map_err(|e| self.err(e))?;
        Ok(with_warnings(
            encode::object(StatusCode::OK, self.output, self.include_object(), self.path.info, &obj),
            &d.warnings,
        ))
    }

    /// Reads the object, applies `change` to its JSON form, and writes it back with the read's
    /// resourceVersion as an `Update` by `manager` through `subresource`; retried when someone else wrote in
    /// between.
    async fn read_modify_write(
        &self,
        verb: &'static str,
        (manager, subresource): (&str, &str),
        dry_run: bool,
        change: impl Fn(Value) -> Result<Value, StatusError>,
    ) -> Result<(Object, Vec<String>), StatusError> {
        let status_only = subresource == "status";
        let info = self.path.info;
        let validation = FieldValidation::from_query(&self.req.query)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let current = self
                .state
                .registry
                .get(info.kind, self.namespace(), self.name())
                .await
                .map_err(|e| self.err(e))?;
            let rv = current.meta().resource_version.clone();
            let changed = change(encode::object_value(info, &current))?;
            // A patch naming another resourceVersion is a precondition: its conflict is the client's.
            let explicit = changed["metadata"]["resourceVersion"].as_str().is_some_and(|v| v != rv);
            let reset = changed["metadata"]["managedFields"].as_array().is_some_and(Vec::is_empty);
            let value = serde_yaml::to_value(&changed)
                .map_err(|e| StatusError::bad_request(format!("the patched object: {e}")))?;
            let mut d = decode::object(info, value, validation)?;
            self.check_identity(&mut d.object)?;
            // A patch that does not name a resourceVersion applies to the version it was computed on.
            let meta = d.object.meta_mut();
            if meta.resource_version.is_empty() {
                meta.resource_version = rv;
            }
            let writer = FieldManager::Update(UpdateWriter { manager, subresource, reset });
            let write = self.state.registry.update(d.object, status_only, dry_run, writer);
            match self.state.call(verb, info.kind, &self.key(), write).await {
                Ok(obj) => return Ok((obj, d.warnings)),
                Err(ApiError::Conflict { .. }) if attempt < PATCH_ATTEMPTS && !explicit => continue,
                Err(e) => return Err(self.err(e)),
            }
        }
    }

    /// A PATCH of the object through `subresource` ([`written_through`]); server-side apply is served
    /// on the object and its status.
    async fn patch(&self, subresource: &'static str) -> Result<Response<ResponseBody>, StatusError> {
        let patch_type = media::patch_type(&self.req.headers);
        if patch_type == Some(media::PatchType::Apply) && subresource != approval::SUBRESOURCE {
            // Boxed: its future is large (see `boxed`).
            return boxed(|| self.apply(subresource == "status")).await;
        }
        if self.req.query.get("force").is_some() {
            return Err(options_invalid(
                "PatchOptions",
                "force",
                "Forbidden: may not be specified for non-apply patch",
            ));
        }
        let kind = patch::PatchKind::from_type(patch_type)?;
        let doc: Value = decode::json_or_yaml(&self.req.body, "the patch")?;
        let dry_run = self.dry_run()?;
        let manager = self.manager("PatchOptions")?;
        let info = self.path.info;
        let (obj, warnings) = self
            .read_modify_write(write_verbs(subresource).1, (&manager, subresource), dry_run, |current| {
                patch::apply(kind, info, current, &doc)
            })
            .await?;
        Ok(with_warnings(
            encode::object(StatusCode::OK, self.output, self.include_object(), self.path.info, &obj),
            &warnings,
        ))
    }

    /// Server-side apply: the configuration merged into the object (created when absent: 201), the
    /// applier's managed fields replaced by the configuration's fields, conflicts refused unless `force`.
    /// Retried when someone else wrote (or created the object) between the read and the write.
    async fn apply(&self, status_only: bool) -> Result<Response<ResponseBody>, StatusError> {
        let info = self.path.info;
        let q = &self.req.query;
        let manager = q.get("fieldManager").unwrap_or("").to_string();
        if manager.is_empty() {
            return Err(options_invalid(
                "PatchOptions",
                "fieldManager",
                "Required value: is required for apply patch",
            ));
        }
        managed_fields::check_manager(&manager)
            .map_err(|e| options_invalid("PatchOptions", "fieldManager", &e))?;
        let force = q.bool("force");
        let dry_run = self.dry_run()?;
        FieldValidation::from_query(q)?;
        let config = patch::apply::parse(&self.req.body, info, self.namespace(), self.name())?;
        let subresource = if status_only { "status" } else { "" };
        let verb = if status_only { "apply_status" } else { "apply" };
        for attempt in 1..=PATCH_ATTEMPTS {
            let current = match self.state.registry.get(info.kind, self.namespace(), self.name()).await {
                Ok(o) => Some(o),
                Err(ApiError::NotFound { .. }) if !status_only => None,
                Err(e) => return Err(self.err(e)),
            };
            // A resourceVersion in the configuration is a precondition, as in any write.
            let wanted = config["metadata"]["resourceVersion"].as_str().filter(|v| !v.is_empty());
            if let (Some(c), Some(rv)) = (&current, wanted)
                && c.meta().resource_version != rv
            {
                return Err(
                    self.err(ApiError::Conflict { plural: info.plural.into(), name: self.name().into() })
                );
            }
            let now = registry::now_rfc3339();
            let opts = patch::apply::Options { manager: &manager, force, subresource, now: &now };
            let applied = patch::apply::apply(info, current.as_ref(), &config, &opts)?;
            let mut object = applied.object;
            self.check_identity(&mut object)?;
            let writer = FieldManager::Applied { managed: &applied.managed, applier: &applied.applier };
            let key = self.key();
            let written = match &current {
                None => {
                    let create = self.state.registry.create(object, dry_run, writer);
                    self.state.call(verb, info.kind, &key, create).await.map(|o| (o, StatusCode::CREATED))
                }
                Some(c) => {
                    object.meta_mut().resource_version = c.meta().resource_version.clone();
                    let update = self.state.registry.update(object, status_only, dry_run, writer);
                    self.state.call(verb, info.kind, &key, update).await.map(|o| (o, StatusCode::OK))
                }
            };
            match written {
                Ok((obj, code)) => {
                    return Ok(encode::object(
                        code,
                        self.output,
                        self.include_object(),
                        self.path.info,
                        &obj,
                    ));
                }
                Err(ApiError::Conflict { .. } | ApiError::AlreadyExists { .. })
                    if attempt < PATCH_ATTEMPTS => {}
                Err(e) => return Err(self.err(e)),
            }
        }
        unreachable!("the last attempt returns")
    }

    /// The DeleteOptions of a DELETE: its body (JSON or YAML, or protobuf as client-go's typed clients send
    /// it) and the query.
    fn delete_options(&self) -> Result<DeleteOptions, StatusError> {
        let body = &self.req.body;
        if media::body_format(&self.req.headers) == Ok(media::BodyFormat::Protobuf) && !body.is_empty() {
            let v = decode::value(body, media::BodyFormat::Protobuf, Some("DeleteOptions"))?;
            return self.delete_options_from(&serde_json::to_vec(&v).unwrap_or_default());
        }
        self.delete_options_from(body)
    }

    /// DeleteOptions from a JSON (or YAML) `body` and the query.
    fn delete_options_from(&self, body: &[u8]) -> Result<DeleteOptions, StatusError> {
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase")]
        struct Preconditions {
            #[serde(default)]
            uid: Option<String>,
            #[serde(default)]
            resource_version: Option<String>,
        }
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase")]
        struct Body {
            #[serde(default)]
            grace_period_seconds: Option<i64>,
            #[serde(default)]
            propagation_policy: Option<String>,
            #[serde(default)]
            orphan_dependents: Option<bool>,
            #[serde(default)]
            preconditions: Option<Preconditions>,
            #[serde(default)]
            dry_run: Vec<String>,
        }
        let body: Body = if body.iter().all(u8::is_ascii_whitespace) {
            Body::default()
        } else {
            decode::json_or_yaml(body, "DeleteOptions")?
        };
        let q = &self.req.query;
        let policy = body
            .propagation_policy
            .or_else(|| q.get("propagationPolicy").map(str::to_string))
            .or_else(|| {
                match body
                    .orphan_dependents
                    .or_else(|| q.get("orphanDependents").map(|_| q.bool("orphanDependents")))
                {
                    Some(true) => Some("Orphan".into()),
                    Some(false) => Some("Background".into()),
                    None => None,
                }
            })
            .unwrap_or_default();
        let pre = body.preconditions.unwrap_or_default();
        Ok(DeleteOptions {
            grace_period_seconds: body.grace_period_seconds.or(q.int("gracePeriodSeconds")?),
            propagation_policy: policy,
            precondition_uid: pre.uid.unwrap_or_default(),
            precondition_resource_version: pre.resource_version.unwrap_or_default(),
            dry_run: query::dry_run_values(&body.dry_run)? || q.dry_run()?,
        })
    }

    async fn delete(&self) -> Result<Response<ResponseBody>, StatusError> {
        let opts = self.delete_options()?;
        let info = self.path.info;
        let delete = self.state.registry.delete(info.kind, self.namespace(), self.name(), &opts);
        let (obj, pending) =
            self.state.call("delete", info.kind, &self.key(), delete).await.map_err(|e| self.err(e))?;
        // Kubernetes returns a pod (and any object still waiting for finalizers) itself, other
        // deleted objects as a Status.
        if pending || info.kind == "Pod" {
            Ok(encode::object(StatusCode::OK, self.output, self.include_object(), self.path.info, &obj))
        } else {
            Ok(encode::deleted(info, &obj))
        }
    }

    async fn delete_collection(&self) -> Result<Response<ResponseBody>, StatusError> {
        let opts = self.delete_options()?;
        let q = &self.req.query;
        let info = self.path.info;
        let list_opts = ListOptions {
            namespace: self.namespace().to_string(),
            label_selector: q.str("labelSelector"),
            field_selector: q.str("fieldSelector"),
            ..Default::default()
        };
        let l = self.state.registry.list(info.kind, &list_opts).await.map_err(|e| self.err(e))?;
        let mut deleted = Vec::new();
        for o in &l.items {
            let m = o.meta();
            let delete = self.state.registry.delete(info.kind, &m.namespace, &m.name, &opts);
            match self.state.call("delete", info.kind, &o.key(), delete).await {
                Ok((obj, _)) => deleted.push(obj),
                Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(self.err(e)),
            }
        }
        let meta = ListMeta { resource_version: l.resource_version.to_string(), ..Default::default() };
        Ok(encode::list(info, self.output, self.include_object(), &deleted, &meta))
    }

    async fn bind(&self) -> Result<Response<ResponseBody>, StatusError> {
        let format =
            media::body_format(&self.req.headers).map_err(|t| StatusError::unsupported_media_type(&t))?;
        let v = decode::value(&self.req.body, format, None)?;
        let v: Value = serde_json::to_value(&v).unwrap_or_default();
        let node = v["target"]["name"].as_str().unwrap_or("");
        let uid = v["metadata"]["uid"].as_str().unwrap_or("");
        let target = BindTarget {
            namespace: self.namespace().to_string(),
            name: self.name().to_string(),
            uid: uid.to_string(),
            node: node.to_string(),
        };
        let bind = self.state.registry.bind(&target);
        self.state.call("bind", "Pod", &self.key(), bind).await.map_err(|e| self.err(e))?;
        Ok(encode::json(
            StatusCode::CREATED,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        ))
    }

    /// `policy/v1 Eviction` (what `kubectl drain` posts, as protobuf): deletes the pod with the eviction's
    /// DeleteOptions if its PodDisruptionBudget allows it ([`crate::eviction`]; a refusal is a 429).
    async fn evict(&self) -> Result<Response<ResponseBody>, StatusError> {
        let format =
            media::body_format(&self.req.headers).map_err(|t| StatusError::unsupported_media_type(&t))?;
        let v = decode::value(&self.req.body, format, Some("Eviction"))?;
        let v: Value = serde_json::to_value(&v).unwrap_or_default();
        if let Some(name) = v["metadata"]["name"].as_str().filter(|n| !n.is_empty() && *n != self.name()) {
            return Err(StatusError::bad_request(format!(
                "name in URL does not match name in Eviction object: {} vs {name}",
                self.name()
            )));
        }
        let options =
            v.get("deleteOptions").map(|o| serde_json::to_vec(o).unwrap_or_default()).unwrap_or_default();
        let opts = self.delete_options_from(&options)?;
        let evict = crate::eviction::evict(&self.state.registry, self.namespace(), self.name(), &opts);
        self.state.call("evict", "Pod", &self.key(), evict).await.map_err(|e| self.err(e))?;
        Ok(encode::json(
            StatusCode::CREATED,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        ))
    }

    /// `autoscaling/v1 Scale` of a Deployment, ReplicaSet, StatefulSet or ReplicationController.
    async fn scale(&self, method: Method) -> Result<Response<ResponseBody>, StatusError> {
        let info = self.path.info;
        let obj = match method {
            Method::GET => self
                .state
                .call(
                    "get",
                    info.kind,
                    &self.key(),
                    self.state.registry.get(info.kind, self.namespace(), self.name()),
                )
                .await
                .map_err(|e| self.err(e))?,
            Method::PUT | Method::PATCH => {
                let dry_run = self.dry_run()?;
                let body: Value = decode::json_or_yaml(&self.req.body, "the body")?;
                let kind = if method == Method::PUT {
                    None
                } else {
                    Some(patch::PatchKind::from_type(media::patch_type(&self.req.headers))?)
                };
                let manager =
                    self.manager(if method == Method::PUT { "UpdateOptions" } else { "PatchOptions" })?;
                let (obj, _) = self
                    .read_modify_write("scale", (&manager, "scale"), dry_run, |mut current| {
                        let scale = scale_of(&current, info.kind);
                        let wanted = match kind {
                            None => body.clone(),
                            Some(k) => patch::apply_untyped(k, scale, &body)?,
                        };
                        let replicas = wanted["spec"]["replicas"]
                            .as_i64()
                            .ok_or_else(|| StatusError::bad_request("spec.replicas: Required value"))?;
                        current["spec"]["replicas"] = json!(replicas);
                        if let Some(rv) = wanted["metadata"]["resourceVersion"].as_str() {
                            current["metadata"]["resourceVersion"] = json!(rv);
                        }
                        Ok(current)
                    })
                    .await?;
                obj
            }
            m => return Err(StatusError::method_not_allowed(&m)),
        };
        Ok(encode::json(StatusCode::OK, &scale_of(&encode::object_value(info, &obj), info.kind)))
    }
}

/// The Scale of an object's JSON form (a `kind`: a ReplicationController's selector is a label map).
fn scale_of(obj: &Value, kind: &str) -> Value {
    let selector = &obj["spec"]["selector"];
    let selector =
        if kind == "ReplicationController" { json!({"matchLabels": selector}) } else { selector.clone() };
    let meta = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {
            "replicas": obj["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": scale_selector(&selector),
        },
    })
}

/// A Scale's `status.selector`: the label selector as a string, empty when there is none.
fn scale_selector(selector: &Value) -> String {
    if selector.is_null() || selector.as_object().is_some_and(|m| m.is_empty()) {
        return String::new();
    }
    navarch_api::table_columns::selector_string(selector)
}

/// Kubernetes' 422 for request options (`PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required
/// value: is required for apply patch`): `detail` is `<Reason>: <message>`.
fn options_invalid(options: &str, field: &str, detail: &str) -> StatusError {
    let reason = match detail.split(':').next().unwrap_or("") {
        "Required value" => "FieldValueRequired",
        "Forbidden" => "FieldValueForbidden",
        "Too long" => "FieldValueTooLong",
        _ => "FieldValueInvalid",
    };
    StatusError {
        details: Some(Box::new(Details {
            group: "meta.k8s.io".into(),
            kind: options.to_string(),
            causes: vec![Cause { reason, message: detail.to_string(), field: field.to_string() }],
            ..Default::default()
        })),
        ..StatusError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            format!("{options}.meta.k8s.io \"\" is invalid: {field}: {detail}"),
        )
    }
}

/// Adds a `Warning` header per message (`299 - "<message>"`), as Kubernetes does.
fn with_warnings(mut resp: Response<ResponseBody>, warnings: &[String]) -> Response<ResponseBody> {
    for w in warnings {
        let text = format!("299 - {}", serde_json::to_string(w).unwrap_or_default());
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append(http::header::WARNING, v);
        }
    }
    resp
}
