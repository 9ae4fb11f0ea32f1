//! The `berth` binary's library: configuration, wiring of the layers, the
//! HTTP server with health and metrics endpoints, and background jobs.
//!
//! Layering: this is the top. It builds the stores (`berth-meta`,
//! `berth-blob`), the services (`berth-core`) and mounts the HTTP surfaces
//! (`berth-registry`); nothing calls into it.

pub mod admin;
pub mod config;
mod connections;
pub mod gc;
pub mod memory;
mod metrics;
mod server;

pub use config::Config;
pub use server::{start, RunningServer};
