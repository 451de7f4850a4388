//! `navctl auth can-i` (a SelfSubjectAccessReview: `yes`, or `no` and exit status 1; `--list`: the
//! SelfSubjectRulesReview as kubectl's table), `navctl auth whoami` (a SelfSubjectReview as kubectl's
//! ATTRIBUTE/VALUE table) and `navctl create token` (a TokenRequest), printed as kubectl 1.32 prints
//! them, warnings included.

use std::collections::HashMap;
use std::io::IsTerminal;

use anyhow::{anyhow, bail};
use navarch_api::v1::{
    BoundObjectReference, NonResourceAttributes, ResourceAttributes, SelfSubjectAccessReview,
    SelfSubjectAccessReviewSpec, SelfSubjectReview, SelfSubjectRulesReview, SelfSubjectRulesReviewSpec,
    SubjectRulesReviewStatus, TokenRequest, TokenRequestSpec,
};
use navarch_client::Error as ClientError;

use crate::cli::{CanIArgs, TokenArgs, WhoamiArgs};
use crate::context::{Context, Outcome, emit, say};
use crate::errors;
use crate::kinds;
use crate::printers::table::Table;

/// Verbs kubectl knows for resources and for non-resource URLs (others get a warning).
const RESOURCE_VERBS: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "use",
    "bind",
    "impersonate",
    "*",
    "approve",
    "sign",
    "escalate",
    "attest",
];
const NON_RESOURCE_VERBS: &[&str] = &["get", "put", "post", "head", "options", "delete", "patch", "*"];
/// Resources that exist for the `impersonate` verb only: no warning about them.
const NON_STANDARD_RESOURCES: &[&str] = &["users", "groups"];
/// The served resources that are no stored kind: (plural, group, namespaced).
const REVIEW_RESOURCES: &[(&str, &str, bool)] = &[
    ("selfsubjectreviews", "authentication.k8s.io", false),
    ("tokenreviews", "authentication.k8s.io", false),
    ("localsubjectaccessreviews", "authorization.k8s.io", true),
    ("selfsubjectaccessreviews", "authorization.k8s.io", false),
    ("selfsubjectrulesreviews", "authorization.k8s.io", false),
    ("subjectaccessreviews", "authorization.k8s.io", false),
];

/// kubectl's warning printer (the message carries its own newline, which kubectl doubles).
fn warn(message: &str) {
    eprintln!("Warning: {message}");
}

/// A resource argument as kubectl's RESTMapper resolves it: (group, resource, namespaced); unknown
/// resources are taken as typed, with a warning.
fn resource_for(arg: &str) -> (String, String, Option<bool>) {
    if arg == "*" {
        return (String::new(), "*".into(), None);
    }
    let lower = arg.to_lowercase();
    if let Ok(info) = kinds::resolve(&lower) {
        return (kinds::api_group(info).to_string(), info.plural.to_string(), Some(info.namespaced));
    }
    let (resource, group) = lower.split_once('.').unwrap_or((lower.as_str(), ""));
    if let Some((plural, g, namespaced)) =
        REVIEW_RESOURCES.iter().find(|(p, g, _)| *p == resource && (group.is_empty() || group == *g))
    {
        return (g.to_string(), plural.to_string(), Some(*namespaced));
    }
    if !NON_STANDARD_RESOURCES.contains(&lower.as_str()) {
        if group.is_empty() {
            warn(&format!("the server doesn't have a resource type '{resource}'\n"));
        } else {
            warn(&format!("the server doesn't have a resource type '{resource}' in group '{group}'\n"));
        }
    }
    (String::new(), arg.to_string(), None)
}

/// The server's own words of a failed call (kubectl prints them after its prefix).
fn server_message(e: &ClientError) -> Option<&str> {
    match e {
        ClientError::NotFound(m)
        | ClientError::AlreadyExists(m)
        | ClientError::Conflict(m)
        | ClientError::Invalid(m)
        | ClientError::FailedPrecondition(m)
        | ClientError::Expired(m)
        | ClientError::Api { message: m, .. } => Some(m),
        _ => None,
    }
}

