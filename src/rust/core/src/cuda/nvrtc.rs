//! NVRTC, loaded at run time: locating libnvrtc, compiling generated kernels
//! to PTX (`compute_XX`) or CUBIN (`sm_XX`), and the on-disk cache of
//! compiled kernels.
//!
//! cudarc opens libraries by bare name, which only finds what the dynamic
//! loader already knows (LD_LIBRARY_PATH set before R started, the system
//! cache). So libnvrtc is first opened here by absolute path and kept
//! loaded; cudarc's later `dlopen` of the same soname then finds it.
//! cudarc panics when a library is missing: every entry point checks for the
//! library first and runs under `catch_unwind`.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cudarc::nvrtc::{result, sys};

use crate::error::{Error, Result};

/// The libnvrtc that was loaded (kept open for the whole session).
static LOADED: Mutex<Option<(PathBuf, libloading::Library)>> = Mutex::new(None);

/// Where libnvrtc may be: an explicit path (option or `KEOPSR_NVRTC`), then
/// `CUDA_HOME`/`CUDA_PATH`, the usual CUDA folders, and the pip wheels
/// (`nvidia-cuda-nvrtc-cu12`, `nvidia-cuda-nvrtc`) of the Python on PATH.
fn candidates(explicit: Option<&str>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut files: Vec<PathBuf> = Vec::new();
    for path in explicit.into_iter().map(str::to_string).chain(std::env::var("KEOPSR_NVRTC").ok()) {
        let p = PathBuf::from(path);
        if p.is_dir() {
            dirs.push(p);
        } else {
            files.push(p);
        }
    }
    for var in ["CUDA_HOME", "CUDA_PATH"] {
        if let Ok(root) = std::env::var(var) {
            dirs.push(Path::new(&root).join("lib64"));
            dirs.push(Path::new(&root).join("lib"));
        }
    }
    dirs.push("/usr/local/cuda/lib64".into());
    dirs.push("/usr/lib/x86_64-linux-gnu".into());
    dirs.push("/usr/lib64".into());
    if let Ok(ld) = std::env::var("LD_LIBRARY_PATH") {
        dirs.extend(ld.split(':').filter(|s| !s.is_empty()).map(PathBuf::from));
    }
    for site in python_site_dirs() {
        dirs.push(site.join("nvidia/cuda_nvrtc/lib"));
        dirs.push(site.join("nvidia/cu13/lib"));
    }
    for dir in dirs {
        for name in ["libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12"] {
            files.push(dir.join(name));
        }
    }
    files
}

/// site-packages folders of the Pythons found on PATH and under ~/.local.
fn python_site_dirs() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(path) = std::env::var("PATH") {
        for dir in path.split(':') {
            // <prefix>/bin -> <prefix>/lib/python3.*/site-packages
            if let Some(prefix) = Path::new(dir).parent() {
                roots.push(prefix.join("lib"));
            }
        }
    }
    if let Ok(home) = std::env::var("HOME") {
        roots.push(Path::new(&home).join(".local/lib"));
        if let Ok(versions) = std::fs::read_dir(Path::new(&home).join(".pyenv/versions")) {
            roots.extend(versions.flatten().map(|v| v.path().join("lib")));
        }
    }
    if let Ok(venv) = std::env::var("VIRTUAL_ENV") {
        roots.push(Path::new(&venv).join("lib"));
    }
    let mut sites = Vec::new();
    for root in roots {
        if let Ok(entries) = std::fs::read_dir(&root) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.starts_with("python3") {
                    sites.push(e.path().join("site-packages"));
                    sites.push(e.path().join("dist-packages"));
                }
            }
        }
    }
    sites
}

