//! Security contexts of pods and containers: user and group ids, sysctls, privilege escalation, and the
//! seccomp and AppArmor profiles.

use navarch_api::v1::*;

use crate::validation::field::{Errors, Path, q};
use crate::validation::meta::Unique;

const MAX_USER_ID: i64 = i32::MAX as i64;

fn validate_user_id(v: Option<i64>, path: &Path, errs: &mut Errors) {
    if let Some(v) = v {
        errs.in_range(path, v, 0, MAX_USER_ID);
    }
}

/// The seccomp and AppArmor profiles of a pod or container security context.
fn validate_profiles(
    seccomp: Option<&SeccompProfile>,
    app_armor: Option<&AppArmorProfile>,
    path: &Path,
    errs: &mut Errors,
) {
    let profiles = [
        seccomp.map(|s| (&s.r#type, &s.localhost_profile, "seccompProfile", "seccomp")),
        app_armor.map(|a| (&a.r#type, &a.localhost_profile, "appArmorProfile", "AppArmor")),
    ];
    for (type_, localhost, field, what) in profiles.into_iter().flatten() {
        validate_profile(type_, localhost.as_deref(), &path.child(field), what, errs);
    }
}

fn validate_profile(type_: &str, localhost: Option<&str>, path: &Path, what: &str, errs: &mut Errors) {
    errs.required_one_of(&path.child("type"), type_, &["RuntimeDefault", "Unconfined", "Localhost"]);
    let lp = path.child("localhostProfile");
    match (type_, localhost) {
        ("Localhost", None | Some("")) => {
            errs.required(&lp, &format!("must be set when {what} type is Localhost"))
        }
        ("Localhost", _) | (_, None) => {}
        (_, Some(_)) => errs.invalid(
            &lp,
            q(localhost.unwrap_or_default()),
            format!("can only be set when {what} type is Localhost"),
        ),
    }
}

pub(super) fn validate_pod_security_context(sc: &PodSecurityContext, path: &Path, errs: &mut Errors) {
    validate_user_id(sc.run_as_user, &path.child("runAsUser"), errs);
    validate_user_id(sc.run_as_group, &path.child("runAsGroup"), errs);
    validate_user_id(sc.fs_group, &path.child("fsGroup"), errs);
    for (i, g) in sc.supplemental_groups.iter().enumerate() {
        errs.in_range(&path.child("supplementalGroups").index(i), *g, 0, MAX_USER_ID);
    }
    if let Some(p) = sc.fs_group_change_policy.as_deref() {
        errs.one_of(&path.child("fsGroupChangePolicy"), p, &["OnRootMismatch", "Always"]);
    }
    if let Some(p) = sc.supplemental_groups_policy.as_deref() {
        errs.one_of(&path.child("supplementalGroupsPolicy"), p, &["Merge", "Strict"]);
    }
    if let Some(p) = sc.se_linux_change_policy.as_deref() {
        errs.one_of(&path.child("seLinuxChangePolicy"), p, &["Recursive", "MountOption"]);
    }
    let mut seen = Unique::default();
    for (i, s) in sc.sysctls.iter().enumerate() {
        let p = path.child("sysctls").index(i).child("name");
        if s.name.is_empty() {
            errs.required(&p, "");
        } else if !sysctl_name_ok(&s.name) {
            errs.invalid(
                &p,
                q(&s.name),
                "must have at most 253 characters and match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$",
            );
        } else {
            seen.check(&s.name, &p, errs);
        }
    }
    validate_profiles(sc.seccomp_profile.as_ref(), sc.app_armor_profile.as_ref(), path, errs);
}

fn sysctl_name_ok(name: &str) -> bool {
    let seg_ok = |s: &str| {
        let edge = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        !s.is_empty()
            && s.starts_with(edge)
            && s.ends_with(edge)
            && s.chars().all(|c| edge(c) || c == '-' || c == '_')
    };
    name.len() <= 253 && name.split(['.', '/']).all(seg_ok)
}

pub(super) fn validate_security_context(sc: &SecurityContext, path: &Path, errs: &mut Errors) {
    validate_user_id(sc.run_as_user, &path.child("runAsUser"), errs);
    validate_user_id(sc.run_as_group, &path.child("runAsGroup"), errs);
    if let Some(p) = sc.proc_mount.as_deref() {
        errs.one_of(&path.child("procMount"), p, &["Default", "Unmasked"]);
    }
    if sc.allow_privilege_escalation == Some(false) {
        if sc.privileged == Some(true) {
            errs.invalid(
                path,
                q("false"),
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            );
        }
        let sys_admin = sc
            .capabilities
            .as_ref()
            .is_some_and(|c| c.add.iter().any(|a| a == "SYS_ADMIN" || a == "CAP_SYS_ADMIN"));
        if sys_admin {
            errs.invalid(
                path,
                q("false"),
                "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
            );
        }
    }
    validate_profiles(sc.seccomp_profile.as_ref(), sc.app_armor_profile.as_ref(), path, errs);
}

#[cfg(test)]
mod tests {
    use super::super::tests::assert_edit_errors;

    #[test]
    fn invalid_security_contexts() {
        let c = "spec.containers[0]";
        assert_edit_errors(&[
            (
                "{allowPrivilegeEscalation: false,",
                "{allowPrivilegeEscalation: false, privileged: true,",
                format!("{c}.securityContext"),
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            ),
            (
                "{allowPrivilegeEscalation: false,",
                "{runAsUser: -1,",
                format!("{c}.securityContext.runAsUser"),
                "must be between 0 and 2147483647",
            ),
            (
                "  nodeSelector:",
                "  securityContext: {sysctls: [{name: 'net/ipv4/../x', value: '1'}]}\n  nodeSelector:",
                "spec.securityContext.sysctls[0].name".into(),
                "must have at most 253 characters",
            ),
            (
                "  nodeSelector:",
                "  securityContext: {seccompProfile: {type: Localhost}}\n  nodeSelector:",
                "spec.securityContext.seccompProfile.localhostProfile".into(),
                "must be set when seccomp type is Localhost",
            ),
            (
                "{allowPrivilegeEscalation: false,",
                "{appArmorProfile: {type: RuntimeDefault, localhostProfile: x}, allowPrivilegeEscalation: false,",
                format!("{c}.securityContext.appArmorProfile.localhostProfile"),
                "Invalid value: \"x\": can only be set when AppArmor type is Localhost",
            ),
        ]);
    }
}