/// `navctl auth can-i VERB RESOURCE[/NAME] | VERB URL`, or `--list`.
pub async fn can_i(ctx: &Context, args: &CanIArgs) -> anyhow::Result<Outcome> {
    if args.list {
        if !args.args.is_empty() {
            bail!("list option must be specified with no arguments");
        }
        if args.quiet || args.all_namespaces || !args.subresource.is_empty() {
            bail!(
                "list option can't be specified with neither quiet, all-namespaces nor subresource options"
            );
        }
        return list(ctx, args.no_headers).await;
    }
    let [verb, target] = args.args.as_slice() else {
        bail!(
            "you must specify two arguments: verb resource or verb resource/resourceName.\nSee 'navctl auth can-i -h' for help and examples."
        );
    };
    let namespace = if args.all_namespaces { String::new() } else { ctx.namespace().to_string() };
    let spec = if target.starts_with('/') {
        if !args.subresource.is_empty() {
            bail!("--subresource can not be used with NonResourceURL");
        }
        if !NON_RESOURCE_VERBS.contains(&verb.as_str()) {
            warn(&format!("verb '{verb}' is not a known verb\n"));
        }
        let url = NonResourceAttributes { path: target.clone(), verb: verb.clone() };
        SelfSubjectAccessReviewSpec { resource_attributes: None, non_resource_attributes: Some(url) }
    } else {
        let (resource_arg, name) = target.split_once('/').unwrap_or((target.as_str(), ""));
        let (group, resource, namespaced) = resource_for(resource_arg);
        if !args.all_namespaces {
            if namespaced == Some(false) {
                if group.is_empty() {
                    warn(&format!("resource '{resource}' is not namespace scoped\n"));
                } else {
                    warn(&format!("resource '{resource}' is not namespace scoped in group '{group}'\n"));
                }
            }
            if !RESOURCE_VERBS.contains(&verb.as_str()) {
                warn(&format!("verb '{verb}' is not a known verb\n"));
            }
        }
        if args.no_headers {
            bail!("--no-headers cannot be set without --list specified");
        }
        let attributes = ResourceAttributes {
            namespace,
            verb: verb.clone(),
            group,
            resource,
            subresource: args.subresource.clone(),
            name: name.to_string(),
            ..ResourceAttributes::default()
        };
        SelfSubjectAccessReviewSpec { resource_attributes: Some(attributes), non_resource_attributes: None }
    };
    let review = SelfSubjectAccessReview { spec: Some(spec), ..SelfSubjectAccessReview::default() };
    let client = ctx.client().await?;
    let answer = client.review(&review).await.map_err(|e| errors::general(e, ctx.server()))?;
    let status = answer.status.unwrap_or_default();
    if !args.quiet {
        if status.allowed {
            say("yes");
        } else {
            let mut line = String::from("no");
            for part in [&status.reason, &status.evaluation_error] {
                if !part.is_empty() {
                    line.push_str(" - ");
                    line.push_str(part);
                }
            }
            say(line);
        }
    }
    Ok(if status.allowed { Outcome::Success } else { Outcome::Failed })
}

/// `--list`: the rules of the caller in the namespace.
async fn list(ctx: &Context, no_headers: bool) -> anyhow::Result<Outcome> {
    let review = SelfSubjectRulesReview {
        spec: Some(SelfSubjectRulesReviewSpec { namespace: ctx.namespace().to_string() }),
        ..SelfSubjectRulesReview::default()
    };
    let client = ctx.client().await?;
    let answer = client.review(&review).await.map_err(|e| errors::general(e, ctx.server()))?;
    let status = answer.status.unwrap_or_default();
    if status.incomplete {
        warn(&format!("the list may be incomplete: {}", status.evaluation_error));
    }
    emit(&rules_table(&status, no_headers));
    Ok(Outcome::Success)
}

/// A policy rule as kubectl's `--list` handles them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    pub non_resource_urls: Vec<String>,
}

/// Go's `%v` of a `[]string`.
fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

impl Rule {
    /// The generated `PolicyRule.String()`, kubectl's sort key.
    fn go_string(&self) -> String {
        format!(
            "&PolicyRule{{Verbs:{},APIGroups:{},Resources:{},ResourceNames:{},NonResourceURLs:{},}}",
            go_list(&self.verbs),
            go_list(&self.api_groups),
            go_list(&self.resources),
            go_list(&self.resource_names),
            go_list(&self.non_resource_urls)
        )
    }