/// Loads libnvrtc (once) and returns its path.
pub fn load(explicit: Option<&str>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        check_explicit(path)?;
    }
    let mut loaded = LOADED.lock().map_err(|_| Error::Internal("NVRTC registry poisoned".into()))?;
    if let Some((path, _)) = loaded.as_ref() {
        return Ok(path.clone());
    }
    for path in candidates(explicit) {
        if !path.exists() {
            continue;
        }
        // SAFETY: loading libnvrtc runs its initializers, which have no
        // preconditions; the library stays loaded for the session.
        if let Ok(lib) = unsafe { libloading::Library::new(&path) } {
            *loaded = Some((path.clone(), lib));
            return Ok(path);
        }
    }
    // SAFETY: probing by bare name, as cudarc itself would.
    if unsafe { sys::is_culib_present() } {
        return Ok(PathBuf::from("libnvrtc (system library path)"));
    }
    Err(Error::Backend(
        "NVRTC (libnvrtc) was not found: install the CUDA toolkit, or `pip install nvidia-cuda-nvrtc-cu12`, \
         or point the environment variable KEOPSR_NVRTC (or keops_options(nvrtc = )) at libnvrtc.so"
            .into(),
    ))
}

/// An explicitly given libnvrtc (a file, or a folder holding one) must be a
/// library that exports NVRTC's entry points: anything else is an option
/// error, not a silent fallback to another libnvrtc.
fn check_explicit(path: &str) -> Result<()> {
    let p = Path::new(path);
    let files: Vec<PathBuf> = if p.is_dir() {
        ["libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12"].iter().map(|n| p.join(n)).filter(|f| f.exists()).collect()
    } else {
        vec![p.to_path_buf()]
    };
    let exports_nvrtc = |f: &PathBuf| {
        // SAFETY: opening a shared library runs its initializers; a file
        // that is not one is refused by the loader before anything runs.
        unsafe { libloading::Library::new(f) }
            .is_ok_and(|lib| unsafe { lib.get::<unsafe extern "C" fn()>(b"nvrtcVersion\0") }.is_ok())
    };
    if files.iter().any(exports_nvrtc) {
        return Ok(());
    }
    Err(Error::Option(format!(
        "'{path}' is not libnvrtc{}: give the path of libnvrtc.so (or of its folder)",
        if p.exists() { "" } else { " (no such file or folder)" }
    )))
}

/// NVRTC's version (major, minor).
pub fn version() -> Result<(i32, i32)> {
    guard(|| {
        let (mut major, mut minor) = (0, 0);
        // SAFETY: both pointers are valid for writes.
        let status = unsafe { sys::nvrtcVersion(&mut major, &mut minor) };
        if status != sys::nvrtcResult::NVRTC_SUCCESS {
            return Err(Error::Backend(format!("nvrtcVersion failed: {status:?}")));
        }
        Ok((major, minor))
    })
}

/// Runs a CUDA call, turning a panic of cudarc (library missing) into an error.
pub fn guard<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(Error::Backend("the CUDA library call failed (library missing or incompatible)".into())))
}

/// A compiled kernel: PTX text (`compute_XX`) or a CUBIN image (`sm_XX`).
#[derive(Debug, Clone)]
pub struct Compiled {
    pub arch: String,
    pub image: Vec<u8>,
    pub is_cubin: bool,
    pub log: String,
    /// Whether the image came from the disk cache (no compilation).
    pub cached: bool,
}

/// Compiles CUDA C source for `arch` ("sm_90" gives a CUBIN, "compute_90" PTX).
pub fn compile(source: &str, arch: &str) -> Result<Compiled> {
    check_arch(arch)?;
    guard(|| {
        let src = CString::new(source).map_err(|_| Error::Internal("kernel source contains a NUL byte".into()))?;
        let name = CString::new("keopsr.cu").unwrap_or_default();
        let prog = result::create_program(&src, Some(&name)).map_err(|e| Error::Backend(format!("NVRTC: {e:?}")))?;
        let options = [format!("--gpu-architecture={arch}"), "--std=c++14".to_string(), "-default-device".to_string()];
        // SAFETY: `prog` was just created and is destroyed below; `src` and
        // `name` outlive it.
        let status = unsafe { result::compile_program(prog, &options) };
        let log = unsafe { result::get_program_log(prog) }
            .map(|raw| {
                let bytes: Vec<u8> = raw.iter().map(|&c| c as u8).take_while(|&b| b != 0).collect();
                String::from_utf8_lossy(&bytes).to_string()
            })
            .unwrap_or_default();
        let out = match status {
            Err(e) => Err(Error::Backend(format!("NVRTC could not compile the generated kernel ({e:?}):\n{log}"))),
            Ok(()) if arch.starts_with("sm_") => cubin(prog).map(|image| Compiled { arch: arch.into(), image, is_cubin: true, log: log.clone(), cached: false }),
            Ok(()) => unsafe { result::get_ptx(prog) }
                .map(|raw| Compiled {
                    arch: arch.into(),
                    image: raw.iter().map(|&c| c as u8).take_while(|&b| b != 0).collect(),
                    is_cubin: false,
                    log: log.clone(),
                    cached: false,
                })
                .map_err(|e| Error::Backend(format!("NVRTC: {e:?}"))),
        };
        // SAFETY: `prog` is live and destroyed once.
        let _ = unsafe { result::destroy_program(prog) };
        out
    })
}

