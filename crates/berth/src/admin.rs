//! `berth admin`: manage accounts, project groups, namespaces, members,
//! permissions, registry users and advisories from the command line,
//! directly on the configured database, with platform-administrator rights.

use std::io::BufRead;

use anyhow::{bail, Context};
use berth_core::access::{Principal, RepoPermission, Role};
use berth_core::{now_millis, password, Directory, NamespaceSpec, RegistryUserSpec};
use berth_oci::RepoName;
use clap::{Args, Subcommand};

use crate::server::{bootstrap, open_stores};
use crate::Config;

/// `berth admin …`
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Console accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Project groups (tenants).
    #[command(subcommand)]
    Group(GroupCommand),
    /// Namespaces.
    #[command(subcommand)]
    Namespace(NamespaceCommand),
    /// Per-repository permissions of accounts.
    #[command(subcommand)]
    Repository(RepositoryCommand),
    /// Registry users (credentials for other developers and CI).
    #[command(subcommand, name = "registry-user")]
    RegistryUser(RegistryUserCommand),
    /// Vulnerability advisories (OSV), imported offline.
    #[command(subcommand)]
    Advisories(crate::advisories::AdvisoriesCommand),
    /// Show the newest audit log entries.
    Audit {
        /// How many entries.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

/// How a password is given.
#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// The password (visible in the process list; prefer --password-stdin).
    #[arg(long, conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
}

