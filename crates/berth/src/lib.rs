//! The `berth` binary's library: configuration, wiring of the layers, the
//! HTTP server with health and metrics endpoints, and background jobs.
//!
//! Layering: this is the top. It builds the stores (`berth-meta`,
//! `berth-blob`), the services (`berth-core`) and mounts the HTTP surfaces
//! (`berth-registry`); nothing calls into it.
//!
//! # In detail
//!
//! `berth admin` (the directory from the command line), `Config` (TOML plus
//! `BERTH_*`, secrets redacted), wiring of stores and services, the server
//! (axum on hyper, optional rustls TLS, TCP_NODELAY and a 64 KiB read buffer
//! per connection; a response given before its request's body was read to the
//! end says `Connection: close`, as hyper then closes the connection),
//! `/healthz`, `/readyz`, `/metrics`, background jobs (pull-count flush,
//! upload expiry, scheduled garbage collection and retention, returning freed
//! memory to the system every 5 s with glibc's `malloc_trim`, after the blob
//! store's pooled upload buffers once no large upload runs; at startup,
//! `mallopt` fixes glibc's mmap threshold at 1 MiB so large buffers are
//! mapped on their own — with `unsafe` calls only in `src/memory.rs` and the
//! socket options of `src/connections.rs`), `berth gc` and graceful shutdown
//! (stop accepting, finish in-flight requests within the grace period, flush
//! pending counts).

pub mod admin;
pub mod advisories;
pub mod backup;
pub mod config;
mod connections;
pub mod fsck;
pub mod gc;
pub mod memory;
mod metrics;
mod server;

pub use config::Config;
pub use server::{start, RunningServer};