fn check_arch(arch: &str) -> Result<()> {
    let digits = arch.strip_prefix("sm_").or(arch.strip_prefix("compute_"));
    if digits.is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric())) {
        Ok(())
    } else {
        Err(Error::Option(format!("arch must look like \"sm_90\" or \"compute_90\", got \"{arch}\"")))
    }
}

fn cubin(prog: sys::nvrtcProgram) -> Result<Vec<u8>> {
    let mut size = 0usize;
    // SAFETY: `prog` is a compiled program; the buffer has the size NVRTC reports.
    unsafe {
        let s = sys::nvrtcGetCUBINSize(prog, &mut size);
        if s != sys::nvrtcResult::NVRTC_SUCCESS {
            return Err(Error::Backend(format!("nvrtcGetCUBINSize: {s:?}")));
        }
        let mut image = vec![0u8; size];
        let s = sys::nvrtcGetCUBIN(prog, image.as_mut_ptr() as *mut std::ffi::c_char);
        if s != sys::nvrtcResult::NVRTC_SUCCESS {
            return Err(Error::Backend(format!("nvrtcGetCUBIN: {s:?}")));
        }
        Ok(image)
    }
}

/// The folder of cached kernels (set from R: `tools::R_user_dir()` unless an
/// option says otherwise).
pub fn cache_dir() -> &'static Mutex<Option<PathBuf>> {
    static DIR: OnceLock<Mutex<Option<PathBuf>>> = OnceLock::new();
    DIR.get_or_init(|| Mutex::new(None))
}

/// A 128-bit FNV-1a digest (two 64-bit passes with different seeds), as 32
/// hex digits: stable across runs and platforms (std's hasher is randomly
/// seeded). Used for cache keys and entry checksums, not for security.
fn digest(parts: &[&[u8]]) -> String {
    let fnv = |seed: u64| {
        let mut h = seed;
        for b in parts.iter().flat_map(|p| p.iter()) {
            h ^= *b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        h
    };
    format!("{:016x}{:016x}", fnv(0xcbf29ce484222325), fnv(0x84222325cbf29ce4))
}

/// The cache key: a hash of everything that changes the compiled image.
pub fn cache_key(source: &str, arch: &str, nvrtc: (i32, i32)) -> String {
    let version = format!("{nvrtc:?}{}", env!("CARGO_PKG_VERSION"));
    digest(&[source.as_bytes(), arch.as_bytes(), version.as_bytes()])
}

/// First line of every cache entry; the second holds the payload's length
/// and checksum. An entry that does not start with both, or whose payload
/// does not match them (truncated, overwritten, corrupted), is rebuilt.
const ENTRY_MAGIC: &[u8] = b"keopsr kernel cache entry v1\n";

fn encode_entry(image: &[u8]) -> Vec<u8> {
    let header = format!("{} {}\n", image.len(), digest(&[image]));
    [ENTRY_MAGIC, header.as_bytes(), image].concat()
}

/// The payload of a valid entry, or None.
fn decode_entry(entry: &[u8]) -> Option<&[u8]> {
    let rest = entry.strip_prefix(ENTRY_MAGIC)?;
    let newline = rest.iter().position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&rest[..newline]).ok()?;
    let (len, sum) = header.split_once(' ')?;
    let image = &rest[newline + 1..];
    (len.parse::<usize>().ok()? == image.len() && sum == digest(&[image])).then_some(image)
}

