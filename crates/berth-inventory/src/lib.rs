//! Package inventories of image layers, without I/O beyond the reader it
//! is given: a layer's tar stream (plain, gzip or zstd) is walked once,
//! bounded in entries, bytes and file sizes, and the package databases it
//! holds are read — Debian `dpkg` status (and `status.d`), Alpine `apk`'s
//! installed database, Python `*.dist-info`/`*.egg-info` metadata, npm
//! `package.json` under `node_modules`, Go binaries' build information,
//! Rust binaries' `cargo auditable` section, RPM's `rpmdb.sqlite` (read
//! by a small SQLite file reader of its own), Maven's `pom.properties`
//! loose or inside Java archives — with `os-release` and the
//! layer's whiteouts. [`image::union`] applies layers in order into an
//! image's inventory. What was skipped is reported, never silently lost.
//! [`sbom`] writes an image's inventory as SPDX 2.3 or CycloneDX 1.5.
//!
//! Layering: a pure crate at the bottom, beside `berth-advisory`; fuzz
//! targets `inventory` (whole layers) and `package_files` (one file of
//! each kind: RPM's SQLite database, Java archives, …).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod apk;
mod dpkg;
mod gobin;
pub mod image;
mod java;
mod npm;
mod os_release;
mod python;
mod rpm;
mod rustbin;
pub mod sbom;
mod sqlite;
mod walk;

use serde::{Deserialize, Serialize};

pub use walk::{read_file, read_layer};

/// A package found in a layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// `PyPI`, `npm`, `Go`, `crates.io`; for the distribution's packages
    /// `dpkg`, `apk` or `rpm`, resolved per image from its `os-release`
    /// ([`image::union`]).
    pub ecosystem: String,
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The source package it was built from (dpkg `Source`, apk origin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The file it was read from.
    pub path: String,
}

/// The distribution a layer names (`/etc/os-release`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Os {
    /// `ID` (`debian`, `ubuntu`, `alpine`, …).
    pub id: String,
    /// `VERSION_ID` (`12`, `22.04`, `3.19.1`).
    pub version_id: String,
}

/// What one layer holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInventory {
    /// Packages, in the order found.
    pub packages: Vec<Package>,
    /// The distribution, when the layer has an `os-release`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<Os>,
    /// Paths this layer deletes from the layers below (`.wh.` files).
    #[serde(default)]
    pub whiteouts: Vec<String>,
    /// Directories this layer makes opaque (`.wh..wh..opq`).
    #[serde(default)]
    pub opaque: Vec<String>,
    /// Package database files this layer writes (a later copy replaces
    /// what an earlier layer's copy listed, even when it lists nothing).
    #[serde(default)]
    pub databases: Vec<String>,
    /// What was not read, and why (bounded list).
    #[serde(default)]
    pub skipped: Vec<String>,
    /// Why the walk stopped early, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Tar entries seen.
    pub entries: u64,
    /// Uncompressed bytes read.
    pub bytes: u64,
}

/// Bounds on the work one layer may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most tar entries walked.
    pub max_entries: u64,
    /// Most uncompressed bytes read.
    pub max_bytes: u64,
    /// Largest package database read (`dpkg` status, apk installed,
    /// `rpmdb.sqlite`).
    pub max_database: u64,
    /// Largest metadata file read (`package.json`, `METADATA`, os-release).
    pub max_metadata: u64,
    /// Largest executable scanned for build information, and largest
    /// Java archive read (with the archives it holds).
    pub max_binary: u64,
    /// Most packages kept.
    pub max_packages: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 1_000_000,
            max_bytes: 32 * 1024 * 1024 * 1024,
            max_database: 64 * 1024 * 1024,
            max_metadata: 1024 * 1024,
            max_binary: 128 * 1024 * 1024,
            max_packages: 200_000,
        }
    }
}

/// Most skip notes kept per layer.
pub const MAX_NOTES: usize = 50;

impl LayerInventory {
    fn note(&mut self, what: String) {
        if self.skipped.len() < MAX_NOTES {
            self.skipped.push(what);
        }
    }
}
