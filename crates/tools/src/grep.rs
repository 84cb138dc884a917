//! The `grep` tool (§9.8), in process with ripgrep's crates. File selection and
//! limits follow the SDK's built-in fallback: no `.git`/`node_modules`, no
//! symlinks, no binary files (NUL in the first 512 bytes), no raw lines over
//! 2 000 bytes, a 102 400-character output budget and a 50 000-file cap. Files
//! are visited in sorted path order so results are deterministic.

use crate::input::GrepInput;
use crate::{fserr, paths::Roots, ToolOutput};
use grep_matcher::LineTerminator;
use grep_regex::{RegexMatcher, RegexMatcherBuilder};
use grep_searcher::{Searcher, SearcherBuilder, Sink, SinkMatch};
use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::Path;
use std::time::{Duration, Instant};

const OUTPUT_BUDGET: i64 = 102_400;
const MAX_FILES: usize = 50_000;
const MAX_LINE_BYTES: usize = 2_000;
const BINARY_PROBE_BYTES: u64 = 512;
/// The SDK's fallback gives up after 30 s; here it is wall-clock time.
const TIME_LIMIT: Duration = Duration::from_secs(30);
/// Bounds the memory a single enormous line can take; such files are skipped.
const LINE_HEAP_LIMIT: usize = 64 << 20;

pub fn grep(roots: &Roots, input: GrepInput, deadline: Option<Instant>) -> ToolOutput {
    let root = match input.path.as_deref() {
        Some(path) => match roots.resolve("grep", path) {
            Ok(root) => root,
            Err(text) => return ToolOutput::error(text),
        },
        None => roots.workdir.clone(),
    };
    // Validate with `regex` first: its message quotes the pattern as written,
    // where grep-regex's would show its internal `(?:…)` wrapper.
    if let Err(e) = regex::Regex::new(&input.pattern) {
        return ToolOutput::error(format!("grep: invalid regex: {e}"));
    }
    // Line-oriented like ripgrep: multi-line regex mode so `^`/`$` match at each
    // line's ends; CRLF mode (which implies `\n` as the line terminator, so no
    // match spans lines, and must agree with the searcher's) so `$` also matches
    // before `\r\n`, as the SDK strips `\r\n` before matching.
    let matcher = match RegexMatcherBuilder::new()
        .multi_line(true)
        .crlf(true)
        .build(&input.pattern)
    {
        Ok(m) => m,
        Err(e) => return ToolOutput::error(format!("grep: invalid regex: {e}")),
    };
    let meta = match std::fs::metadata(&root) {
        Ok(meta) => meta,
        Err(e) => {
            return ToolOutput::error(fserr::message(
                "grep",
                input.path.as_deref().unwrap_or("."),
                &e,
            ))
        }
    };
    let limit = Instant::now() + TIME_LIMIT;
    let mut search = Search {
        matcher,
        searcher: SearcherBuilder::new()
            .line_terminator(LineTerminator::crlf())
            .line_number(true)
            .heap_limit(Some(LINE_HEAP_LIMIT))
            .build(),
        hits: Vec::new(),
        budget: OUTPUT_BUDGET,
        truncated: false,
        deadline,
        limit,
        stopped: None,
    };
    if meta.is_file() {
        search.scan_file(&root);
    } else if meta.is_dir() {
        search.scan_tree(&root);
    }
    match search.stopped {
        Some(Stop::Deadline) => ToolOutput::deadline("grep"),
        Some(Stop::TimeLimit) => ToolOutput::error("grep: timed out after 30s"),
        None if search.hits.is_empty() && !search.truncated => ToolOutput::text("no matches"),
        None => {
            if search.truncated {
                search
                    .hits
                    .push(format!("[output truncated at {OUTPUT_BUDGET} bytes]"));
            }
            ToolOutput::text(search.hits.join("\n"))
        }
    }
}

enum Stop {
    Deadline,
    TimeLimit,
}

struct Search {
    matcher: RegexMatcher,
    searcher: Searcher,
    hits: Vec<String>,
    budget: i64,
    truncated: bool,
    deadline: Option<Instant>,
    limit: Instant,
    stopped: Option<Stop>,
}

