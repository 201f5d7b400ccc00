//! Static checks of docker-compose.yml and deploy/ (no Docker engine runs here).

use std::collections::BTreeSet;
use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Binary names declared in services/*/Cargo.toml.
fn workspace_binaries() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(repo().join("services")).expect("services") {
        let manifest = entry.expect("entry").path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let mut in_bin = false;
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                in_bin = line == "[[bin]]";
            } else if in_bin && let Some(name) = line.strip_prefix("name = ") {
                names.insert(name.trim_matches('"').to_owned());
            }
        }
    }
    names
}

#[test]
fn compose_runs_only_binaries_the_workspace_builds_with_the_full_environment() {
    let compose: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&read("docker-compose.yml")).expect("valid YAML");
    let services = compose["services"].as_mapping().expect("services");
    let binaries = workspace_binaries();
    let dockerfile = read("deploy/Dockerfile");
    let mut deskie_services = 0;
    for (name, service) in services {
        let Some(command) = service["command"].as_sequence() else {
            continue;
        };
        let Some(binary) = command.first().and_then(|c| c.as_str()) else {
            continue;
        };
        if !binary.starts_with("deskie") {
            continue;
        }
        deskie_services += 1;
        assert!(
            binaries.contains(binary),
            "{name:?} runs {binary}, which no services/*/Cargo.toml declares"
        );
        assert!(
            dockerfile.contains(binary),
            "deploy/Dockerfile does not ship {binary}"
        );
        let env = service["environment"].as_mapping().expect("environment");
        for var in [
            "DESKIE_DATABASE_URL",
            "DESKIE_NATS_URL",
            "DESKIE_ADMIN_TOKEN",
            "DESKIE_ENCRYPTION_KEY",
            "DESKIE_PUBLIC_URL",
        ] {
            assert!(env.contains_key(var), "{name:?} lacks {var}");
        }
    }
    assert!(
        deskie_services >= 4,
        "migrate, ingest, api and relay are expected"
    );
}

/// The top-level folder of every workspace member (the one-line `members = [...]` of the
/// root Cargo.toml).
fn member_folders() -> BTreeSet<String> {
    let manifest = read("Cargo.toml");
    let members = manifest
        .lines()
        .find_map(|line| line.trim().strip_prefix("members = "))
        .expect("a one-line workspace members list");
    members
        .split('"')
        .skip(1)
        .step_by(2)
        .filter_map(|member| member.split('/').next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_image_build_copies_every_workspace_member_and_the_protos() {
    let dockerfile = read("deploy/Dockerfile");
    let copied: BTreeSet<String> = dockerfile
        .lines()
        .filter_map(|line| line.trim().strip_prefix("COPY "))
        .filter(|args| !args.starts_with("--from"))
        .flat_map(|args| {
            let parts: Vec<&str> = args.split_whitespace().collect();
            // Every part but the destination is a source.
            parts[..parts.len().saturating_sub(1)]
                .iter()
                .map(|source| source.trim_end_matches('/').to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut needed = member_folders();
    needed.extend(["Cargo.toml", "Cargo.lock", "proto"].map(str::to_owned));
    let missing: Vec<&String> = needed.difference(&copied).collect();
    assert!(
        missing.is_empty(),
        "deploy/Dockerfile does not copy {missing:?}: `cargo build --locked` fails without them"
    );
}

#[test]
fn compose_pins_a_nats_server_with_per_write_fsync() {
    let compose: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&read("docker-compose.yml")).expect("valid YAML");
    let image = compose["services"]["nats"]["image"]
        .as_str()
        .expect("nats image");
    let tag = image.strip_prefix("nats:").expect("official nats image");
    let mut parts = tag.split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    assert!(
        (major, minor) >= (2, 12),
        "nats image {image} is older than 2.12"
    );
    let config = read("deploy/nats-server.conf");
    assert!(
        config.lines().any(|l| l.trim() == "sync_interval: always"),
        "JetStream must fsync every write before acknowledging it"
    );
    // A 1 MiB webhook plus its envelope must fit in one message.
    assert!(config.contains("max_payload: 2MB"));
}
