//! The search engine behind `grep` (§9.8): a sorted walk feeds a small pool of
//! searcher threads, and their per-file hits are merged back in walk order, so
//! the output and the point where the 102 400-character budget runs out are
//! exactly those of a one-file-at-a-time search.
//!
//! The calling thread walks (so the walk overlaps the searching) and then helps
//! search; a failure to start threads (e.g. a session's pids limit) leaves it
//! searching alone. All threads end before [`search_tree`] returns.

use grep_regex::RegexMatcher;
use grep_searcher::{Searcher, Sink, SinkMatch};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::Instant;

pub(crate) const OUTPUT_BUDGET: i64 = 102_400;
const MAX_FILES: usize = 50_000;
const MAX_LINE_BYTES: usize = 2_000;
/// The SDK's binary rule: a NUL among the first 512 bytes.
const BINARY_PROBE_BYTES: usize = 512;
/// Files up to this size are read whole and searched as one slice; larger ones
/// stream through the searcher's own buffer after the head read here.
const WHOLE_READ_BYTES: usize = 1 << 20;
/// Searcher threads besides the caller, whatever the machine's size.
const MAX_EXTRA_THREADS: usize = 7;

/// Why a search ended before visiting everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The caller's outer deadline.
    Deadline,
    /// grep's own 30 s limit.
    TimeLimit,
}

/// What a search found, in walk order.
pub(crate) struct Found {
    pub hits: Vec<String>,
    pub truncated: bool,
    pub stopped: Option<Stop>,
}

/// The time bounds of one call.
#[derive(Clone, Copy)]
pub(crate) struct Bounds {
    pub deadline: Option<Instant>,
    pub limit: Instant,
}

/// One file's hits with their budget cost (characters plus the newline).
type FileHits = Vec<(String, i64)>;

/// Commits per-file hits in walk order against the output budget.
struct Merger {
    next: usize,
    pending: BTreeMap<usize, FileHits>,
    hits: Vec<String>,
    budget: i64,
    truncated: bool,
}

impl Merger {
    fn new() -> Self {
        Self {
            next: 0,
            pending: BTreeMap::new(),
            hits: Vec::new(),
            budget: OUTPUT_BUDGET,
            truncated: false,
        }
    }

    /// Hand in file `index`'s hits; returns `false` once the budget is spent.
    fn deliver(&mut self, index: usize, hits: FileHits) -> bool {
        self.pending.insert(index, hits);
        while !self.truncated {
            let Some(hits) = self.pending.remove(&self.next) else {
                break;
            };
            self.next += 1;
            for (hit, cost) in hits {
                // The first hit that does not fit ends the output, as in the SDK.
                if self.budget - cost < 0 {
                    self.truncated = true;
                    break;
                }
                self.budget -= cost;
                self.hits.push(hit);
            }
        }
        !self.truncated
    }
}

/// State shared by the walker and the searcher threads.
struct Shared {
    bounds: Bounds,
    /// Set once nothing more is needed: budget spent or a bound reached.
    halt: AtomicBool,
    /// 0 = not stopped, 1 = deadline, 2 = time limit.
    stop: AtomicU8,
    merger: Mutex<Merger>,
}

impl Shared {
    /// Whether to stop now; records a reached bound.
    fn should_stop(&self) -> bool {
        if self.halt.load(Ordering::Relaxed) {
            return true;
        }
        let now = Instant::now();
        let reason = if self.bounds.deadline.is_some_and(|d| now >= d) {
            1
        } else if now >= self.bounds.limit {
            2
        } else {
            return false;
        };
        // The first reason recorded wins.
        let _ = self
            .stop
            .compare_exchange(0, reason, Ordering::Relaxed, Ordering::Relaxed);
        self.halt.store(true, Ordering::Relaxed);
        true
    }

    fn deliver(&self, index: usize, hits: FileHits) {
        let mut merger = self.merger.lock().unwrap_or_else(|e| e.into_inner());
        if !merger.deliver(index, hits) {
            self.halt.store(true, Ordering::Relaxed);
        }
    }

    fn stopped(&self) -> Option<Stop> {
        match self.stop.load(Ordering::Relaxed) {
            1 => Some(Stop::Deadline),
            2 => Some(Stop::TimeLimit),
            _ => None,
        }
    }
}

/// One thread's reusable search state: no allocation per file beyond the hits.
pub(crate) struct FileSearcher {
    matcher: RegexMatcher,
    searcher: Searcher,
    buf: Vec<u8>,
}

impl FileSearcher {
    pub fn new(matcher: RegexMatcher, searcher: Searcher) -> Self {
        Self {
            matcher,
            searcher,
            buf: Vec::new(),
        }
    }

    /// Hits of one file, skipping unreadable and binary files. A read error
    /// (or a line over the heap limit) part-way keeps the hits before it.
    fn search(&mut self, path: &Path, should_stop: &dyn Fn() -> bool) -> FileHits {
        let mut hits = FileHits::new();
        let Ok(file) = File::open(path) else {
            return hits;
        };
        self.buf.clear();
        // One read serves the binary probe and (usually) the whole search.
        if (&file)
            .take(WHOLE_READ_BYTES as u64)
            .read_to_end(&mut self.buf)
            .is_err()
        {
            return hits;
        }
        let probe = &self.buf[..self.buf.len().min(BINARY_PROBE_BYTES)];
        if probe.contains(&0) {
            return hits;
        }
        let display = path.to_string_lossy();
        let mut sink = HitSink {
            hits: &mut hits,
            cost: 0,
            path: &display,
            should_stop,
        };
        let _ = if self.buf.len() < WHOLE_READ_BYTES {
            self.searcher
                .search_slice(&self.matcher, &self.buf, &mut sink)
        } else {
            let rest = io::Cursor::new(&self.buf[..]).chain(&file);
            self.searcher.search_reader(&self.matcher, rest, &mut sink)
        };
        hits
    }

