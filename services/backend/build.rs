//! Rebuilds the backend when a migration is added: `sqlx::migrate!` embeds the files it finds,
//! but on stable Rust it cannot tell cargo to watch the directory, so a new file alone (such as
//! `0005_…`) would leave the old migrator in a cached build.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
