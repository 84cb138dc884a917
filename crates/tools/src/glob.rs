//! The `glob` tool (§9.7), with Python 3.11 `pathlib.Path.glob` semantics:
//! `*`/`?`/`[…]` within one component (matching dotfiles too), `**` as a whole
//! component = zero or more directories (never entering symlinked directories, so
//! a symlink loop cannot hang it), literal components checked with `exists()`,
//! results post-filtered against symlink escapes and sorted newest first.

use crate::input::GlobInput;
use crate::{paths, paths::Roots, pyrepr::repr, ToolOutput};
use globset::{GlobBuilder, GlobMatcher};
use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::FileType;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

/// Raw matches collected before the walk stops (§9.7 step 5).
const MAX_RAW_MATCHES: usize = 50_000;
/// Paths returned (§9.7 step 8); there is no truncation notice.
const MAX_RESULTS: usize = 200;

enum Segment {
    Literal(OsString),
    Wildcard(GlobMatcher),
    Recursive,
}

pub fn glob(roots: &Roots, input: GlobInput, deadline: Option<Instant>) -> ToolOutput {
    let pattern = input.pattern.as_str();
    if pattern.starts_with('/') {
        return ToolOutput::error(
            "glob: absolute pattern not permitted; pass a relative pattern (and optionally path)",
        );
    }
    if pattern.split('/').any(|part| part == "..") {
        return ToolOutput::error("glob: '..' is not permitted in the pattern");
    }
    let root = match input.path.as_deref() {
        Some(path) => match roots.resolve("glob", path) {
            Ok(root) => root,
            Err(text) => return ToolOutput::error(text),
        },
        None => roots.workdir.clone(),
    };
    let segments = match parse_pattern(pattern) {
        Ok(segments) => segments,
        Err(text) => return ToolOutput::error(format!("glob: {text}")),
    };
    let mut selector = Selector {
        segments: &segments,
        dirs_only: pattern.ends_with('/'),
        matches: Vec::new(),
        seen: HashSet::new(),
        deadline,
        timed_out: false,
    };
    selector.select(&root, Path::new(""), 0, None);
    if selector.timed_out {
        return ToolOutput::deadline("glob");
    }
    let mut found: Vec<(SystemTime, PathBuf)> = selector
        .matches
        .into_iter()
        // `Path::join("")` would add a trailing slash to the root itself.
        .map(|rel| {
            if rel.as_os_str().is_empty() {
                root.clone()
            } else {
                root.join(rel)
            }
        })
        .filter(|abs| paths::canonicalize(abs).is_ok_and(|canonical| canonical.starts_with(&root)))
        .map(|abs| {
            (
                std::fs::metadata(&abs)
                    .and_then(|m| m.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH),
                abs,
            )
        })
        .collect();
    if found.is_empty() {
        return ToolOutput::text("no matches");
    }
    found.sort_by_key(|(mtime, _)| std::cmp::Reverse(*mtime)); // stable: ties keep walk order
    let lines: Vec<String> = found
        .iter()
        .take(MAX_RESULTS)
        .map(|(_, abs)| abs.to_string_lossy().into_owned())
        .collect();
    ToolOutput::text(lines.join("\n"))
}

/// Split the pattern into components; `.` and empty components vanish as in
/// `PurePath`. A pattern with no components is Python's "Unacceptable pattern".
fn parse_pattern(pattern: &str) -> Result<Vec<Segment>, String> {
    let mut segments = Vec::new();
    for part in pattern.split('/').filter(|p| !p.is_empty() && *p != ".") {
        segments.push(if part == "**" {
            Segment::Recursive
        } else if part.contains(['*', '?', '[']) {
            let glob = GlobBuilder::new(&fnmatch_to_globset(part))
                .literal_separator(true)
                .backslash_escape(false)
                .build()
                .map_err(|e| e.to_string())?;
            Segment::Wildcard(glob.compile_matcher())
        } else {
            Segment::Literal(part.into())
        });
    }
    if segments.is_empty() {
        return Err(format!("Unacceptable pattern: {}", repr(pattern)));
    }
    Ok(segments)
}

