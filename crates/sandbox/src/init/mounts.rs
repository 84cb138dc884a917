//! The sandbox's filesystem view, built by the init before it restricts itself.
//!
//! Every bind source is opened (`O_PATH`) *before* anything is mounted over the
//! host view and bound from `/proc/self/fd/N`, so a workspace under `/tmp` still
//! works although the new root is assembled on a tmpfs mounted at `/tmp`.

use crate::channel::InitConfig;
use anyhow::{bail, Context};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::fs::{self, File};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{symlink, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use super::protect::{plan_all, Protection};

/// Where the new root is assembled (in our private mount namespace).
const NEW_ROOT: &str = "/tmp";
/// System trees bound read-only (or recreated as symlinks on merged-/usr hosts).
const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32", "/etc",
];
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];
/// Secrets under /etc replaced by an empty file.
const ETC_SECRETS: &[&str] = &[
    "shadow",
    "shadow-",
    "gshadow",
    "gshadow-",
    "security/opasswd",
];

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;

/// What the init built: placeholders it created in the host workspace.
pub struct BuiltRoot {
    pub placeholders: Vec<PathBuf>,
    /// Real (non-symlink) system directories, for the Landlock rules.
    pub system_dirs: Vec<PathBuf>,
}

enum SystemEntry {
    Dir(&'static str, OwnedFd),
    Link(&'static str, PathBuf),
}

/// Build the new root and `pivot_root` into it.
pub fn build_root(cfg: &InitConfig) -> anyhow::Result<BuiltRoot> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("making mount propagation private")?;

    // 1. Open every source while the host view is intact.
    let mut system = Vec::new();
    for dir in SYSTEM_DIRS {
        match fs::symlink_metadata(dir) {
            Ok(m) if m.file_type().is_symlink() => {
                system.push(SystemEntry::Link(dir, fs::read_link(dir)?))
            }
            Ok(m) if m.is_dir() => system.push(SystemEntry::Dir(dir, open_path(Path::new(dir))?)),
            _ => {}
        }
    }
    let devices: Vec<(&str, OwnedFd)> = DEVICES
        .iter()
        .filter_map(|d| {
            open_path(&Path::new("/dev").join(d))
                .ok()
                .map(|fd| (*d, fd))
        })
        .collect();
    let workspace = open_path(&cfg.workspace)
        .with_context(|| format!("opening workspace {}", cfg.workspace.display()))?;
    let ro_sources = open_all(
        cfg.ro_binds
            .iter()
            .chain(&cfg.allowed_roots)
            .filter(|p| !p.starts_with(&cfg.workspace)),
    )?;
    let rw_sources = open_all(cfg.rw_binds.iter())?;
    let protections = plan_all(&cfg.workspace, &cfg.protected, cfg.workload_uid)?;

    // 2. The new root: a small tmpfs, made read-only once populated.
    let root = Path::new(NEW_ROOT);
    mount(
        Some("tmpfs"),
        root,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0755,size=4m"),
    )
    .context("mounting the sandbox root tmpfs")?;
    let mut system_dirs = Vec::new();
    for entry in &system {
        match entry {
            SystemEntry::Dir(dir, fd) => {
                let target = under(root, Path::new(dir));
                fs::create_dir_all(&target)?;
                bind_fd(fd, &target)?;
                set_attrs(
                    &target,
                    MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                    true,
                )?;
                system_dirs.push(PathBuf::from(dir));
            }
            SystemEntry::Link(dir, to) => symlink(to, under(root, Path::new(dir)))?,
        }
    }
    let empty_file = root.join(".masked");
    File::create(&empty_file)?;
    mask_etc_secrets(root, &empty_file)?;
    if cfg.workload_uid != 0 {
        name_the_workload(root, cfg.workload_uid)?;
    }

    let ws = root.join("workspace");
    fs::create_dir(&ws)?;
    bind_fd(&workspace, &ws)?;
    set_attrs(&ws, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, true)?;

    let tmp = root.join("tmp");
    fs::create_dir(&tmp)?;
    let tmp_opts = format!("mode=1777,size={}m", cfg.tmp_mib);
    mount(
        Some("tmpfs"),
        &tmp,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(tmp_opts.as_str()),
    )
    .context("mounting /tmp")?;

    build_dev(root, &devices, cfg.tmp_mib)?;
    let proc = root.join("proc");
    fs::create_dir(&proc)?;
    mount(
        Some("proc"),
        &proc,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .context("mounting /proc")?;

    for (path, fd) in &ro_sources {
        let target = mount_point_for(root, path, fd)?;
        bind_fd(fd, &target)?;
        set_attrs(
            &target,
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
            true,
        )?;
    }
    for (path, fd) in &rw_sources {
        let target = mount_point_for(root, path, fd)?;
        bind_fd(fd, &target)?;
        set_attrs(&target, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, true)?;
    }

    for p in protections.protections {
        apply_protection(root, p)?;
    }

    set_attrs(
        &root.join("dev"),
        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID,
        false,
    )?;
    pivot_into(root)?;
    set_attrs(
        Path::new("/"),
        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        false,
    )?;
    Ok(BuiltRoot {
        placeholders: protections.created,
        system_dirs,
    })
}

fn apply_protection(root: &Path, p: Protection) -> anyhow::Result<()> {
    let ws = root.join("workspace");
    match p {
        Protection::Pin(rel) => {
            let target = ws.join(rel);
            // Inherits nosuid/nodev from the workspace mount it is cut from.
            mount(
                Some(&target),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .with_context(|| format!("pinning {} (bind onto itself)", target.display()))
        }
        Protection::PinLink(rel) => {
            // Through an O_PATH|O_NOFOLLOW descriptor the bind lands on the link
            // itself instead of its target.
            let target = ws.join(rel);
            let link: OwnedFd = fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&target)
                .with_context(|| format!("opening protected symlink {}", target.display()))?
                .into();
            let at = format!("/proc/self/fd/{}", link.as_raw_fd());
            mount(
                Some(at.as_str()),
                at.as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .with_context(|| format!("pinning protected symlink {}", target.display()))
        }
        Protection::ReadOnly(rel) => bind_self_readonly(&ws.join(rel)),
        Protection::OutsideTarget { target, is_dir } => {
            // Only sandbox-private writable trees need a placeholder: elsewhere the
            // target is read-only or absent on the read-only root.
            if !(target.starts_with("/tmp") || target.starts_with("/dev/shm")) {
                return Ok(());
            }
            let inside = under(root, &target);
            if !inside.exists() {
                if let Some(parent) = inside.parent() {
                    fs::create_dir_all(parent)?;
                }
                if is_dir {
                    fs::create_dir(&inside)?;
                } else {
                    File::create(&inside)?;
                }
            }
            bind_self_readonly(&inside)
        }
    }
}

fn bind_self_readonly(target: &Path) -> anyhow::Result<()> {
    mount(
        Some(target),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| format!("binding protected path {}", target.display()))?;
    set_attrs(
        target,
        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        true,
    )
}

/// Replace `/etc/passwd` and `/etc/group` by tiny generated files that name the
/// workload's uid (`sandbox`, home `/workspace`); the host's account list is not
/// needed inside and stays hidden.
fn name_the_workload(root: &Path, uid: u32) -> anyhow::Result<()> {
    let passwd = format!(
        "root:x:0:0:root:/root:/bin/bash\n\
         sandbox:x:{uid}:{uid}:sandkeep workload:/workspace:/bin/bash\n\
         nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    );
    let group = format!("root:x:0:\nsandbox:x:{uid}:\nnogroup:x:65534:\n");
    for (name, text) in [("passwd", passwd), ("group", group)] {
        let target = root.join("etc").join(name);
        if !fs::symlink_metadata(&target).is_ok_and(|m| m.is_file()) {
            continue;
        }
        let generated = root.join(format!(".{name}"));
        fs::write(&generated, text)?;
        mount(
            Some(&generated),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_context(|| format!("replacing /etc/{name}"))?;
        set_attrs(
            &target,
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
            false,
        )?;
    }
    Ok(())
}

fn mask_etc_secrets(root: &Path, empty_file: &Path) -> anyhow::Result<()> {
    let etc = root.join("etc");
    let mut secrets: Vec<PathBuf> = ETC_SECRETS.iter().map(|s| etc.join(s)).collect();
    if let Ok(entries) = fs::read_dir(etc.join("ssh")) {
        secrets.extend(
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().contains("key"))
                .map(|e| e.path()),
        );
    }
    for secret in secrets {
        if fs::symlink_metadata(&secret).is_ok_and(|m| m.is_file()) {
            mount(
                Some(empty_file),
                &secret,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .with_context(|| format!("masking {}", secret.display()))?;
            set_attrs(
                &secret,
                MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                false,
            )?;
        }
    }
    Ok(())
}

fn build_dev(root: &Path, devices: &[(&str, OwnedFd)], tmp_mib: u64) -> anyhow::Result<()> {
    let dev = root.join("dev");
    fs::create_dir(&dev)?;
    mount(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID,
        Some("mode=0755,size=64k"),
    )
    .context("mounting /dev")?;
    for (name, fd) in devices {
        let node = dev.join(name);
        File::create(&node)?;
        bind_fd(fd, &node)?;
    }
    for (name, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(to, dev.join(name))?;
    }
    let shm = dev.join("shm");
    fs::create_dir(&shm)?;
    let opts = format!("mode=1777,size={}m", tmp_mib.clamp(1, 64));
    mount(
        Some("tmpfs"),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(opts.as_str()),
    )
    .context("mounting /dev/shm")?;
    Ok(())
}

fn pivot_into(root: &Path) -> anyhow::Result<()> {
    std::env::set_current_dir(root)?;
    nix::unistd::pivot_root(".", ".").context("pivot_root into the sandbox root")?;
    umount2(".", MntFlags::MNT_DETACH).context("detaching the host root")?;
    std::env::set_current_dir("/")?;
    Ok(())
}

/// `path` re-rooted under `root` (lexically; `..` is refused by policy validation).
fn under(root: &Path, path: &Path) -> PathBuf {
    let mut out = root.to_path_buf();
    for c in path.components() {
        if let Component::Normal(n) = c {
            out.push(n);
        }
    }
    out
}

fn mount_point_for(root: &Path, path: &Path, fd: &OwnedFd) -> anyhow::Result<PathBuf> {
    let target = under(root, path);
    let is_dir =
        nix::sys::stat::fstat(fd.as_raw_fd()).map(|s| s.st_mode & libc::S_IFMT == libc::S_IFDIR)?;
    if target.symlink_metadata().is_err() {
        if is_dir {
            fs::create_dir_all(&target)?;
        } else {
            fs::create_dir_all(target.parent().unwrap_or(root))?;
            File::create(&target)?;
        }
    }
    Ok(target)
}

fn open_path(path: &Path) -> anyhow::Result<OwnedFd> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(path)
        .with_context(|| format!("opening bind source {}", path.display()))?;
    Ok(file.into())
}

fn open_all<'a>(
    paths: impl Iterator<Item = &'a PathBuf>,
) -> anyhow::Result<Vec<(PathBuf, OwnedFd)>> {
    paths.map(|p| Ok((p.clone(), open_path(p)?))).collect()
}

fn bind_fd(fd: &OwnedFd, target: &Path) -> anyhow::Result<()> {
    let source = format!("/proc/self/fd/{}", fd.as_raw_fd());
    mount(
        Some(source.as_str()),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| format!("bind-mounting onto {}", target.display()))
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Add mount attributes (read-only, nosuid, nodev) to the mount at `target`, and to
/// every mount below it when `recursive`. Only adds flags, so flags the host locked
/// (e.g. noexec on a bind source) stay as they are.
fn set_attrs(target: &Path, attrs: u64, recursive: bool) -> anyhow::Result<()> {
    let c = std::ffi::CString::new(target.as_os_str().as_encoded_bytes())?;
    let attr = MountAttr {
        attr_set: attrs,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = if recursive { libc::AT_RECURSIVE } else { 0 } as libc::c_uint;
    // SAFETY: valid C string and a correctly sized mount_attr.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r != 0 {
        bail!(
            "mount_setattr on {}: {}",
            target.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}
