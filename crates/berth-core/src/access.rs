//! Who may do what: the authorization rules as a pure function of what the
//! directory knows about a principal and a repository, so that every rule
//! is table-tested without a database.

/// A role in a project group or on a namespace. Higher roles include lower.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Pull.
    Guest,
    /// Pull, push, delete images and tags.
    Developer,
    /// Everything, including settings, members and grants.
    Admin,
}

impl Role {
    /// Stored and wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Guest => "guest",
            Role::Developer => "developer",
            Role::Admin => "admin",
        }
    }

    /// Parse the stored or wire form (case-insensitive).
    pub fn parse(s: &str) -> Option<Role> {
        match s.to_ascii_lowercase().as_str() {
            "guest" => Some(Role::Guest),
            "developer" => Some(Role::Developer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// Parse user input, explaining the choices when it is none of them.
    pub fn parse_input(s: &str) -> Result<Role, String> {
        Role::parse(s).ok_or_else(|| format!("unknown role {s:?}: use admin, developer or guest"))
    }
}

/// A permission on one repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RepoPermission {
    /// Pull.
    Read,
    /// Pull and push.
    Write,
    /// Pull, push and delete.
    Manage,
}

impl RepoPermission {
    /// Stored and wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            RepoPermission::Read => "read",
            RepoPermission::Write => "write",
            RepoPermission::Manage => "manage",
        }
    }

    /// Parse the stored or wire form (case-insensitive).
    pub fn parse(s: &str) -> Option<RepoPermission> {
        match s.to_ascii_lowercase().as_str() {
            "read" => Some(RepoPermission::Read),
            "write" => Some(RepoPermission::Write),
            "manage" => Some(RepoPermission::Manage),
            _ => None,
        }
    }

    /// Parse user input, explaining the choices when it is none of them.
    pub fn parse_input(s: &str) -> Result<RepoPermission, String> {
        RepoPermission::parse(s)
            .ok_or_else(|| format!("unknown permission {s:?}: use read, write or manage"))
    }
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No credentials.
    Anonymous,
    /// A console account (by its console or independent registry password).
    Account {
        /// Account id.
        id: i64,
        /// Login name.
        name: String,
        /// Platform administrator.
        is_admin: bool,
    },
    /// A registry user created by an account.
    RegistryUser {
        /// Registry user id.
        id: i64,
        /// User name.
        name: String,
    },
    /// The command line (`berth admin`) and first-start bootstrap: full rights.
    System,
}

impl Principal {
    /// Name for logs and the audit log.
    pub fn name(&self) -> &str {
        match self {
            Principal::Anonymous => "anonymous",
            Principal::Account { name, .. } | Principal::RegistryUser { name, .. } => name,
            Principal::System => "system",
        }
    }

    /// Platform administrator (or the command line).
    pub fn is_platform_admin(&self) -> bool {
        matches!(
            self,
            Principal::System | Principal::Account { is_admin: true, .. }
        )
    }
}

/// What may be done on one repository.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Actions {
    /// Pull manifests, blobs and tags.
    pub pull: bool,
    /// Push.
    pub push: bool,
    /// Delete manifests, tags and blobs.
    pub delete: bool,
}

impl Actions {
    /// Everything.
    pub const ALL: Actions = Actions {
        pull: true,
        push: true,
        delete: true,
    };
    /// Nothing.
    pub const NONE: Actions = Actions {
        pull: false,
        push: false,
        delete: false,
    };
    /// Pull only.
    pub const PULL: Actions = Actions {
        pull: true,
        push: false,
        delete: false,
    };
    /// Pull and push.
    pub const PUSH: Actions = Actions {
        pull: true,
        push: true,
        delete: false,
    };

    fn union(self, o: Actions) -> Actions {
        Actions {
            pull: self.pull || o.pull,
            push: self.push || o.push,
            delete: self.delete || o.delete,
        }
    }
}

