//! Group mappings: an external group (an OIDC claim value, an LDAP group
//! DN) of one origin turns into what Berth already has — platform
//! administrator, a project-group role, a namespace role. Applied at each
//! sign-in: memberships the mappings made are added, changed or taken
//! back to match the groups the provider reports now; memberships made by
//! hand are never touched. Every change is audited. The authorization
//! function ([`crate::access`]) then decides as for any membership.

use std::collections::BTreeMap;

use berth_meta::{Account, MembershipKind};

use crate::access::Role;
use crate::clock::now_millis;
use crate::directory::Directory;
use crate::error::DirectoryError;

/// What a mapping grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappedGrant {
    /// Platform administrator.
    PlatformAdmin,
    /// A role in a project group.
    ProjectGroup {
        /// The group.
        name: String,
        /// The role.
        role: Role,
    },
    /// A role on a namespace.
    Namespace {
        /// The namespace.
        name: String,
        /// The role.
        role: Role,
    },
}

impl MappedGrant {
    /// The grant from the fields every surface uses (configuration file,
    /// API, console): exactly one of `platform_admin`, `project_group` or
    /// `namespace`, with `role` for the last two. The error says what is
    /// wrong in words fit for any of them.
    pub fn from_fields(
        platform_admin: bool,
        project_group: Option<&str>,
        namespace: Option<&str>,
        role: Option<&str>,
    ) -> Result<MappedGrant, String> {
        let given = role.filter(|r| !r.trim().is_empty());
        let role = || -> Result<Role, String> {
            let r = given
                .filter(|r| !r.trim().is_empty())
                .ok_or("role is required with project_group or namespace")?;
            Role::parse_input(r)
        };
        let named = |n: &str| -> Result<String, String> {
            let n = n.trim();
            if n.is_empty() {
                Err("the project group or namespace name is empty".into())
            } else {
                Ok(n.to_owned())
            }
        };
        match (platform_admin, project_group, namespace) {
            (true, None, None) if given.is_none() => Ok(MappedGrant::PlatformAdmin),
            (false, Some(g), None) => Ok(MappedGrant::ProjectGroup {
                name: named(g)?,
                role: role()?,
            }),
            (false, None, Some(n)) => Ok(MappedGrant::Namespace {
                name: named(n)?,
                role: role()?,
            }),
            _ => Err(
                "give exactly one of platform_admin, project_group with role, namespace with role"
                    .into(),
            ),
        }
    }

    /// In words, for pages and messages.
    pub fn describe(&self) -> String {
        match self {
            MappedGrant::PlatformAdmin => "platform administrator".to_owned(),
            MappedGrant::ProjectGroup { name, role } => {
                format!("{} in project group {name}", role.as_str())
            }
            MappedGrant::Namespace { name, role } => {
                format!("{} on namespace {name}", role.as_str())
            }
        }
    }
}

/// One row of the mapping table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMapping {
    /// `oidc:<provider>` or `ldap:<directory>`.
    pub origin: String,
    /// The external group, exactly as the provider reports it.
    pub group: String,
    /// What members of it get.
    pub grant: MappedGrant,
}

/// What the mappings give one account, by target.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Desired {
    /// Platform administrator.
    pub admin: bool,
    /// (kind, target name) → (role, the external group that gave it).
    pub roles: BTreeMap<(MembershipKind, String), (Role, String)>,
}

/// The grants `groups` of `origin` earn under `mappings` (the highest role
/// wins where several give the same target).
pub fn desired(mappings: &[GroupMapping], origin: &str, groups: &[String]) -> Desired {
    let mut out = Desired::default();
    // LDAP DNs compare without regard to case; claim values exactly.
    let member = |g: &str| {
        if origin.starts_with("ldap:") {
            groups.iter().any(|x| x.eq_ignore_ascii_case(g))
        } else {
            groups.iter().any(|x| x == g)
        }
    };
    for m in mappings
        .iter()
        .filter(|m| m.origin == origin && member(&m.group))
    {
        let (key, role) = match &m.grant {
            MappedGrant::PlatformAdmin => {
                out.admin = true;
                continue;
            }
            MappedGrant::ProjectGroup { name, role } => {
                ((MembershipKind::Group, name.clone()), *role)
            }
            MappedGrant::Namespace { name, role } => {
                ((MembershipKind::Namespace, name.clone()), *role)
            }
        };
        let slot = out.roles.entry(key).or_insert((role, m.group.clone()));
        if role > slot.0 {
            *slot = (role, m.group.clone());
        }
    }
    out
}

fn kind_name(kind: MembershipKind) -> &'static str {
    match kind {
        MembershipKind::Group => "project group",
        MembershipKind::Namespace => "namespace",
    }
}

