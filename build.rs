//! Names the commit the binaries are built from, for `--version` (SPARKIFY_COMMIT): `git
//! rev-parse` of the checkout, or "unknown" outside one (a source archive).

use std::path::Path;
use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|commit| !commit.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=SPARKIFY_COMMIT={commit}");
    // Run again when HEAD moves (a commit, a checkout); only paths that exist are named, since
    // a missing one would run this script, and rebuild the crate, on every build.
    println!("cargo:rerun-if-changed=build.rs");
    for path in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
