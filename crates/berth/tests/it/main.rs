//! The server's integration tests, one binary (it links the server once):
//! each module drives real Berth processes on random ports, over SQLite
//! and PostgreSQL, the filesystem and S3, with real clients. They need the
//! services `scripts/test.sh` starts (PostgreSQL, Garage, moto, nginx, the
//! docker engine, Chromium), so they build only with the `integration`
//! feature, which `scripts/test.sh` turns on; plain `cargo test` skips them.

#[macro_use]
mod common;

mod accounting;
mod advisory_feed;
mod api_fuzz;
mod attached_sboms;
mod auth_api;
mod authorization;
mod backup;
mod browser_safety;
mod client;
mod connections;
mod console_browser;
mod console_pages;
mod crash_safety;
mod credentials;
mod db_outage;
mod deploy_guide;
mod directory;
mod e2e_clients;
mod full_disk;
mod gc;
mod gc_console;
mod gc_crash;
mod gc_shards;
mod image;
mod image_list;
mod integrity;
mod inventory_images;
mod keyless_signatures;
mod large_blobs;
mod management_api;
mod network_zones;
mod nodes;
mod notation_signatures;
mod policies;
mod proxy;
mod quotas;
mod regions;
mod registry_api;
mod remote_replication;
mod remote_safety;
mod remotes;
mod s3_storage;
mod signature_policies;
mod sso_ldap;
mod sso_oidc;
mod sync;
mod tenant_isolation;
mod tls;
mod upgrades;
mod vulnerabilities;
mod vulnerability_policies;
mod webhooks;
mod workload_identity;