impl Search {
    /// Whether to stop now: output budget spent, or a time bound reached.
    fn should_stop(&mut self) -> bool {
        let now = Instant::now();
        if self.deadline.is_some_and(|d| now >= d) {
            self.stopped = Some(Stop::Deadline);
        } else if now >= self.limit {
            self.stopped = Some(Stop::TimeLimit);
        }
        self.truncated || self.stopped.is_some()
    }

    fn scan_tree(&mut self, root: &Path) {
        let walker = ignore::WalkBuilder::new(root)
            .standard_filters(false)
            .follow_links(false)
            .sort_by_file_name(|a, b| a.cmp(b))
            .filter_entry(|entry| {
                let skipped_dir = entry.depth() > 0
                    && entry.file_type().is_some_and(|t| t.is_dir())
                    && matches!(entry.file_name().to_str(), Some(".git" | "node_modules"));
                !skipped_dir
            })
            .build();
        let mut scanned = 0;
        // Symlinks report their own type here (links are not followed), so
        // symlinked files and directories are both skipped.
        for entry in walker.filter_map(Result::ok) {
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                continue;
            }
            if scanned == MAX_FILES || self.should_stop() {
                break;
            }
            scanned += 1;
            self.scan_file(entry.path());
        }
    }

    fn scan_file(&mut self, path: &Path) {
        let Ok(mut file) = File::open(path) else {
            return;
        };
        let mut probe = Vec::new();
        let is_binary = (&mut file)
            .take(BINARY_PROBE_BYTES)
            .read_to_end(&mut probe)
            .is_err()
            || probe.contains(&0);
        if is_binary || file.rewind().is_err() {
            return;
        }
        let display = path.to_string_lossy().into_owned();
        let mut sink = HitSink {
            search: self,
            path: &display,
        };
        let matcher = sink.search.matcher.clone();
        let mut searcher = sink.search.searcher.clone();
        // A read error (or a line over the heap limit) skips the rest of the file.
        let _ = searcher.search_file(&matcher, &file, &mut sink);
    }

    /// Record one hit; `false` once the budget is spent.
    fn push(&mut self, hit: String) -> bool {
        let cost = hit.chars().count() as i64 + 1;
        if self.budget - cost < 0 {
            self.truncated = true;
            return false;
        }
        self.budget -= cost;
        self.hits.push(hit);
        true
    }
}

struct HitSink<'a> {
    search: &'a mut Search,
    path: &'a str,
}

