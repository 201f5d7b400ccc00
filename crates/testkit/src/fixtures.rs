//! The shared Chatra fixtures (`shared/fixtures/chatra/`), found wherever the checkout sits.

use std::path::{Path, PathBuf};

/// The bytes of `shared/fixtures/chatra/{name}`, looked up in `DESKIE_FIXTURES_DIR` or in a
/// `shared/` folder beside any ancestor of `start` (pass `env!("CARGO_MANIFEST_DIR")`).
pub fn chatra_fixture(start: &str, name: &str) -> Vec<u8> {
    let path = fixture_dir(Path::new(start)).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

fn fixture_dir(start: &Path) -> PathBuf {
    if let Some(dir) = std::env::var_os("DESKIE_FIXTURES_DIR") {
        return PathBuf::from(dir);
    }
    start
        .ancestors()
        .map(|a| a.join("shared/fixtures/chatra"))
        .find(|candidate| candidate.is_dir())
        .unwrap_or_else(|| {
            panic!(
                "no shared/fixtures/chatra above {}; set DESKIE_FIXTURES_DIR",
                start.display()
            )
        })
}
