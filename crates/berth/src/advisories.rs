//! `berth admin advisories import PATH…`: import OSV advisories from files
//! or directories (searched recursively for `*.json`), as an air-gapped
//! site does with a download of osv.dev, GitHub's advisory database or a
//! distribution's feed. Each file holds one OSV document or a JSON array
//! of them; documents go in batches, so memory stays bounded whatever the
//! download's size. Only the images holding a package the new or changed
//! advisories name are re-matched.

use std::path::{Path, PathBuf};

use anyhow::Context;
use berth_core::access::Principal;
use berth_core::vulnerabilities::{ImportReport, Vulnerabilities};
use clap::Subcommand;

/// Documents per import batch.
const BATCH: usize = 1000;
/// Largest advisory file read.
const MAX_FILE: u64 = 64 * 1024 * 1024;

/// `berth admin advisories …`
#[derive(Debug, Subcommand)]
pub enum AdvisoriesCommand {
    /// Import OSV documents from files or directories (recursively).
    Import {
        /// Files (`*.json`: one document or an array) or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

/// The JSON files under `path` (itself when a file), sorted.
fn files(path: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
    if meta.is_file() {
        out.push(path.to_owned());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("{}", path.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for e in entries {
        if e.is_dir() {
            files(&e, out)?;
        } else if e.extension().is_some_and(|x| x == "json") {
            out.push(e);
        }
    }
    Ok(())
}

/// The documents of one file (one object, or an array of them).
fn documents(path: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let size = std::fs::metadata(path)?.len();
    anyhow::ensure!(
        size <= MAX_FILE,
        "{}: {size} bytes, larger than {MAX_FILE}",
        path.display()
    );
    let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        let docs: Vec<serde_json::Value> = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not a JSON array", path.display()))?;
        Ok(docs
            .into_iter()
            .map(|d| d.to_string().into_bytes())
            .collect())
    } else {
        Ok(vec![bytes])
    }
}

fn add(total: &mut ImportReport, r: ImportReport) {
    total.imported += r.imported;
    total.unchanged += r.unchanged;
    total.images_matched += r.images_matched;
    total.new_findings += r.new_findings;
}

/// Run an advisories command.
pub async fn run(
    vulnerabilities: &Vulnerabilities,
    command: AdvisoriesCommand,
) -> anyhow::Result<()> {
    let AdvisoriesCommand::Import { paths } = command;
    let mut all = Vec::new();
    for p in &paths {
        files(p, &mut all)?;
    }
    let mut total = ImportReport::default();
    let mut refused = 0;
    let mut batch: Vec<Vec<u8>> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (i, file) in all.iter().enumerate() {
        for doc in documents(file)? {
            batch.push(doc);
            names.push(file.display().to_string());
        }
        if batch.len() >= BATCH || i + 1 == all.len() {
            let r = vulnerabilities
                .import(&Principal::System, &batch)
                .await
                .context("importing advisories")?;
            for (at, why) in &r.invalid {
                refused += 1;
                eprintln!("refused {}: {why}", names[*at]);
            }
            add(&mut total, r);
            batch.clear();
            names.clear();
        }
    }
    println!(
        "imported {} advisories ({} unchanged, {refused} refused) from {} files; {} images re-matched, {} new findings",
        total.imported,
        total.unchanged,
        all.len(),
        total.images_matched,
        total.new_findings
    );
    Ok(())
}