impl Sink for HitSink<'_> {
    type Error = io::Error;

    fn matched(&mut self, _: &Searcher, hit: &SinkMatch<'_>) -> Result<bool, io::Error> {
        let raw = hit.bytes();
        if raw.len() > MAX_LINE_BYTES {
            return Ok(!self.search.should_stop());
        }
        let line = String::from_utf8_lossy(raw);
        let line = line.trim_end_matches(['\r', '\n']);
        let number = hit.line_number().unwrap_or(0);
        Ok(
            self.search.push(format!("{}:{number}:{line}", self.path))
                && !self.search.should_stop(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ToolConfig;
    use std::fs;

    fn run(dir: &Path, pattern: &str, path: Option<&str>) -> (bool, String) {
        let roots = Roots::new(&ToolConfig::new(dir));
        let out = grep(
            &roots,
            GrepInput {
                pattern: pattern.into(),
                path: path.map(Into::into),
            },
            None,
        );
        (out.is_error, out.joined_text())
    }

    #[test]
    fn finds_matches_in_trees_and_single_files() {
        let tmp = tempfile::tempdir().unwrap();
        let w = fs::canonicalize(tmp.path()).unwrap();
        fs::write(w.join("x.txt"), "foo\nbar\nbaz\n").unwrap();
        fs::create_dir(w.join("sub")).unwrap();
        fs::write(w.join("sub/y.txt"), "alpha\r\nbeta\r\n").unwrap();
        let x = w.join("x.txt").display().to_string();
        let y = w.join("sub/y.txt").display().to_string();
        assert_eq!(
            run(&w, "ba.", Some(".")),
            (false, format!("{x}:2:bar\n{x}:3:baz"))
        );
        assert_eq!(run(&w, "beta$", Some("sub/y.txt")).1, format!("{y}:2:beta"));
        assert_eq!(
            run(&w, "a", None).1,
            format!("{y}:1:alpha\n{y}:2:beta\n{x}:2:bar\n{x}:3:baz")
        );
        assert_eq!(run(&w, "nothing", None), (false, "no matches".into()));
        assert_eq!(
            run(&w, "x", Some("missing")),
            (true, "grep: missing: no such file or directory".into())
        );
        assert!(run(&w, "x", Some("/etc"))
            .1
            .contains("outside the session's working directory"));
    }

    #[test]
    fn skips_symlinks_vcs_dirs_binaries_and_long_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let base = fs::canonicalize(tmp.path()).unwrap();
        let w = base.join("w");
        fs::create_dir_all(w.join(".git")).unwrap();
        fs::create_dir_all(w.join("node_modules")).unwrap();
        fs::create_dir_all(base.join("outdir")).unwrap();
        fs::write(base.join("secret.txt"), "TOPSECRET\n").unwrap();
        fs::write(base.join("outdir/s.txt"), "TOPSECRET\n").unwrap();
        std::os::unix::fs::symlink("../secret.txt", w.join("leak")).unwrap();
        std::os::unix::fs::symlink("../outdir", w.join("leakdir")).unwrap();
        fs::write(w.join(".git/c"), "TOPSECRET\n").unwrap();
        fs::write(w.join("node_modules/m"), "TOPSECRET\n").unwrap();
        fs::write(w.join("bin"), b"TOPSECRET\0\n").unwrap();
        fs::write(
            w.join("long"),
            format!("TOPSECRET{}\nTOPSECRET short\n", "x".repeat(2000)),
        )
        .unwrap();
        fs::write(w.join("latin1"), b"TOPSECRET caf\xe9\n").unwrap();
        let long = w.join("long").display().to_string();
        let latin = w.join("latin1").display().to_string();
        assert_eq!(
            run(&w, "TOPSECRET", None).1,
            format!("{latin}:1:TOPSECRET caf\u{fffd}\n{long}:2:TOPSECRET short")
        );
    }

    #[test]
    fn anchors_match_at_every_line_end() {
        let tmp = tempfile::tempdir().unwrap();
        let w = fs::canonicalize(tmp.path()).unwrap();
        fs::write(w.join("a.txt"), "abc\nxyz\nabc").unwrap();
        fs::write(w.join("b.txt"), "n1\r\n123\nx9y\n").unwrap();
        let a = w.join("a.txt").display().to_string();
        let b = w.join("b.txt").display().to_string();
        assert_eq!(
            run(&w, "c$", Some("a.txt")).1,
            format!("{a}:1:abc\n{a}:3:abc")
        );
        assert_eq!(
            run(&w, r"\d$", Some("b.txt")).1,
            format!("{b}:1:n1\n{b}:2:123")
        );
        assert_eq!(run(&w, r"^\d+$", Some("b.txt")).1, format!("{b}:2:123"));
        // No match spans a line break; like ripgrep, a pattern that needs one is refused.
        let (is_error, text) = run(&w, r"c\nx", Some("a.txt"));
        assert!(
            is_error && text.contains(r#"the literal "\n" is not allowed"#),
            "{text}"
        );
    }

    #[test]
    fn invalid_regex_and_truncation() {
        let tmp = tempfile::tempdir().unwrap();
        let w = fs::canonicalize(tmp.path()).unwrap();
        let (is_error, text) = run(&w, "(", None);
        assert!(
            is_error
                && text.starts_with("grep: invalid regex: ")
                && text.contains("unclosed group")
                && !text.contains("(?:"),
            "{text}"
        );
        fs::write(w.join("many"), "match this line please\n".repeat(10_000)).unwrap();
        let (is_error, text) = run(&w, "match", None);
        assert!(!is_error);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(*lines.last().unwrap(), "[output truncated at 102400 bytes]");
        let used: usize = lines[..lines.len() - 1]
            .iter()
            .map(|l| l.chars().count() + 1)
            .sum();
        assert!(
            used <= 102_400 && used + lines[0].len() + 1 > 102_400,
            "{used}"
        );
    }

    #[test]
    fn outer_deadline_wins() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("a"), "x\n").unwrap();
        let roots = Roots::new(&ToolConfig::new(tmp.path()));
        let input = GrepInput {
            pattern: "x".into(),
            path: None,
        };
        let out = grep(&roots, input, Some(Instant::now()));
        assert!(out.deadline_exceeded && out.joined_text() == "tool 'grep' timed out");
    }
}