    /// `rbacutil.BreakdownRule`: one rule per group, resource, verb (and name); per URL and verb.
    fn breakdown(&self) -> Vec<Rule> {
        let one = |s: &String| vec![s.clone()];
        let mut out = Vec::new();
        for group in &self.api_groups {
            for resource in &self.resources {
                for verb in &self.verbs {
                    let base = Rule {
                        verbs: one(verb),
                        api_groups: one(group),
                        resources: one(resource),
                        ..Rule::default()
                    };
                    if self.resource_names.is_empty() {
                        out.push(base);
                    } else {
                        for name in &self.resource_names {
                            out.push(Rule { resource_names: one(name), ..base.clone() });
                        }
                    }
                }
            }
        }
        for url in &self.non_resource_urls {
            for verb in &self.verbs {
                out.push(Rule { verbs: one(verb), non_resource_urls: one(url), ..Rule::default() });
            }
        }
        out
    }

    /// `describe.CombineResourceGroup`: `pods`, `deployments.apps`, `pods/log`, `*.*`.
    fn resource_cell(&self) -> String {
        let Some(first) = self.resources.first() else { return String::new() };
        let (resource, sub) = match first.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (first.as_str(), None),
        };
        let mut cell = resource.to_string();
        if let Some(group) = self.api_groups.first().filter(|g| !g.is_empty()) {
            cell.push('.');
            cell.push_str(group);
        }
        if let Some(sub) = sub {
            cell.push('/');
            cell.push_str(sub);
        }
        cell
    }
}

/// `rbacutil.CompactRules`: rules of one group, one resource and at most one name merge their verbs.
fn compact(rules: Vec<Rule>) -> Vec<Rule> {
    let mut out: Vec<Rule> = Vec::new();
    let mut simple: HashMap<(String, String, Option<String>), usize> = HashMap::new();
    let mut merged: Vec<Rule> = Vec::new();
    for rule in rules {
        let is_simple = rule.resource_names.len() <= 1
            && rule.non_resource_urls.is_empty()
            && rule.api_groups.len() == 1
            && rule.resources.len() == 1;
        if !is_simple {
            out.push(rule);
            continue;
        }
        let key =
            (rule.api_groups[0].clone(), rule.resources[0].clone(), rule.resource_names.first().cloned());
        match simple.get(&key) {
            Some(&i) => merged[i].verbs.extend(rule.verbs),
            None => {
                simple.insert(key, merged.len());
                merged.push(rule);
            }
        }
    }
    out.extend(merged);
    out
}

/// kubectl's `auth can-i --list` table of a rules review.
pub fn rules_table(status: &SubjectRulesReviewStatus, no_headers: bool) -> String {
    let mut rules: Vec<Rule> = status
        .resource_rules
        .iter()
        .map(|r| Rule {
            verbs: r.verbs.clone(),
            api_groups: r.api_groups.clone(),
            resources: r.resources.clone(),
            resource_names: r.resource_names.clone(),
            non_resource_urls: Vec::new(),
        })
        .chain(status.non_resource_rules.iter().map(|r| Rule {
            verbs: r.verbs.clone(),
            non_resource_urls: r.non_resource_ur_ls.clone(),
            ..Rule::default()
        }))
        .flat_map(|r| r.breakdown())
        .collect();
    rules = compact(rules);
    rules.sort_by_cached_key(Rule::go_string);
    let mut rows: Vec<Vec<String>> = Vec::new();
    if !no_headers {
        rows.push(["Resources", "Non-Resource URLs", "Resource Names", "Verbs"].map(String::from).to_vec());
    }
    for r in &rules {
        rows.push(vec![
            r.resource_cell(),
            go_list(&r.non_resource_urls),
            go_list(&r.resource_names),
            go_list(&r.verbs),
        ]);
    }
    Table::new().format(&rows)
}

/// `navctl auth whoami`.
pub async fn whoami(ctx: &Context, args: &WhoamiArgs) -> anyhow::Result<Outcome> {
    let client = ctx.client().await?;
    let answer = match client.review(&SelfSubjectReview::default()).await {
        Ok(a) => a,
        Err(ClientError::Api { code: tonic::Code::PermissionDenied, .. }) => {
            bail!(
                "the selfsubjectreviews API is not enabled in the cluster or you do not have permission to call it"
            )
        }
        Err(e) => return Err(errors::general(e, ctx.server())),
    };
    match args.output.as_deref() {
        None => {
            emit(&whoami_table(&answer));
            Ok(Outcome::Success)
        }
        Some(format @ ("json" | "yaml")) => {
            let mut v = serde_json::to_value(&answer)?;
            if let serde_json::Value::Object(m) = &mut v {
                m.insert("kind".into(), "SelfSubjectReview".into());
                m.insert("apiVersion".into(), "authentication.k8s.io/v1".into());
            }
            let text = if format == "json" {
                format!("{}\n", serde_json::to_string_pretty(&v)?)
            } else {
                serde_yaml::to_string(&v)?
            };
            emit(&text);
            Ok(Outcome::Success)
        }
        Some(other) => bail!(
            "unable to match a printer suitable for the output format {other:?}, allowed formats are: json,yaml"
        ),
    }
}

