//! Safe extraction of skill archives (protocol.md §7.2): zip, or tar with
//! transparent gzip/bzip2/xz compression.
//!
//! Two passes: the first screens every member name (including members that will be
//! skipped) and decides the wrapper directory; the second writes regular files and
//! directories only, re-checking containment against what is already on disk.

use super::names::{screen, strip_wrapper, wrapper_dir, ExtractError};
use sandkeep_tools::pyrepr::repr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zip::read::HasZipMetadata;

/// Zip-bomb guard (a deliberate deviation: the SDK has no limits, §7.2 rule 6).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Total bytes written for all files of one archive.
    pub max_total_bytes: u64,
    /// Members listed in one archive (skipped members count too).
    pub max_members: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_total_bytes: 100 * 1024 * 1024,
            max_members: 10_000,
        }
    }
}

const S_IFMT: u32 = 0o170_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File { executable: bool },
}

/// A member that will be written, by its position in the archive.
struct Planned {
    position: usize,
    raw_name: String,
    parts: Vec<String>,
    kind: Kind,
}

/// Extract `archive` into the existing directory `root`.
pub fn extract(archive: &Path, root: &Path, limits: &Limits) -> Result<(), ExtractError> {
    let file = File::open(archive).map_err(|e| io_error("cannot open the skill archive", e))?;
    match zip::ZipArchive::new(BufReader::new(file)) {
        Ok(zip) => extract_zip(zip, root, limits),
        Err(_) => extract_tar(archive, root, limits),
    }
}

fn io_error(what: &str, e: io::Error) -> ExtractError {
    ExtractError(format!("{what}: {e}"))
}

fn check_member_count(count: usize, limits: &Limits) -> Result<(), ExtractError> {
    if count > limits.max_members {
        return Err(ExtractError(format!(
            "skill archive has more than {} members; refusing to extract it (sandkeep's archive limit)",
            limits.max_members
        )));
    }
    Ok(())
}

/// Apply the wrapper stripping to the screened members and keep the writable ones.
fn plan(members: Vec<(usize, String, Vec<String>, Option<Kind>)>) -> Vec<Planned> {
    let extractable: Vec<Vec<String>> = members
        .iter()
        .filter(|m| m.3.is_some() && !m.2.is_empty())
        .map(|m| m.2.clone())
        .collect();
    let wrapper = wrapper_dir(&extractable);
    members
        .into_iter()
        .filter_map(|(position, raw_name, parts, kind)| {
            let kind = kind?;
            let parts = strip_wrapper(&parts, wrapper.as_deref())?;
            Some(Planned {
                position,
                raw_name,
                parts,
                kind,
            })
        })
        .collect()
}

fn file_kind(mode: Option<u32>) -> Kind {
    Kind::File {
        executable: mode.is_some_and(|m| m & 0o111 != 0),
    }
}

// ---------------------------------------------------------------- zip

/// The recorded Unix mode, when the entry carries Unix attributes (DOS entries get
/// a synthesised non-executable mode). Entries from hosts the zip crate does not
/// classify (e.g. `create_system` 19, macOS) count as Unix when their high
/// attribute bits name a file type.
fn zip_unix_mode<R: Read>(entry: &zip::read::ZipFile<'_, R>) -> Option<u32> {
    entry.unix_mode().or_else(|| {
        let high = entry.get_metadata().external_attributes >> 16;
        (high & S_IFMT != 0).then_some(high)
    })
}

