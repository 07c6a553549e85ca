// Node-API symbols are resolved from the host process when the addon loads.
// Linux allows undefined symbols in shared objects by default; macOS's linker
// must be told so.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("macos") {
        println!("cargo:rustc-cdylib-link-arg=-undefined");
        println!("cargo:rustc-cdylib-link-arg=dynamic_lookup");
    }
}