/// kubectl's ATTRIBUTE/VALUE table: Username, UID, Groups, one `Extra: <key>` row per extra key.
pub fn whoami_table(review: &SelfSubjectReview) -> String {
    let user = review.status.as_ref().and_then(|s| s.user_info.clone()).unwrap_or_default();
    let mut rows = vec![vec!["ATTRIBUTE".to_string(), "VALUE".to_string()]];
    if !user.username.is_empty() {
        rows.push(vec!["Username".into(), user.username.clone()]);
    }
    if !user.uid.is_empty() {
        rows.push(vec!["UID".into(), user.uid.clone()]);
    }
    if !user.groups.is_empty() {
        rows.push(vec!["Groups".into(), go_list(&user.groups)]);
    }
    for (key, value) in &user.extra {
        rows.push(vec![format!("Extra: {key}"), go_list(&value.items)]);
    }
    Table::new().format(&rows)
}

/// `navctl create token SERVICE_ACCOUNT`: prints the token (with a newline only on a terminal).
pub async fn create_token(ctx: &Context, args: &TokenArgs) -> anyhow::Result<Outcome> {
    let request = token_request(args)?;
    let namespace = ctx.namespace();
    if namespace.is_empty() {
        bail!("--namespace is required");
    }
    let client = ctx.client().await?;
    let answer =
        client.create_token(namespace, &args.name, &request).await.map_err(|e| match server_message(&e) {
            Some(m) => anyhow!("failed to create token: {m}"),
            None => errors::general(e, ctx.server()),
        })?;
    let token = answer.status.map(|s| s.token).unwrap_or_default();
    if token.is_empty() {
        bail!("failed to create token: no token in server response");
    }
    if std::io::stdout().is_terminal() {
        say(token);
    } else {
        emit(&token);
    }
    Ok(Outcome::Success)
}

/// The TokenRequest of `create token`'s flags, checked as kubectl checks them.
pub fn token_request(args: &TokenArgs) -> anyhow::Result<TokenRequest> {
    if args.name.is_empty() {
        bail!("service account name is required");
    }
    let seconds = match args.duration.as_deref() {
        None => 0,
        Some(text) => {
            let d = humantime::parse_duration(text)
                .map_err(|e| anyhow!("invalid argument {text:?} for \"--duration\" flag: {e}"))?;
            if d.subsec_nanos() != 0 {
                bail!("--duration cannot be expressed in units less than seconds");
            }
            d.as_secs()
        }
    };
    if args.audience.iter().any(String::is_empty) {
        bail!("--audience must not be an empty string");
    }
    let bound = match args.bound_object_kind.as_deref() {
        None | Some("") => {
            if args.bound_object_name.is_some() {
                bail!("--bound-object-name can only be set if --bound-object-kind is provided");
            }
            if args.bound_object_uid.is_some() {
                bail!("--bound-object-uid can only be set if --bound-object-kind is provided");
            }
            None
        }
        Some(kind @ ("Pod" | "Secret" | "Node")) => {
            let name = args.bound_object_name.clone().unwrap_or_default();
            if name.is_empty() {
                bail!("--bound-object-name is required if --bound-object-kind is provided");
            }
            Some(BoundObjectReference {
                kind: kind.to_string(),
                api_version: "v1".into(),
                name,
                uid: args.bound_object_uid.clone().unwrap_or_default(),
            })
        }
        Some(_) => bail!("supported --bound-object-kind values are Node, Pod, Secret"),
    };
    let expiration_seconds = (seconds > 0).then(|| i64::try_from(seconds).unwrap_or(i64::MAX));
    Ok(TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: args.audience.clone(),
            expiration_seconds,
            bound_object_ref: bound,
        }),
        ..TokenRequest::default()
    })
}