    /// Search one file on the calling thread.
    pub fn search_one(mut self, path: &Path, bounds: Bounds) -> Found {
        let shared = Shared::new(bounds);
        let hits = self.search(path, &|| shared.should_stop());
        shared.deliver(0, hits);
        shared.finish()
    }
}

impl Shared {
    fn new(bounds: Bounds) -> Self {
        Self {
            bounds,
            halt: AtomicBool::new(false),
            stop: AtomicU8::new(0),
            merger: Mutex::new(Merger::new()),
        }
    }

    fn finish(self) -> Found {
        let stopped = self.stopped();
        let merger = self.merger.into_inner().unwrap_or_else(|e| e.into_inner());
        Found {
            hits: merger.hits,
            truncated: merger.truncated,
            stopped,
        }
    }
}

struct HitSink<'a> {
    hits: &'a mut FileHits,
    /// Cost of this file's hits so far.
    cost: i64,
    path: &'a str,
    should_stop: &'a dyn Fn() -> bool,
}

impl Sink for HitSink<'_> {
    type Error = io::Error;

    fn matched(&mut self, _: &Searcher, hit: &SinkMatch<'_>) -> Result<bool, io::Error> {
        let raw = hit.bytes();
        if raw.len() > MAX_LINE_BYTES {
            return Ok(!(self.should_stop)());
        }
        let line = String::from_utf8_lossy(raw);
        let line = line.trim_end_matches(['\r', '\n']);
        let number = hit.line_number().unwrap_or(0);
        let text = format!("{}:{number}:{line}", self.path);
        let cost = text.chars().count() as i64 + 1;
        self.hits.push((text, cost));
        self.cost += cost;
        // Past the whole budget nothing more of this file can be shown.
        Ok(self.cost <= OUTPUT_BUDGET && !(self.should_stop)())
    }
}

/// Search every regular file under `root` (sorted walk, no symlinks, no
/// `.git`/`node_modules`, at most 50 000 files).
pub(crate) fn search_tree(root: &Path, prototype: FileSearcher, bounds: Bounds) -> Found {
    let shared = Shared::new(bounds);
    let (paths_tx, paths_rx) = mpsc::channel::<(usize, PathBuf)>();
    let paths_rx = Mutex::new(paths_rx);
    let extra = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .saturating_sub(1)
        .min(MAX_EXTRA_THREADS);
    std::thread::scope(|scope| {
        for _ in 0..extra {
            let mut searcher =
                FileSearcher::new(prototype.matcher.clone(), prototype.searcher.clone());
            let (shared, paths_rx) = (&shared, &paths_rx);
            let started = std::thread::Builder::new()
                .name("grep".into())
                .spawn_scoped(scope, move || searcher.drain(paths_rx, shared));
            if started.is_err() {
                break; // fewer helpers; the caller still searches everything
            }
        }
        walk(root, &shared, &paths_tx);
        drop(paths_tx);
        let mut searcher = prototype;
        searcher.drain(&paths_rx, &shared);
    });
    shared.finish()
}

impl FileSearcher {
    /// Search queued files until the queue is closed and empty, or a halt.
    fn drain(&mut self, paths: &Mutex<mpsc::Receiver<(usize, PathBuf)>>, shared: &Shared) {
        loop {
            let next = paths.lock().unwrap_or_else(|e| e.into_inner()).recv();
            let Ok((index, path)) = next else {
                return;
            };
            if shared.should_stop() {
                return;
            }
            let hits = self.search(&path, &|| shared.should_stop());
            shared.deliver(index, hits);
        }
    }
}

/// Queue the files to search, numbered in sorted walk order.
fn walk(root: &Path, shared: &Shared, paths: &mpsc::Sender<(usize, PathBuf)>) {
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
    let mut queued = 0;
    // Symlinks report their own type here (links are not followed), so
    // symlinked files and directories are both skipped.
    for entry in walker.filter_map(Result::ok) {
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        if queued == MAX_FILES || shared.should_stop() {
            return;
        }
        if paths.send((queued, entry.into_path())).is_err() {
            return;
        }
        queued += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(lines: &[&str]) -> FileHits {
        lines
            .iter()
            .map(|l| (l.to_string(), l.chars().count() as i64 + 1))
            .collect()
    }

    #[test]
    fn merger_commits_in_index_order_whatever_the_arrival_order() {
        let mut merger = Merger::new();
        assert!(merger.deliver(2, hits(&["c"])));
        assert!(merger.deliver(1, hits(&["b1", "b2"])));
        assert!(merger.hits.is_empty());
        assert!(merger.deliver(0, hits(&["a"])));
        assert_eq!(merger.hits, ["a", "b1", "b2", "c"]);
    }

    #[test]
    fn merger_stops_at_the_first_hit_over_budget() {
        let mut merger = Merger::new();
        merger.budget = 5;
        // "ab" costs 3, "cd" would make 6: truncated there, "e" never shown.
        assert!(!merger.deliver(0, hits(&["ab", "cd", "e"])));
        assert!(merger.truncated);
        assert_eq!(merger.hits, ["ab"]);
        assert!(!merger.deliver(1, hits(&["f"])));
        assert_eq!(merger.hits, ["ab"]);
    }
}
