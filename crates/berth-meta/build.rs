// `sqlx::migrate!` embeds the migrations folder at compile time: build the
// crate again when a migration is added or changed (sqlx's advice), or a
// new migration would be missing from an incremental build.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
