//! The command line: config checking and the refusal to listen openly without keys.

mod common;

use std::process::Command;

use common::*;

#[test]
fn config_check_accepts_good_files_and_locates_errors() {
    let dir = temp_dir();
    let good = dir.join("good.yaml");
    std::fs::write(
        &good,
        "providers:\n  l: { type: ollama }\nmodels:\n  - name: m\n    targets: [{ provider: l, model: llama3.2 }]\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(bin()).args(["config", "check"]).arg(&good).output().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "providers:\n  l: { type: ollama, api_kee: x }\n").unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(bin()).args(["config", "check"]).arg(&bad).output().unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yaml:2:") && err.contains("api_kee"), "{err}");

    let dangling = dir.join("dangling.yaml");
    std::fs::write(&dangling, "models:\n  - name: m\n    targets: [{ provider: ghost, model: x }]\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(bin()).args(["config", "check"]).arg(&dangling).output().unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ghost"));
}

#[test]
fn refuses_a_public_address_without_keys_unless_told_otherwise() {
    let dir = temp_dir();
    let cfg = dir.join("open.yaml");
    std::fs::write(&cfg, "providers:\n  l: { type: ollama }\n").unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(bin())
        .args(["serve", "--listen", "0.0.0.0:0", "--config"])
        .arg(&cfg)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--insecure-no-auth"));

    let c = cfg.display().to_string();
    let gw = spawn(&["serve", "--listen", "0.0.0.0:0", "--insecure-no-auth", "--config", &c]);
    assert!(gw.url.starts_with("http://0.0.0.0:"));
}