/// Rewrite one fnmatch component into globset syntax: braces are literal in
/// fnmatch, an unclosed `[` is a literal `[`, and `**` inside a component is `*`.
fn fnmatch_to_globset(part: &str) -> String {
    let chars: Vec<char> = part.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '{' => out.push_str("[{]"),
            '}' => out.push_str("[}]"),
            '*' => {
                out.push('*');
                while chars.get(i + 1) == Some(&'*') {
                    i += 1;
                }
            }
            '[' => {
                // fnmatch: `!` negates, a `]` right after the opening is literal.
                let mut j = i + 1;
                if chars.get(j) == Some(&'!') {
                    j += 1;
                }
                if chars.get(j) == Some(&']') {
                    j += 1;
                }
                while j < chars.len() && chars[j] != ']' {
                    j += 1;
                }
                if j >= chars.len() {
                    out.push_str("[[]");
                } else {
                    out.extend(&chars[i..=j]);
                    i = j;
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

struct Selector<'a> {
    segments: &'a [Segment],
    dirs_only: bool,
    matches: Vec<PathBuf>,
    seen: HashSet<PathBuf>,
    deadline: Option<Instant>,
    timed_out: bool,
}

impl Selector<'_> {
    fn stop(&mut self) -> bool {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.timed_out = true;
        }
        self.timed_out || self.matches.len() >= MAX_RAW_MATCHES
    }

    /// Apply segments `index..` below `dir` (absolute) spelled `rel`; `listing`
    /// is `dir`'s sorted entries when the caller has already read them.
    fn select(&mut self, dir: &Path, rel: &Path, index: usize, listing: Option<&[Entry]>) {
        if self.stop() {
            return;
        }
        let Some(segment) = self.segments.get(index) else {
            if self.seen.insert(rel.to_path_buf()) {
                self.matches.push(rel.to_path_buf());
            }
            return;
        };
        let needs_dir = index + 1 < self.segments.len() || self.dirs_only;
        match segment {
            Segment::Literal(name) => {
                let child = dir.join(name);
                let present = match listing.map(|l| lookup(l, name)) {
                    // Listed and not a symlink: its own type answers without a stat.
                    Some(Some(Entry {
                        kind: Some(kind), ..
                    })) if !kind.is_symlink() => !needs_dir || kind.is_dir(),
                    // Not in a complete listing of `dir`: it does not exist.
                    Some(None) => false,
                    _ if needs_dir => child.is_dir(),
                    _ => child.exists(),
                };
                if present {
                    self.select(&child, &rel.join(name), index + 1, None);
                }
            }
            Segment::Wildcard(matcher) => {
                let owned;
                let listing = match listing {
                    Some(listing) => listing,
                    None => match read_sorted(dir) {
                        Some(read) => {
                            owned = read;
                            &owned
                        }
                        None => return,
                    },
                };
                for entry in listing {
                    if !matcher.is_match(Path::new(&entry.name)) {
                        continue;
                    }
                    let child = dir.join(&entry.name);
                    if !needs_dir || child.is_dir() {
                        self.select(&child, &rel.join(&entry.name), index + 1, None);
                    }
                }
            }
            Segment::Recursive => self.recurse(dir, rel, index + 1),
        }
    }

    /// `**`: apply segments `next..` in `dir` and every real (non-symlinked)
    /// directory below it, in pre-order with sorted names — the order of a
    /// sorted `walkdir`. Each directory is read once; its listing also serves a
    /// wildcard segment that follows.
    fn recurse(&mut self, dir: &Path, rel: &Path, next: usize) {
        // An explicit stack: a deep tree must not exhaust the thread's stack.
        let mut pending = vec![(dir.to_path_buf(), rel.to_path_buf())];
        while let Some((dir, rel)) = pending.pop() {
            if self.stop() {
                return;
            }
            let listing = read_sorted(&dir);
            self.select(&dir, &rel, next, listing.as_deref());
            let subdirs = listing.iter().flatten().filter(|e| e.is_real_dir());
            // Reversed, so the first name is popped first (pre-order).
            let children: Vec<_> = subdirs
                .map(|e| (dir.join(&e.name), rel.join(&e.name)))
                .collect();
            pending.extend(children.into_iter().rev());
        }
    }
}