/// What the directory knows about a principal and a repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The namespace, if it exists.
    pub namespace: Option<NamespaceFacts>,
    /// The principal's role in the owning project group.
    pub group_role: Option<Role>,
    /// The principal's role on the namespace itself.
    pub namespace_role: Option<Role>,
    /// The principal's permission on this repository.
    pub repo_permission: Option<RepoPermission>,
    /// A registry user's grant on the namespace: (pull, push).
    pub grant: Option<(bool, bool)>,
    /// For a namespace that does not exist: whether a push may create it.
    pub may_create_namespace: bool,
}

/// The namespace's properties that matter for access.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NamespaceFacts {
    /// Anyone, anonymous included, may pull.
    pub public: bool,
    /// The platform namespace: everyone pulls, only platform admins push.
    pub platform: bool,
}

fn role_actions(role: Role) -> Actions {
    match role {
        Role::Guest => Actions::PULL,
        Role::Developer | Role::Admin => Actions::ALL,
    }
}

fn permission_actions(p: RepoPermission) -> Actions {
    match p {
        RepoPermission::Read => Actions::PULL,
        RepoPermission::Write => Actions::PUSH,
        RepoPermission::Manage => Actions::ALL,
    }
}

/// The actions `principal` may take on a repository, given the facts.
pub fn allowed(principal: &Principal, facts: &Facts) -> Actions {
    if principal.is_platform_admin() {
        // Everything; for a missing namespace the handler answers NAME_UNKNOWN.
        return Actions::ALL;
    }
    let Some(ns) = facts.namespace else {
        // A push may create the namespace. Whoever may create it may also
        // read what it holds (nothing yet: the handler answers unknown),
        // as clients check blobs before pushing them, or start with a read.
        return if facts.may_create_namespace {
            Actions::PUSH
        } else {
            Actions::NONE
        };
    };
    let base = if ns.public || ns.platform {
        Actions::PULL
    } else {
        Actions::default()
    };
    if ns.platform {
        // Only platform admins change platform images.
        return base;
    }
    match principal {
        Principal::Anonymous | Principal::System => base,
        Principal::Account { .. } => {
            let role = facts.group_role.max(facts.namespace_role);
            let by_role = role.map(role_actions).unwrap_or_default();
            let by_repo = facts
                .repo_permission
                .map(permission_actions)
                .unwrap_or_default();
            base.union(by_role).union(by_repo)
        }
        Principal::RegistryUser { .. } => {
            let by_grant = match facts.grant {
                Some((_, true)) => Actions::PUSH,
                Some((true, false)) => Actions::PULL,
                _ => Actions::default(),
            };
            base.union(by_grant)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Actions = Actions::NONE;

    fn account(admin: bool) -> Principal {
        Principal::Account {
            id: 1,
            name: "a".into(),
            is_admin: admin,
        }
    }

    fn user() -> Principal {
        Principal::RegistryUser {
            id: 1,
            name: "u".into(),
        }
    }

    fn ns(public: bool, platform: bool) -> Option<NamespaceFacts> {
        Some(NamespaceFacts { public, platform })
    }

    #[test]
    fn authorization_table() {
        let private = ns(false, false);
        let public = ns(true, false);
        let platform = ns(false, true);
        let f = |namespace, group_role, namespace_role, repo_permission, grant| Facts {
            namespace,
            group_role,
            namespace_role,
            repo_permission,
            grant,
            may_create_namespace: false,
        };
        use RepoPermission as P;
        use Role as R;
        let cases: Vec<(&str, Principal, Facts, Actions)> = vec![
            (
                "anonymous, private",
                Principal::Anonymous,
                f(private, None, None, None, None),
                NONE,
            ),
            (
                "anonymous, public",
                Principal::Anonymous,
                f(public, None, None, None, None),
                Actions::PULL,
            ),
            (
                "anonymous, platform",
                Principal::Anonymous,
                f(platform, None, None, None, None),
                Actions::PULL,
            ),
            (
                "stranger, private",
                account(false),
                f(private, None, None, None, None),
                NONE,
            ),
            (
                "stranger, public",
                account(false),
                f(public, None, None, None, None),
                Actions::PULL,
            ),
            (
                "group guest",
                account(false),
                f(private, Some(R::Guest), None, None, None),
                Actions::PULL,
            ),
            (
                "group developer",
                account(false),
                f(private, Some(R::Developer), None, None, None),
                Actions::ALL,
            ),
            (
                "group admin",
                account(false),
                f(private, Some(R::Admin), None, None, None),
                Actions::ALL,
            ),
            (
                "namespace guest",
                account(false),
                f(private, None, Some(R::Guest), None, None),
                Actions::PULL,
            ),
            (
                "guest in group, developer on namespace",
                account(false),
                f(private, Some(R::Guest), Some(R::Developer), None, None),
                Actions::ALL,
            ),
            (
                "developer in group, guest on namespace",
                account(false),
                f(private, Some(R::Developer), Some(R::Guest), None, None),
                Actions::ALL,
            ),
            (
                "repo read",
                account(false),
                f(private, None, None, Some(P::Read), None),
                Actions::PULL,
            ),
            (
                "repo write",
                account(false),
                f(private, None, None, Some(P::Write), None),
                Actions::PUSH,
            ),
            (
                "repo manage",
                account(false),
                f(private, None, None, Some(P::Manage), None),
                Actions::ALL,
            ),
            (
                "guest plus repo write",
                account(false),
                f(private, Some(R::Guest), None, Some(P::Write), None),
                Actions::PUSH,
            ),
            (
                "developer cannot push platform",
                account(false),
                f(
                    platform,
                    Some(R::Developer),
                    Some(R::Admin),
                    Some(P::Manage),
                    None,
                ),
                Actions::PULL,
            ),
            (
                "platform admin, platform",
                account(true),
                f(platform, None, None, None, None),
                Actions::ALL,
            ),
            (
                "platform admin, private",
                account(true),
                f(private, None, None, None, None),
                Actions::ALL,
            ),
            (
                "system",
                Principal::System,
                f(private, None, None, None, None),
                Actions::ALL,
            ),
            (
                "user, no grant",
                user(),
                f(private, None, None, None, None),
                NONE,
            ),
            (
                "user, pull grant",
                user(),
                f(private, None, None, None, Some((true, false))),
                Actions::PULL,
            ),
            (
                "user, push grant implies pull",
                user(),
                f(private, None, None, None, Some((false, true))),
                Actions::PUSH,
            ),
            (
                "user, public without grant",
                user(),
                f(public, None, None, None, None),
                Actions::PULL,
            ),
            (
                "user, platform with push grant",
                user(),
                f(platform, None, None, None, Some((true, true))),
                Actions::PULL,
            ),
            (
                "user ignores account roles",
                user(),
                f(
                    private,
                    Some(R::Admin),
                    Some(R::Admin),
                    Some(P::Manage),
                    None,
                ),
                NONE,
            ),
        ];
        for (what, principal, facts, expected) in cases {
            assert_eq!(allowed(&principal, &facts), expected, "{what}");
        }
    }

    #[test]
    fn missing_namespace_allows_pull_and_push_to_whoever_may_create_it() {
        let mut facts = Facts::default();
        assert_eq!(allowed(&account(false), &facts), NONE);
        assert_eq!(allowed(&Principal::Anonymous, &facts), NONE);
        assert_eq!(
            allowed(&account(true), &facts),
            Actions::ALL,
            "admins get NAME_UNKNOWN from the handler"
        );
        facts.may_create_namespace = true;
        assert_eq!(
            allowed(&account(false), &facts),
            Actions::PUSH,
            "pull (of nothing yet) and push, as docker and skopeo ask"
        );
    }

    #[test]
    fn names_round_trip() {
        for r in [Role::Guest, Role::Developer, Role::Admin] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        for p in [
            RepoPermission::Read,
            RepoPermission::Write,
            RepoPermission::Manage,
        ] {
            assert_eq!(RepoPermission::parse(p.as_str()), Some(p));
        }
        assert_eq!(Role::parse("Developer"), Some(Role::Developer));
        assert_eq!(Role::parse("owner"), None);
    }
}
