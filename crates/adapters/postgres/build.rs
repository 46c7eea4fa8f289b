//! Fingerprints the migrations, so that a change to them rebuilds the embedded migrations and
//! gives test databases a new template (`ONBOARD_MIGRATIONS_HASH`).

use std::fs;
use std::path::{Path, PathBuf};

const MIGRATIONS: &str = "../../../migrations";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={MIGRATIONS}");

    let root = Path::new(MIGRATIONS);
    let mut files = Vec::new();
    collect(root, &mut files);
    files.sort();

    // FNV-1a, 64 bits: stable across toolchains, unlike `DefaultHasher`.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for file in &files {
        let relative = file.strip_prefix(root).unwrap_or(file);
        feed(relative.to_string_lossy().as_bytes());
        feed(&[0]);
        match fs::read(file) {
            Ok(contents) => feed(&contents),
            Err(e) => panic!("cannot read migration file {}: {e}", file.display()),
        }
        feed(&[0]);
    }
    println!("cargo:rustc-env=ONBOARD_MIGRATIONS_HASH={hash:016x}");
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => panic!("cannot read migrations directory {}: {e}", dir.display()),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}