/// One directory entry; `kind` is its own type (links not followed), `None`
/// when the kernel did not say and an lstat failed.
struct Entry {
    name: OsString,
    kind: Option<FileType>,
}

impl Entry {
    fn is_real_dir(&self) -> bool {
        self.kind.is_some_and(|k| k.is_dir())
    }
}

/// The entries of `dir` sorted by name; `None` if it cannot be read.
fn read_sorted(dir: &Path) -> Option<Vec<Entry>> {
    let mut entries: Vec<Entry> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| Entry {
            kind: e.file_type().ok(),
            name: e.file_name(),
        })
        .collect();
    entries.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    Some(entries)
}

/// `name` in a sorted listing.
fn lookup<'a>(listing: &'a [Entry], name: &OsStr) -> Option<&'a Entry> {
    listing
        .binary_search_by(|e| e.name.as_os_str().cmp(name))
        .ok()
        .map(|i| &listing[i])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ToolConfig;
    use std::fs::{self, File};
    use std::time::Duration;

    fn run(dir: &Path, pattern: &str, path: Option<&str>) -> (bool, String) {
        let roots = Roots::new(&ToolConfig::new(dir));
        let out = glob(
            &roots,
            GlobInput {
                pattern: pattern.into(),
                path: path.map(Into::into),
            },
            None,
        );
        (out.is_error, out.joined_text())
    }

    fn touch(path: &Path, secs: u64) {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        let file = File::create(path).unwrap();
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
            .unwrap();
    }

    #[test]
    fn mtime_order_newest_first_and_absolute_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let w = fs::canonicalize(tmp.path()).unwrap();
        touch(&w.join("a.txt"), 1);
        touch(&w.join("b.txt"), 2);
        touch(&w.join("c.md"), 3);
        let expected = format!(
            "{}\n{}",
            w.join("b.txt").display(),
            w.join("a.txt").display()
        );
        assert_eq!(run(&w, "*.txt", None), (false, expected));
    }

    #[test]
    fn path_argument_limits_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let w = fs::canonicalize(tmp.path()).unwrap();
        touch(&w.join("sub/a.txt"), 1);
        touch(&w.join("b.txt"), 1);
        assert_eq!(
            run(&w, "*.txt", Some("sub")).1,
            w.join("sub/a.txt").display().to_string()
        );
        assert_eq!(
            run(&w, "*.txt", Some("../x")).1,
            "glob: path '../x' is outside the session's working directory"
        );
    }

    #[test]
    fn pattern_rules_and_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let w = fs::canonicalize(tmp.path()).unwrap();
        assert_eq!(
            run(&w, "../outside/*.txt", None).1,
            "glob: '..' is not permitted in the pattern"
        );
        assert_eq!(
            run(&w, "/etc/*", None).1,
            "glob: absolute pattern not permitted; pass a relative pattern (and optionally path)"
        );
        assert_eq!(
            run(&w, "", None),
            (true, "glob: Unacceptable pattern: ''".into())
        );
        assert_eq!(run(&w, "*.nothing", None), (false, "no matches".into()));
    }

    #[test]
    fn recursive_dotfiles_and_directories_only() {
        let tmp = tempfile::tempdir().unwrap();
        let w = fs::canonicalize(tmp.path()).unwrap();
        touch(&w.join(".hidden.txt"), 5);
        touch(&w.join("d/e/deep.txt"), 4);
        touch(&w.join("d/x{1}.txt"), 3);
        touch(&w.join("d/[a.txt"), 2);
        let lines = |s: String| -> Vec<String> {
            s.lines()
                .map(|l| {
                    l.strip_prefix(&format!("{}/", w.display()))
                        .unwrap_or(l)
                        .to_string()
                })
                .collect()
        };
        let mut all = lines(run(&w, "**/*.txt", None).1);
        all.sort();
        assert_eq!(
            all,
            [".hidden.txt", "d/[a.txt", "d/e/deep.txt", "d/x{1}.txt"]
        );
        let mut dirs = lines(run(&w, "**", None).1);
        dirs.sort();
        assert_eq!(dirs, [w.display().to_string(), "d".into(), "d/e".into()]);
        assert_eq!(lines(run(&w, "d/x{1}.*", None).1), ["d/x{1}.txt"]);
        assert_eq!(lines(run(&w, "d/[[]a.txt", None).1), ["d/[a.txt"]);
        assert_eq!(lines(run(&w, "d/[a.txt", None).1), ["d/[a.txt"]);
        assert_eq!(lines(run(&w, "./d/e/", None).1), ["d/e"]);
        assert_eq!(lines(run(&w, "d/*/", None).1), ["d/e"]);
        assert_eq!(lines(run(&w, "d/e/deep.txt", None).1), ["d/e/deep.txt"]);
        assert_eq!(lines(run(&w, "d/?/deep.t[!y]t", None).1), ["d/e/deep.txt"]);
    }

    #[test]
    fn symlink_escapes_are_filtered_and_loops_terminate() {
        let tmp = tempfile::tempdir().unwrap();
        let base = fs::canonicalize(tmp.path()).unwrap();
        let w = base.join("work");
        touch(&base.join("outside/s.txt"), 1);
        touch(&w.join("in.txt"), 1);
        std::os::unix::fs::symlink("../outside", w.join("escape")).unwrap();
        std::os::unix::fs::symlink(".", w.join("self")).unwrap();
        std::os::unix::fs::symlink("l2", w.join("l1")).unwrap();
        std::os::unix::fs::symlink("l1", w.join("l2")).unwrap();
        assert_eq!(run(&w, "escape/*.txt", None).1, "no matches");
        // `**` does not enter `self`, so this terminates; l1/l2 cannot be resolved.
        let found = run(&w, "**/*", None).1;
        assert!(
            !found.contains("l1") && !found.contains("escape/") && found.contains("self"),
            "{found}"
        );
        assert_eq!(
            run(&w, "self/self/self/in.txt", None).1,
            w.join("self/self/self/in.txt").display().to_string()
        );
    }

    #[test]
    fn recursive_literals_see_files_dirs_and_symlinks_like_exists() {
        let tmp = tempfile::tempdir().unwrap();
        let w = fs::canonicalize(tmp.path()).unwrap();
        touch(&w.join("a/build.rs"), 3);
        touch(&w.join("b/build.rs/inner"), 2);
        touch(&w.join("target.rs"), 1);
        fs::create_dir_all(w.join("c")).unwrap();
        fs::create_dir_all(w.join("d")).unwrap();
        std::os::unix::fs::symlink("../target.rs", w.join("c/build.rs")).unwrap();
        std::os::unix::fs::symlink("missing", w.join("d/build.rs")).unwrap();
        let mut all: Vec<String> = run(&w, "**/build.rs", None)
            .1
            .lines()
            .map(|l| {
                l.strip_prefix(&format!("{}/", w.display()))
                    .unwrap()
                    .to_string()
            })
            .collect();
        all.sort();
        assert_eq!(all, ["a/build.rs", "b/build.rs", "c/build.rs"]);
        assert_eq!(
            run(&w, "**/build.rs/", None).1,
            w.join("b/build.rs").display().to_string()
        );
    }

    #[test]
    fn only_the_newest_200_are_listed() {
        let tmp = tempfile::tempdir().unwrap();
        let w = fs::canonicalize(tmp.path()).unwrap();
        for i in 0..205 {
            touch(&w.join(format!("f{i:03}")), 1000 + i);
        }
        let out = run(&w, "f*", None).1;
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 200);
        assert!(lines[0].ends_with("f204") && lines[199].ends_with("f005"));
    }
}
