//! The `grep` tool (§9.8), in process with ripgrep's crates. File selection and
//! limits follow the SDK's built-in fallback: no `.git`/`node_modules`, no
//! symlinks, no binary files (NUL in the first 512 bytes), no raw lines over
//! 2 000 bytes, a 102 400-character output budget and a 50 000-file cap. Results
//! come in sorted path order so they are deterministic; the searching itself is
//! parallel ([`crate::grep_search`]).

use crate::grep_search::{search_tree, Bounds, FileSearcher, Stop, OUTPUT_BUDGET};
use crate::input::GrepInput;
use crate::{fserr, paths::Roots, ToolOutput};
use grep_matcher::LineTerminator;
use grep_regex::RegexMatcherBuilder;
use grep_searcher::SearcherBuilder;
use std::time::{Duration, Instant};

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
    let bounds = Bounds {
        deadline,
        limit: Instant::now() + TIME_LIMIT,
    };
    let searcher = FileSearcher::new(
        matcher,
        SearcherBuilder::new()
            .line_terminator(LineTerminator::crlf())
            .line_number(true)
            .heap_limit(Some(LINE_HEAP_LIMIT))
            .build(),
    );
    let found = if meta.is_file() {
        searcher.search_one(&root, bounds)
    } else if meta.is_dir() {
        search_tree(&root, searcher, bounds)
    } else {
        return ToolOutput::text("no matches");
    };
    match found.stopped {
        Some(Stop::Deadline) => ToolOutput::deadline("grep"),
        Some(Stop::TimeLimit) => ToolOutput::error("grep: timed out after 30s"),
        None if found.hits.is_empty() && !found.truncated => ToolOutput::text("no matches"),
        None => {
            let mut hits = found.hits;
            if found.truncated {
                hits.push(format!("[output truncated at {OUTPUT_BUDGET} bytes]"));
            }
            ToolOutput::text(hits.join("\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ToolConfig;
    use std::fs;
    use std::path::Path;

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
    fn parallel_search_keeps_walk_order_and_the_budget_point() {
        let tmp = tempfile::tempdir().unwrap();
        let w = fs::canonicalize(tmp.path()).unwrap();
        let mut expected = Vec::new();
        let mut budget = 102_400i64;
        // 400 files x 8 hits of ~70 characters: the budget runs out part-way.
        for i in 0..400 {
            let dir = w.join(format!("d{}", i % 7));
            fs::create_dir_all(&dir).unwrap();
            let body: String = (1..=8)
                .map(|n| format!("needle {i} {n} {}\n", "x".repeat(40)))
                .collect();
            fs::write(dir.join(format!("f{i:03}")), body).unwrap();
        }
        let mut files: Vec<_> = (0..400)
            .map(|i| w.join(format!("d{}/f{i:03}", i % 7)))
            .collect();
        files.sort();
        'outer: for file in &files {
            for (n, line) in fs::read_to_string(file).unwrap().lines().enumerate() {
                let hit = format!("{}:{}:{line}", file.display(), n + 1);
                let cost = hit.chars().count() as i64 + 1;
                if budget - cost < 0 {
                    break 'outer;
                }
                budget -= cost;
                expected.push(hit);
            }
        }
        expected.push("[output truncated at 102400 bytes]".into());
        for _ in 0..3 {
            assert_eq!(run(&w, "needle", None), (false, expected.join("\n")));
        }
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
