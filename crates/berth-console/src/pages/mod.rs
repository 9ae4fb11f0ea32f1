//! The console's pages and form handlers, a file per part of the console.
//! Each calls the management service; a refused form goes back to its
//! page with the service's message.

pub(crate) mod access;
pub(crate) mod account;
pub(crate) mod audit;
pub(crate) mod gc;
pub(crate) mod groups;
pub(crate) mod image_signatures;
pub(crate) mod image_vulnerabilities;
pub(crate) mod images;
pub(crate) mod namespaces;
pub(crate) mod policies;
pub(crate) mod registry_users;
pub(crate) mod remote_replication;
pub(crate) mod remotes;
pub(crate) mod session;
pub(crate) mod sign_in_admin;
pub(crate) mod signatures;
pub(crate) mod sso;
pub(crate) mod sync;
pub(crate) mod trust_rules;
pub(crate) mod webhooks;
