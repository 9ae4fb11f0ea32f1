// `sqlx::migrate!` embeds the migrations folder at compile time: build the
// crate again when a migration is added or changed (sqlx's advice), or a
// new migration would be missing from an incremental build.
//
// It also states the schema version this build migrates to (the highest
// migration number), which both databases must agree on.
use std::path::Path;

fn latest(dir: &Path) -> u32 {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.split('_').next()?.parse::<u32>().ok()
        })
        .max()
        .unwrap_or(0)
}

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    let sqlite = latest(Path::new("migrations/sqlite"));
    let postgres = latest(Path::new("migrations/postgres"));
    assert_eq!(
        sqlite, postgres,
        "the SQLite and PostgreSQL migrations must reach the same schema version"
    );
    let out = std::env::var("OUT_DIR").expect("OUT_DIR");
    std::fs::write(
        Path::new(&out).join("schema_version.rs"),
        format!("pub const SCHEMA_VERSION: i64 = {sqlite};\n"),
    )
    .expect("writing schema_version.rs");
}
