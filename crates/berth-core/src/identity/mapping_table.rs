//! The one table of group mappings: those of the configuration file
//! (read-only here) and those platform administrators make through the
//! API, each change audited. Sign-ins read the whole table each time, so
//! a change applies at the next sign-in.

use std::sync::Arc;

use berth_meta::{GroupMappingRecord, MembershipKind};

use super::mappings::{desired, GroupMapping, MappedGrant};
use crate::access::{Principal, Role};
use crate::clock::now_millis;
use crate::directory::Directory;
use crate::error::DirectoryError;

type Result<T> = std::result::Result<T, DirectoryError>;

/// A row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingRow {
    /// Id (`None` for a mapping of the configuration file).
    pub id: Option<i64>,
    /// The mapping.
    pub mapping: GroupMapping,
    /// Who made it (`configuration` for the file's).
    pub created_by: String,
    /// When, Unix milliseconds (0 for the file's).
    pub created_at: i64,
}

/// The mappings of the file and of the store.
#[derive(Debug, Clone)]
pub struct MappingTable {
    declared: Arc<Vec<GroupMapping>>,
    origins: Arc<Vec<String>>,
    directory: Directory,
}

fn from_record(r: &GroupMappingRecord) -> Option<GroupMapping> {
    let role = || Role::parse(&r.role);
    let grant = match r.grant_kind.as_str() {
        "platform_admin" => MappedGrant::PlatformAdmin,
        "project_group" => MappedGrant::ProjectGroup {
            name: r.target.clone(),
            role: role()?,
        },
        "namespace" => MappedGrant::Namespace {
            name: r.target.clone(),
            role: role()?,
        },
        _ => return None,
    };
    Some(GroupMapping {
        origin: r.origin.clone(),
        group: r.external_group.clone(),
        grant,
    })
}

impl MappingTable {
    /// The file's mappings, the configured origins (`oidc:<name>`,
    /// `ldap:<name>`), over the directory's store.
    pub fn new(
        declared: Vec<GroupMapping>,
        origins: Vec<String>,
        directory: Directory,
    ) -> MappingTable {
        MappingTable {
            declared: Arc::new(declared),
            origins: Arc::new(origins),
            directory,
        }
    }

    /// Every mapping in force.
    pub async fn current(&self) -> Result<Vec<GroupMapping>> {
        let mut all = self.declared.as_ref().clone();
        let stored = self.directory.store().group_mappings().await?;
        all.extend(stored.iter().filter_map(from_record));
        Ok(all)
    }

    /// The table as platform administrators see it.
    pub async fn rows(&self, actor: &Principal) -> Result<Vec<MappingRow>> {
        admin_only(actor)?;
        let mut rows: Vec<MappingRow> = self
            .declared
            .iter()
            .map(|m| MappingRow {
                id: None,
                mapping: m.clone(),
                created_by: "configuration".into(),
                created_at: 0,
            })
            .collect();
        for r in self.directory.store().group_mappings().await? {
            if let Some(mapping) = from_record(&r) {
                rows.push(MappingRow {
                    id: Some(r.id),
                    mapping,
                    created_by: r.created_by,
                    created_at: r.created_at,
                });
            }
        }
        Ok(rows)
    }

    /// Add a mapping: of a configured origin, to a project group or
    /// namespace that exists.
    pub async fn create(&self, actor: &Principal, m: &GroupMapping) -> Result<MappingRow> {
        admin_only(actor)?;
        if !self.origins.contains(&m.origin) {
            return Err(DirectoryError::Invalid(format!(
                "origin {:?} is no configured provider or directory (one of: {})",
                m.origin,
                self.origins.join(", ")
            )));
        }
        if m.group.trim().is_empty() || m.group.len() > 1024 {
            return Err(DirectoryError::Invalid(
                "group: 1 to 1024 characters".into(),
            ));
        }
        let store = self.directory.store();
        let (kind, target, role) = match &m.grant {
            MappedGrant::PlatformAdmin => ("platform_admin", String::new(), String::new()),
            MappedGrant::ProjectGroup { name, role } => {
                store
                    .group_by_name(name)
                    .await?
                    .ok_or_else(|| DirectoryError::NotFound(format!("project group {name}")))?;
                ("project_group", name.clone(), role.as_str().to_owned())
            }
            MappedGrant::Namespace { name, role } => {
                store
                    .namespace_by_name(name)
                    .await?
                    .ok_or_else(|| DirectoryError::NotFound(format!("namespace {name}")))?;
                ("namespace", name.clone(), role.as_str().to_owned())
            }
        };
        let r = store
            .create_group_mapping(&GroupMappingRecord {
                id: 0,
                origin: m.origin.clone(),
                external_group: m.group.clone(),
                grant_kind: kind.into(),
                target: target.clone(),
                role: role.clone(),
                created_by: actor.name().to_owned(),
                created_at: now_millis(),
            })
            .await?;
        store
            .append_audit(
                actor.name(),
                "group_mapping.create",
                &m.group,
                &format!(
                    "origin={} grant={kind} target={target} role={role}",
                    m.origin
                ),
                None,
                now_millis(),
            )
            .await?;
        Ok(MappingRow {
            id: Some(r.id),
            mapping: m.clone(),
            created_by: r.created_by,
            created_at: r.created_at,
        })
    }

    /// A dry run for platform administrators: what an account of `origin`
    /// reporting `groups` would get, in words (empty when nothing).
    pub async fn preview(
        &self,
        actor: &Principal,
        origin: &str,
        groups: &[String],
    ) -> Result<Vec<String>> {
        admin_only(actor)?;
        let d = desired(&self.current().await?, origin, groups);
        let mut out = Vec::new();
        if d.admin {
            out.push("platform administrator".to_owned());
        }
        for ((kind, target), (role, group)) in d.roles {
            let grant = match kind {
                MembershipKind::Group => MappedGrant::ProjectGroup { name: target, role },
                MembershipKind::Namespace => MappedGrant::Namespace { name: target, role },
            };
            out.push(format!("{} (from {group})", grant.describe()));
        }
        Ok(out)
    }

    /// Delete a mapping made through the API (the file's stay). The roles
    /// it gave go at each member's next sign-in.
    pub async fn delete(&self, actor: &Principal, id: i64) -> Result<()> {
        admin_only(actor)?;
        let store = self.directory.store();
        let r = store
            .delete_group_mapping(id)
            .await?
            .ok_or_else(|| DirectoryError::NotFound(format!("group mapping {id}")))?;
        store
            .append_audit(
                actor.name(),
                "group_mapping.delete",
                &r.external_group,
                &format!(
                    "origin={} grant={} target={} role={}",
                    r.origin, r.grant_kind, r.target, r.role
                ),
                None,
                now_millis(),
            )
            .await?;
        Ok(())
    }
}

fn admin_only(actor: &Principal) -> Result<()> {
    if actor.is_platform_admin() {
        Ok(())
    } else {
        Err(DirectoryError::Forbidden(
            "group mappings are for platform administrators".into(),
        ))
    }
}
