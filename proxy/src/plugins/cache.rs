//! Compiled components on disk, named by the SHA-256 of the component, so a restart (or a
//! second node on the same disk) loads machine code instead of compiling again.
//!
//! The cache folder must be writable only by the user Edgeway runs as: a file there is
//! loaded as machine code. Files from another wasmtime version or engine configuration are
//! refused by wasmtime when loaded; the component is then compiled again and the file
//! replaced.

use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// SHA-256 of `bytes`, as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut hex = String::with_capacity(64);
    for byte in digest.as_ref() {
        hex.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
        hex.push(char::from_digit(u32::from(byte & 0xf), 16).unwrap_or('0'));
    }
    hex
}

/// Loads `bytes` as a component: from `cache_dir` if it was compiled before, otherwise
/// compiled now and written there. Returns the component and its hash.
pub fn load(
    engine: &Engine,
    bytes: &[u8],
    cache_dir: &Path,
) -> wasmtime::Result<(Component, String)> {
    let hash = sha256_hex(bytes);
    let path = cache_dir.join(format!("{hash}.cwasm"));
    if path.is_file() {
        match deserialize(engine, &path) {
            Ok(component) => return Ok((component, hash)),
            Err(e) => {
                tracing::info!(path = %path.display(), error = %e, "compiled plugin cache entry not usable; compiling again")
            }
        }
    }
    let component = Component::new(engine, bytes)?;
    if let Err(e) = store(&component, cache_dir, &path) {
        tracing::warn!(path = %path.display(), error = %e, "cannot cache the compiled plugin");
        return Ok((component, hash));
    }
    // Serve from the file just written, as after a restart: wasmtime then maps the plugin's
    // initial memory straight from that file. A component compiled in memory would copy its
    // memory image into a sealed memfd instead, and sealing a large memfd can fail with EBUSY
    // for a moment while the kernel still holds references to its pages.
    match deserialize(engine, &path) {
        Ok(mapped) => Ok((mapped, hash)),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot map the compiled plugin just cached");
            Ok((component, hash))
        }
    }
}

/// Builds `component`'s copy-on-write memory images now rather than on its first
/// instantiation, so a failure shows when the plugin loads instead of failing a request.
/// Building an image from memory seals a memfd, which the kernel can refuse for a moment
/// (EBUSY while it still references the pages just written): a few tries, apart, ride it out.
pub fn prepare_memory_images(component: &Component) -> Result<(), super::LoadError> {
    const TRIES: u32 = 5;
    let mut attempt = 0;
    loop {
        match component.initialize_copy_on_write_image() {
            Ok(()) => return Ok(()),
            Err(e) if attempt + 1 == TRIES => return Err(super::LoadError::MemoryImage(e)),
            Err(_) => {}
        }
        attempt += 1;
        std::thread::sleep(std::time::Duration::from_millis(20 << attempt));
    }
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: wasmtime requires that the file holds code it produced itself and that nothing
    // changes it while mapped. Files here are written only by `store` below (to a temporary
    // name, then renamed into place, so a reader never sees a partial file) under a name that
    // is the SHA-256 of the component they were compiled from; the folder is Edgeway's own
    // (see the module docs). wasmtime checks the header for its version and engine settings.
    unsafe { Component::deserialize_file(engine, path) }
}

fn store(component: &Component, dir: &Path, path: &Path) -> std::io::Result<()> {
    let code = component
        .serialize()
        .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
    std::fs::create_dir_all(dir)?;
    let temporary: PathBuf = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("plugin"),
        std::process::id()
    ));
    std::fs::write(&temporary, code)?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::sha256_hex;

    #[test]
    fn sha256_is_hex_of_the_digest() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
