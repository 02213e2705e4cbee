//! Records the versions of what this crate is built with (`model.json`'s `versions`).

fn main() {
    built::write_built_file().expect("writing the build information");
}
