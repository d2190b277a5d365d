// Links libfsgen from an installed prefix: $FSGEN_PREFIX, or pkg-config's fsgen.pc. The rpath
// lets the programs and tests run without LD_LIBRARY_PATH.
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn libdir() -> PathBuf {
    if let Ok(prefix) = env::var("FSGEN_PREFIX") {
        let prefix = PathBuf::from(prefix);
        for dir in ["lib", "lib64", "lib/x86_64-linux-gnu", "lib/aarch64-linux-gnu"] {
            let candidate = prefix.join(dir);
            if candidate.join("pkgconfig/fsgen.pc").exists() {
                return candidate;
            }
        }
        panic!("FSGEN_PREFIX={} holds no lib*/pkgconfig/fsgen.pc (install fsgen there first)", prefix.display());
    }
    let output = Command::new("pkg-config")
        .args(["--variable=libdir", "fsgen"])
        .output()
        .expect("set FSGEN_PREFIX to fsgen's install prefix, or install pkg-config");
    assert!(output.status.success(), "pkg-config finds no fsgen: set FSGEN_PREFIX or PKG_CONFIG_PATH");
    PathBuf::from(String::from_utf8(output.stdout).expect("pkg-config output").trim())
}

fn main() {
    println!("cargo:rerun-if-env-changed=FSGEN_PREFIX");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    let dir = libdir();
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=dylib=fsgen");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
}