impl PasswordArgs {
    /// The chosen password, if any.
    fn read(&self) -> anyhow::Result<Option<String>> {
        if self.password_stdin {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password")?;
            let p = line.trim_end_matches(['\n', '\r']).to_owned();
            if p.is_empty() {
                bail!("no password on standard input");
            }
            return Ok(Some(p));
        }
        Ok(self.password.clone())
    }
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account (and its default project group); prints a generated password unless one is given.
    Create {
        name: String,
        #[arg(long, default_value = "")]
        email: String,
        /// Platform administrator.
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// List accounts.
    List,
    /// Set the console password (generated and printed unless given).
    Password {
        name: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Set or clear the independent registry password.
    RegistryPassword {
        name: String,
        /// Clear it instead.
        #[arg(long)]
        clear: bool,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Disable an account.
    Disable { name: String },
    /// Enable an account.
    Enable { name: String },
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a project group.
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// Account to make its admin.
        #[arg(long)]
        admin: Option<String>,
    },
    /// List project groups with their members.
    List,
    /// Set a group's own namespace limit, or go back to the default.
    Limit {
        group: String,
        /// The number of namespaces the group may own.
        #[arg(required_unless_present = "default")]
        namespaces: Option<i64>,
        /// Use the configured default again.
        #[arg(long)]
        default: bool,
    },
    /// Add a member or change their role (admin, developer, guest), or remove them.
    Member {
        group: String,
        account: String,
        #[arg(long, required_unless_present = "remove")]
        role: Option<String>,
        #[arg(long)]
        remove: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum NamespaceCommand {
    /// Create a namespace.
    Create {
        name: String,
        /// Owning project group.
        #[arg(long)]
        group: String,
        /// Anyone may pull.
        #[arg(long)]
        public: bool,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long, default_value = "")]
        category: String,
        /// A label, key=value (repeatable).
        #[arg(long = "label")]
        labels: Vec<String>,
    },
    /// List namespaces.
    List,
    /// Make a namespace public.
    Public { name: String },
    /// Make a namespace private.
    Private { name: String },
    /// Give an account a role on a namespace, or remove it.
    Member {
        namespace: String,
        account: String,
        #[arg(long, required_unless_present = "remove")]
        role: Option<String>,
        #[arg(long)]
        remove: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RepositoryCommand {
    /// Give an account read, write or manage on one repository, or remove it.
    Permission {
        repository: String,
        account: String,
        #[arg(long, required_unless_present = "remove")]
        permission: Option<String>,
        #[arg(long)]
        remove: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RegistryUserCommand {
    /// Create a registry user owned by an account; prints a generated password unless one is given.
    Create {
        name: String,
        /// The owning account.
        #[arg(long)]
        owner: String,
        #[arg(long, default_value = "")]
        description: String,
        /// Expire after this many days.
        #[arg(long)]
        expires_in_days: Option<u32>,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// List registry users with their grants.
    List,
    /// Grant pull and/or push on a namespace (neither flag removes the grant).
    Grant {
        name: String,
        namespace: String,
        #[arg(long)]
        pull: bool,
        #[arg(long)]
        push: bool,
    },
    /// Disable a registry user.
    Disable { name: String },
    /// Enable a registry user.
    Enable { name: String },
}

fn role(s: &str) -> anyhow::Result<Role> {
    Role::parse(s).with_context(|| format!("unknown role {s:?}: admin, developer or guest"))
}

fn when(ms: i64) -> String {
    format!("{}s", ms / 1000)
}

/// Run an admin command against the configured database.
pub async fn run(config: &Config, command: AdminCommand) -> anyhow::Result<()> {
    let (meta, store, _management, _gc, platform) = open_stores(config).await?;
    let directory = Directory::new(store.clone(), config.access.to_core());
    bootstrap(&directory, config).await?;
    let me = Principal::System;
    match command {
        AdminCommand::Account(c) => match c {
            AccountCommand::Create {
                name,
                email,
                admin,
                password: p,
            } => {
                let (pw, generated) = match p.read()? {
                    Some(pw) => (pw, false),
                    None => (password::generate(), true),
                };
                directory
                    .create_account(&me, &name, &email, &pw, admin)
                    .await?;
                println!(
                    "created account {name}{}",
                    if admin {
                        " (platform administrator)"
                    } else {
                        ""
                    }
                );
                if generated {
                    println!("password: {pw}");
                }
            }
            AccountCommand::List => {
                for a in store.list_accounts().await? {
                    let flags = [
                        (a.is_admin, "admin"),
                        (a.disabled, "disabled"),
                        (a.registry_password_hash.is_some(), "registry-password"),
                    ]
                    .iter()
                    .filter(|f| f.0)
                    .map(|f| f.1)
                    .collect::<Vec<_>>()
                    .join(",");
                    println!("{}\t{}\t{}", a.name, a.email, flags);
                }
            }
            AccountCommand::Password { name, password: p } => {
                let (pw, generated) = match p.read()? {
                    Some(pw) => (pw, false),
                    None => (password::generate(), true),
                };
                directory
                    .set_console_password(&me, &name, &pw, None)
                    .await?;
                println!("console password of {name} changed");
                if generated {
                    println!("password: {pw}");
                }
            }
            AccountCommand::RegistryPassword {
                name,
                clear,
                password: p,
            } => {
                if clear {
                    directory
                        .set_registry_password(&me, &name, None, None)
                        .await?;
                    println!("registry password of {name} cleared");
                } else {
                    let pw = p
                        .read()?
                        .context("give --password or --password-stdin, or --clear")?;
                    directory
                        .set_registry_password(&me, &name, Some(&pw), None)
                        .await?;
                    println!("registry password of {name} set");
                }
            }
            AccountCommand::Disable { name } => {
                directory.set_account_disabled(&me, &name, true).await?;
                println!("account {name} disabled");
            }
            AccountCommand::Enable { name } => {
                directory.set_account_disabled(&me, &name, false).await?;
                println!("account {name} enabled");
            }
        },
        AdminCommand::Group(c) => match c {
            GroupCommand::Create {
                name,
                description,
                admin,
            } => {
                directory
                    .create_group(&me, &name, &description, admin.as_deref())
                    .await?;
                println!("created project group {name}");
            }
            GroupCommand::List => {
                for g in store.list_groups().await? {
                    let members: Vec<String> = store
                        .group_members(g.id)
                        .await?
                        .into_iter()
                        .map(|m| format!("{}={}", m.account_name, m.role))
                        .collect();
                    let limit = g
                        .namespace_limit
                        .map(|l| format!("limit={l}"))
                        .unwrap_or_default();
                    println!(
                        "{}\t{}\t{}\t{}",
                        g.name,
                        members.join(","),
                        limit,
                        g.description
                    );
                }
            }
            GroupCommand::Limit {
                group,
                namespaces,
                default,
            } => {
                let limit = if default { None } else { namespaces };
                directory
                    .set_group_namespace_limit(&me, &group, limit)
                    .await?;
                match limit {
                    Some(n) => println!("project group {group} may own {n} namespaces"),
                    None => println!("project group {group} uses the default namespace limit"),
                }
            }
            GroupCommand::Member {
                group,
                account,
                role: r,
                remove,
            } => {
                if remove {
                    directory.remove_group_member(&me, &group, &account).await?;
                    println!("removed {account} from {group}");
                } else {
                    let r = role(r.as_deref().unwrap_or_default())?;
                    directory.set_group_member(&me, &group, &account, r).await?;
                    println!("{account} is {} of project group {group}", r.as_str());
                }
            }
        },
        AdminCommand::Namespace(c) => match c {
            NamespaceCommand::Create {
                name,
                group,
                public,
                description,
                category,
                labels,
            } => {
                let labels = labels
                    .iter()
                    .map(|l| {
                        l.split_once('=')
                            .map(|(k, v)| (k.to_owned(), v.to_owned()))
                            .with_context(|| format!("label {l:?} is not key=value"))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let spec = NamespaceSpec {
                    name: name.clone(),
                    group: Some(group),
                    public,
                    description,
                    category,
                    labels,
                };
                directory.create_namespace(&me, &spec).await?;
                println!(
                    "created {} namespace {name}",
                    if public { "public" } else { "private" }
                );
            }
            NamespaceCommand::List => {
                for n in store.list_namespaces().await? {
                    let group = store
                        .group_by_id(n.group_id)
                        .await?
                        .map(|g| g.name)
                        .unwrap_or_default();
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        n.name,
                        if n.public { "public" } else { "private" },
                        group,
                        n.labels,
                        n.description
                    );
                }
            }
            NamespaceCommand::Public { name } => {
                directory.set_namespace_public(&me, &name, true).await?;
                println!("namespace {name} is public");
            }
            NamespaceCommand::Private { name } => {
                directory.set_namespace_public(&me, &name, false).await?;
                println!("namespace {name} is private");
            }
            NamespaceCommand::Member {
                namespace,
                account,
                role: r,
                remove,
            } => {
                if remove {
                    directory
                        .remove_namespace_member(&me, &namespace, &account)
                        .await?;
                    println!("removed {account} from namespace {namespace}");
                } else {
                    let r = role(r.as_deref().unwrap_or_default())?;
                    directory
                        .set_namespace_member(&me, &namespace, &account, r)
                        .await?;
                    println!("{account} is {} on namespace {namespace}", r.as_str());
                }
            }
        },
        AdminCommand::Repository(RepositoryCommand::Permission {
            repository,
            account,
            permission,
            remove,
        }) => {
            let repo = RepoName::parse(&repository)?;
            if remove {
                directory
                    .remove_repository_permission(&me, &repo, &account)
                    .await?;
                println!("removed {account}'s permission on {repository}");
            } else {
                let p = permission.as_deref().unwrap_or_default();
                let p = RepoPermission::parse(p)
                    .with_context(|| format!("unknown permission {p:?}: read, write or manage"))?;
                directory
                    .set_repository_permission(&me, &repo, &account, p)
                    .await?;
                println!("{account} may {} {repository}", p.as_str());
            }
        }
        AdminCommand::RegistryUser(c) => match c {
            RegistryUserCommand::Create {
                name,
                owner,
                description,
                expires_in_days,
                password: p,
            } => {
                let spec = RegistryUserSpec {
                    name: name.clone(),
                    password: p.read()?,
                    description,
                    expires_at: expires_in_days.map(|d| now_millis() + i64::from(d) * 86_400_000),
                    owner: Some(owner),
                };
                let (_, generated) = directory.create_registry_user(&me, &spec).await?;
                println!("created registry user {name}");
                if let Some(pw) = generated {
                    println!("password: {pw}");
                }
            }
            RegistryUserCommand::List => {
                for u in store.list_registry_users(None).await? {
                    let owner = store
                        .account_by_id(u.owner_id)
                        .await?
                        .map(|a| a.name)
                        .unwrap_or_default();
                    let grants: Vec<String> = store
                        .grants_of(u.id)
                        .await?
                        .into_iter()
                        .map(|g| {
                            format!(
                                "{}:{}",
                                g.namespace,
                                if g.can_push { "push" } else { "pull" }
                            )
                        })
                        .collect();
                    let state = if !u.enabled {
                        "disabled".to_owned()
                    } else {
                        u.expires_at
                            .map(|t| format!("expires@{}", when(t)))
                            .unwrap_or_else(|| "enabled".into())
                    };
                    println!("{}\t{}\t{}\t{}", u.name, owner, state, grants.join(","));
                }
            }
            RegistryUserCommand::Grant {
                name,
                namespace,
                pull,
                push,
            } => {
                directory
                    .set_grant(&me, &name, &namespace, pull, push)
                    .await?;
                let what = match (pull, push) {
                    (_, true) => "pull and push",
                    (true, false) => "pull",
                    (false, false) => "nothing",
                };
                println!("{name} may {what} on namespace {namespace}");
            }
            RegistryUserCommand::Disable { name } => {
                directory
                    .set_registry_user_enabled(&me, &name, false)
                    .await?;
                println!("registry user {name} disabled");
            }
            RegistryUserCommand::Enable { name } => {
                directory
                    .set_registry_user_enabled(&me, &name, true)
                    .await?;
                println!("registry user {name} enabled");
            }
        },
        AdminCommand::Advisories(c) => {
            let regions = config.open_regions(meta.clone())?;
            let registry =
                berth_core::Registry::new(meta, platform, regions, config.registry.to_core());
            let vulnerabilities =
                berth_core::vulnerabilities::Vulnerabilities::new(directory.clone(), registry);
            crate::advisories::run(&vulnerabilities, c).await?;
        }
        AdminCommand::Audit { limit } => {
            for e in store.list_audit(limit).await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    when(e.at),
                    e.actor,
                    e.action,
                    e.target,
                    e.detail,
                    e.client_addr.unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}