#[cfg(test)]
mod tests {
    use navarch_api::v1::{ExtraValue, NonResourceRule, ResourceRule, SelfSubjectReviewStatus, UserInfo};

    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn rules_table_like_kubectl() {
        let status = SubjectRulesReviewStatus {
            resource_rules: vec![
                ResourceRule {
                    verbs: strings(&["create"]),
                    api_groups: strings(&["authorization.k8s.io"]),
                    resources: strings(&["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
                    resource_names: vec![],
                },
                ResourceRule {
                    verbs: strings(&["get", "list"]),
                    api_groups: strings(&[""]),
                    resources: strings(&["pods", "pods/log"]),
                    resource_names: vec![],
                },
                ResourceRule {
                    verbs: strings(&["watch"]),
                    api_groups: strings(&[""]),
                    resources: strings(&["pods"]),
                    resource_names: vec![],
                },
                ResourceRule {
                    verbs: strings(&["get"]),
                    api_groups: strings(&["apps"]),
                    resources: strings(&["deployments"]),
                    resource_names: strings(&["web"]),
                },
            ],
            non_resource_rules: vec![NonResourceRule {
                verbs: strings(&["get"]),
                non_resource_ur_ls: strings(&["/healthz", "/api/*"]),
            }],
            incomplete: false,
            evaluation_error: String::new(),
        };
        let expected = "\
Resources                                       Non-Resource URLs   Resource Names   Verbs
selfsubjectaccessreviews.authorization.k8s.io   []                  []               [create]
selfsubjectrulesreviews.authorization.k8s.io    []                  []               [create]
pods                                            []                  []               [get list watch]
pods/log                                        []                  []               [get list]
                                                [/api/*]            []               [get]
                                                [/healthz]          []               [get]
deployments.apps                                []                  [web]            [get]
";
        assert_eq!(rules_table(&status, false), expected);
        assert!(!rules_table(&status, true).starts_with("Resources"));
    }

    #[test]
    fn whoami_table_like_kubectl() {
        let mut extra = std::collections::BTreeMap::new();
        extra.insert(
            "authentication.kubernetes.io/pod-name".to_string(),
            ExtraValue { items: strings(&["web-1"]) },
        );
        let review = SelfSubjectReview {
            status: Some(SelfSubjectReviewStatus {
                user_info: Some(UserInfo {
                    username: "system:serviceaccount:default:default".into(),
                    uid: "1234".into(),
                    groups: strings(&["system:serviceaccounts", "system:authenticated"]),
                    extra,
                }),
            }),
            ..SelfSubjectReview::default()
        };
        let expected = "\
ATTRIBUTE                                      VALUE
Username                                       system:serviceaccount:default:default
UID                                            1234
Groups                                         [system:serviceaccounts system:authenticated]
Extra: authentication.kubernetes.io/pod-name   [web-1]
";
        assert_eq!(whoami_table(&review), expected);
    }

    fn token_args(name: &str) -> TokenArgs {
        TokenArgs {
            name: name.into(),
            duration: None,
            audience: vec![],
            bound_object_kind: None,
            bound_object_name: None,
            bound_object_uid: None,
        }
    }

    #[test]
    fn token_requests_from_flags() {
        let r = token_request(&TokenArgs { duration: Some("10m".into()), ..token_args("default") }).unwrap();
        assert_eq!(r.spec.as_ref().unwrap().expiration_seconds, Some(600));
        assert_eq!(token_request(&token_args("default")).unwrap().spec.unwrap().expiration_seconds, None);
        let e = token_request(&TokenArgs { bound_object_name: Some("x".into()), ..token_args("default") });
        assert_eq!(
            e.unwrap_err().to_string(),
            "--bound-object-name can only be set if --bound-object-kind is provided"
        );
        let e = token_request(&TokenArgs {
            bound_object_kind: Some("ConfigMap".into()),
            ..token_args("default")
        });
        assert_eq!(e.unwrap_err().to_string(), "supported --bound-object-kind values are Node, Pod, Secret");
        let r = token_request(&TokenArgs {
            bound_object_kind: Some("Pod".into()),
            bound_object_name: Some("web".into()),
            ..token_args("default")
        })
        .unwrap();
        let bound = r.spec.unwrap().bound_object_ref.unwrap();
        assert_eq!(
            (bound.kind.as_str(), bound.api_version.as_str(), bound.name.as_str()),
            ("Pod", "v1", "web")
        );
        let e = token_request(&TokenArgs { duration: Some("1500ms".into()), ..token_args("default") });
        assert_eq!(e.unwrap_err().to_string(), "--duration cannot be expressed in units less than seconds");
    }
}