/// File name extensions of cache entries (and of their temporary files).
const ENTRY_EXTENSIONS: [&str; 2] = ["cubin", "ptx"];

/// Number of entries and their total size in bytes, in `dir`.
pub fn cache_usage(dir: &Path) -> (usize, u64) {
    cache_entries(dir).iter().fold((0, 0), |(n, bytes), p| (n + 1, bytes + p.metadata().map_or(0, |m| m.len())))
}

/// Removes every cache entry (and leftover temporary file) from `dir`;
/// returns how many files were removed. Other files are left alone.
pub fn cache_clear(dir: &Path) -> usize {
    let leftovers = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "tmp"));
    cache_entries(dir).into_iter().chain(leftovers).filter(|p| std::fs::remove_file(p).is_ok()).count()
}

fn cache_entries(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|x| x.to_str()).is_some_and(|x| ENTRY_EXTENSIONS.contains(&x)))
        .collect()
}

/// Writes `bytes` to `path` atomically: a temporary file unique to this
/// process and call, then a rename, so that a concurrent reader sees either
/// the old entry or the whole new one, never a partial file.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("{}.{n}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path)).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Compiles through the disk cache: a valid cached image is reused; a
/// missing or invalid one (see [`decode_entry`]) is recompiled and written
/// atomically. Safe when several processes compile the same kernels at once:
/// the worst case is that each compiles it once.
pub fn compile_cached(source: &str, arch: &str) -> Result<Compiled> {
    let dir = cache_dir().lock().map_err(|_| Error::Internal("cache registry poisoned".into()))?.clone();
    let Some(dir) = dir else { return compile(source, arch) };
    check_arch(arch)?;
    let key = cache_key(source, arch, version()?);
    let is_cubin = arch.starts_with("sm_");
    let path = dir.join(format!("{key}.{}", ENTRY_EXTENSIONS[usize::from(!is_cubin)]));
    if let Some(image) = std::fs::read(&path).ok().as_deref().and_then(decode_entry) {
        return Ok(Compiled { arch: arch.into(), image: image.to_vec(), is_cubin, log: String::new(), cached: true });
    }
    let compiled = compile(source, arch)?;
    // A cache that cannot be written (read-only folder, full disk) only costs
    // a recompilation next time.
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = write_atomically(&path, &encode_entry(&compiled.image));
    }
    Ok(compiled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_reject_damage() {
        let image = b"//\n// Generated PTX\n.version 8.8\n".to_vec();
        let entry = encode_entry(&image);
        assert_eq!(decode_entry(&entry), Some(&image[..]));
        // Truncated anywhere, a byte flipped anywhere, or the old bare format.
        for cut in 0..entry.len() {
            assert_eq!(decode_entry(&entry[..cut]), None, "truncated at {cut}");
        }
        for k in 0..entry.len() {
            let mut bad = entry.clone();
            bad[k] ^= 0x20;
            assert_ne!(decode_entry(&bad), Some(&image[..]), "byte {k} flipped");
        }
        assert_eq!(decode_entry(&image), None);
    }

    #[test]
    fn usage_and_clear_touch_only_entries() {
        let dir = std::env::temp_dir().join(format!("keopsr-cache-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_atomically(&dir.join("a.ptx"), &encode_entry(b"//x")).unwrap();
        write_atomically(&dir.join("b.cubin"), &encode_entry(b"\x7fELF")).unwrap();
        std::fs::write(dir.join("c.ptx.1.2.tmp"), b"partial").unwrap();
        std::fs::write(dir.join("notes.txt"), b"mine").unwrap();
        assert_eq!(cache_usage(&dir).0, 2);
        assert_eq!(cache_clear(&dir), 3);
        assert_eq!(cache_usage(&dir), (0, 0));
        assert!(dir.join("notes.txt").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