fn extract_zip<R: Read + io::Seek>(
    mut zip: zip::ZipArchive<R>,
    root: &Path,
    limits: &Limits,
) -> Result<(), ExtractError> {
    check_member_count(zip.len(), limits)?;
    let mut members = Vec::with_capacity(zip.len());
    for position in 0..zip.len() {
        let entry = zip
            .by_index_raw(position)
            .map_err(|e| ExtractError(format!("bad zip archive: {e}")))?;
        let raw_name = entry.name().to_string();
        let parts = screen(&raw_name)?;
        let mode = zip_unix_mode(&entry);
        let type_bits = mode.map(|m| m & S_IFMT).unwrap_or(0);
        let kind = if raw_name.ends_with('/') || type_bits == S_IFDIR {
            Some(Kind::Dir)
        } else if type_bits == 0 || type_bits == S_IFREG {
            Some(file_kind(mode))
        } else {
            None // symlink, device, FIFO or socket
        };
        members.push((position, raw_name, parts, kind));
    }
    let root = canonical_root(root)?;
    let mut budget = limits.max_total_bytes;
    for member in plan(members) {
        let mut entry = zip
            .by_index(member.position)
            .map_err(|e| ExtractError(format!("bad zip archive: {e}")))?;
        write_member(&root, &member, "zip", &mut entry, &mut budget)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- tar

fn open_tar(archive: &Path) -> Result<tar::Archive<Box<dyn Read>>, ExtractError> {
    let mut file = File::open(archive).map_err(|e| io_error("cannot open the skill archive", e))?;
    let mut magic = [0u8; 6];
    let n = read_prefix(&mut file, &mut magic)
        .map_err(|e| io_error("cannot read the skill archive", e))?;
    if n == 0 {
        return Err(ExtractError::new(
            "skill archive is empty; expected a zip or tar archive",
        ));
    }
    let file = File::open(archive).map_err(|e| io_error("cannot open the skill archive", e))?;
    let reader = BufReader::new(file);
    let decoder: Box<dyn Read> = match &magic[..n] {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        [b'B', b'Z', b'h', ..] => Box::new(bzip2::read::MultiBzDecoder::new(reader)),
        [0xfd, b'7', b'z', b'X', b'Z', 0x00] => {
            Box::new(liblzma::read::XzDecoder::new_multi_decoder(reader))
        }
        _ => Box::new(reader),
    };
    Ok(tar::Archive::new(decoder))
}

fn read_prefix(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

fn not_an_archive(e: io::Error) -> ExtractError {
    ExtractError(format!(
        "skill archive is neither a zip nor a readable tar archive: {e}"
    ))
}

fn extract_tar(archive: &Path, root: &Path, limits: &Limits) -> Result<(), ExtractError> {
    let mut first = open_tar(archive)?;
    let mut members = Vec::new();
    for (position, entry) in first.entries().map_err(not_an_archive)?.enumerate() {
        check_member_count(position + 1, limits)?;
        let entry = entry.map_err(not_an_archive)?;
        let raw_name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let parts = screen(&raw_name)?;
        let header = entry.header();
        let entry_type = header.entry_type();
        let kind = if entry_type.is_dir() {
            Some(Kind::Dir)
        } else if entry_type.is_file() {
            Some(file_kind(header.mode().ok()))
        } else {
            None // links, devices, FIFOs, metadata entries
        };
        members.push((position, raw_name, parts, kind));
    }
    if members.is_empty() {
        return Err(ExtractError::new(
            "skill archive is neither a zip nor a tar archive (no members found)",
        ));
    }
    let root = canonical_root(root)?;
    let mut planned = plan(members).into_iter().peekable();
    let mut budget = limits.max_total_bytes;
    let mut second = open_tar(archive)?;
    for (position, entry) in second.entries().map_err(not_an_archive)?.enumerate() {
        let Some(member) = planned.next_if(|m| m.position == position) else {
            continue;
        };
        let mut entry = entry.map_err(not_an_archive)?;
        write_member(&root, &member, "tar", &mut entry, &mut budget)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- writing

fn canonical_root(root: &Path) -> Result<PathBuf, ExtractError> {
    root.canonicalize()
        .map_err(|e| io_error("cannot resolve the extraction directory", e))
}

fn unsafe_member(kind: &str, member: &Planned) -> ExtractError {
    ExtractError(format!(
        "refusing to extract unsafe {kind} member {}",
        repr(&member.raw_name)
    ))
}

/// Resolve `path` following symlinks already on disk; a missing final component
/// is resolved through its parent.
fn resolve(path: &Path) -> io::Result<PathBuf> {
    match path.canonicalize() {
        Ok(p) => Ok(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let parent = path.parent().ok_or(e)?;
            let name = path
                .file_name()
                .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
            Ok(resolve(parent)?.join(name))
        }
        Err(e) => Err(e),
    }
}

fn write_member(
    root: &Path,
    member: &Planned,
    archive_kind: &str,
    content: &mut dyn Read,
    budget: &mut u64,
) -> Result<(), ExtractError> {
    let target = member
        .parts
        .iter()
        .fold(root.to_path_buf(), |p, c| p.join(c));
    let contained = |p: &Path| {
        resolve(p)
            .map(|r| r.starts_with(root) && r != root)
            .unwrap_or(false)
    };
    if !contained(&target) {
        return Err(unsafe_member(archive_kind, member));
    }
    let cannot_write =
        |e: io::Error| ExtractError(format!("cannot extract {}: {e}", repr(&member.raw_name)));
    match member.kind {
        Kind::Dir => fs::create_dir_all(&target).map_err(cannot_write),
        Kind::File { executable } => {
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).map_err(cannot_write)?;
            }
            // Re-check after creating parents: a directory member may have been
            // swapped for something else on disk in between.
            if !contained(&target) {
                return Err(unsafe_member(archive_kind, member));
            }
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&target)
                .map_err(cannot_write)?;
            let written =
                io::copy(&mut content.take(*budget + 1), &mut file).map_err(cannot_write)?;
            if written > *budget {
                return Err(ExtractError::new(
                    "skill archive expands beyond the size limit; refusing to extract it (sandkeep's zip-bomb guard)",
                ));
            }
            *budget -= written;
            let mode = if executable { 0o755 } else { 0o644 };
            fs::set_permissions(&target, fs::Permissions::from_mode(mode)).map_err(cannot_write)
        }
    }
}

#[cfg(test)]
#[path = "extract_tests.rs"]
mod tests;