/// Bring `account`'s mapped grants in line with `groups`; the changes, as
/// audited.
pub async fn apply(
    directory: &Directory,
    mappings: &[GroupMapping],
    account: &Account,
    groups: &[String],
    client_addr: Option<&str>,
) -> Result<Vec<String>, DirectoryError> {
    let store = directory.store();
    let want = desired(mappings, &account.origin, groups);
    let mut changes = Vec::new();
    let now = now_millis();
    if store
        .set_admin_by_mapping(account.id, want.admin, now)
        .await?
    {
        changes.push(if want.admin {
            "platform administrator: granted".to_owned()
        } else {
            "platform administrator: revoked".to_owned()
        });
    }
    let have = store.mapped_memberships(account.id).await?;
    for m in &have {
        if !want.roles.contains_key(&(m.kind, m.target.clone()))
            && store
                .remove_mapped_membership(m.kind, m.target_id, account.id)
                .await?
        {
            changes.push(format!(
                "{} {}: {} revoked",
                kind_name(m.kind),
                m.target,
                m.role
            ));
        }
    }
    for ((kind, target), (role, group)) in &want.roles {
        let id = match kind {
            MembershipKind::Group => store.group_by_name(target).await?.map(|g| g.id),
            MembershipKind::Namespace => store.namespace_by_name(target).await?.map(|n| n.id),
        };
        let Some(id) = id else {
            tracing::warn!(
                account = account.name,
                "group mapping of {group} names {} {target}, which does not exist",
                kind_name(*kind)
            );
            continue;
        };
        if store
            .set_mapped_membership(*kind, id, account.id, role.as_str())
            .await?
        {
            changes.push(format!(
                "{} {target}: {} (from group {group})",
                kind_name(*kind),
                role.as_str()
            ));
        }
    }
    for change in &changes {
        store
            .append_audit(
                &account.origin,
                "mapping.apply",
                &account.name,
                change,
                client_addr,
                now,
            )
            .await?;
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(origin: &str, group: &str, grant: MappedGrant) -> GroupMapping {
        GroupMapping {
            origin: origin.into(),
            group: group.into(),
            grant,
        }
    }

    #[test]
    fn groups_of_the_origin_earn_the_highest_role_per_target() {
        let team = |role| MappedGrant::ProjectGroup {
            name: "team".into(),
            role,
        };
        let maps = [
            m("oidc:corp", "devs", team(Role::Developer)),
            m("oidc:corp", "leads", team(Role::Admin)),
            m("oidc:corp", "admins", MappedGrant::PlatformAdmin),
            m("ldap:corp", "devs", MappedGrant::PlatformAdmin),
            m(
                "oidc:corp",
                "readers",
                MappedGrant::Namespace {
                    name: "shared".into(),
                    role: Role::Guest,
                },
            ),
        ];
        let groups = |g: &[&str]| g.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let d = desired(&maps, "oidc:corp", &groups(&["devs", "leads", "readers"]));
        assert!(!d.admin, "another origin's mapping does not apply");
        assert_eq!(
            d.roles[&(MembershipKind::Group, "team".into())],
            (Role::Admin, "leads".into())
        );
        assert_eq!(
            d.roles[&(MembershipKind::Namespace, "shared".into())].0,
            Role::Guest
        );
        assert!(desired(&maps, "oidc:corp", &groups(&["admins"])).admin);
        assert_eq!(desired(&maps, "oidc:corp", &[]), Desired::default());
        assert!(desired(&maps, "oidc:corp", &groups(&["ADMINS"])) == Desired::default());
        let dn = [m(
            "ldap:corp",
            "cn=Admins,ou=groups,dc=example,dc=com",
            MappedGrant::PlatformAdmin,
        )];
        assert!(
            desired(
                &dn,
                "ldap:corp",
                &groups(&["CN=admins,OU=Groups,DC=example,DC=com"])
            )
            .admin
        );
    }

    #[test]
    fn grants_are_read_the_same_from_every_surface() {
        assert_eq!(
            MappedGrant::from_fields(true, None, None, None),
            Ok(MappedGrant::PlatformAdmin)
        );
        assert_eq!(
            MappedGrant::from_fields(false, Some(" team "), None, Some("developer")),
            Ok(MappedGrant::ProjectGroup {
                name: "team".into(),
                role: Role::Developer
            })
        );
        assert_eq!(
            MappedGrant::from_fields(false, None, Some("shared"), Some("guest"))
                .map(|g| g.describe()),
            Ok("guest on namespace shared".into())
        );
        for (admin, group, ns, role) in [
            (true, None, None, Some("admin")),
            (true, Some("team"), None, None),
            (false, Some("team"), Some("ns"), Some("guest")),
            (false, None, None, None),
            (false, Some("team"), None, None),
            (false, Some("team"), None, Some("owner")),
            (false, Some(" "), None, Some("guest")),
        ] {
            assert!(
                MappedGrant::from_fields(admin, group, ns, role).is_err(),
                "{admin} {group:?} {ns:?} {role:?}"
            );
        }
    }
}
