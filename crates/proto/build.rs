//! Compiles `proto/` with protox, so a fresh machine needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        "deskie/events/v1/envelope.proto",
        "deskie/webhooks/v1/webhooks.proto",
    ];
    let descriptors = protox::compile(files, [&root])?;
    // Messages only: gRPC services will get a crate of their own, so this one (and the pure
    // domain that uses it) stays free of any runtime.
    prost_build::Config::new().compile_fds(descriptors)?;
    println!("cargo:rerun-if-changed={}", root.display());
    Ok(())
}
