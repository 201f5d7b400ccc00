//! The Chatra webhook fixtures the tests use, kept in the repository (`tests/fixtures/chatra/`),
//! so a fresh clone needs nothing beside it.

use std::path::{Path, PathBuf};

/// The fixture folder: `tests/fixtures/chatra/` of this workspace.
pub fn chatra_fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/chatra")
}

/// The bytes of `tests/fixtures/chatra/{name}`.
///
/// # Panics
/// When the file is missing: a test that names a fixture cannot run without it.
pub fn chatra_fixture(name: &str) -> Vec<u8> {
    let path = chatra_fixture_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}
