//! Resident memory from `/proc/<pid>/smaps_rollup` (kernel ≥ 4.14).

use anyhow::Context;

/// Rss and Pss of one process, KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Footprint {
    pub rss_kib: u64,
    pub pss_kib: u64,
}

impl std::ops::Add for Footprint {
    type Output = Footprint;
    fn add(self, o: Footprint) -> Footprint {
        Footprint {
            rss_kib: self.rss_kib + o.rss_kib,
            pss_kib: self.pss_kib + o.pss_kib,
        }
    }
}

/// Footprint of `pid` ("self" for this process).
pub fn footprint(pid: &str) -> anyhow::Result<Footprint> {
    let path = format!("/proc/{pid}/smaps_rollup");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!("reading {path} (needs Linux ≥ 4.14 and the same user or root)")
    })?;
    Ok(parse_rollup(&text))
}

fn parse_rollup(text: &str) -> Footprint {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    Footprint {
        rss_kib: field("Rss:"),
        pss_kib: field("Pss:"),
    }
}

/// `pid` and all its descendants (via `/proc/<pid>/task/*/children`).
pub fn process_tree(pid: i32) -> Vec<i32> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let tasks = format!("/proc/{}/task", out[i]);
        for task in std::fs::read_dir(&tasks).into_iter().flatten().flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            out.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<i32>().ok()),
            );
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rss_and_pss() {
        let text = "55d0-7ff [rollup]\nRss:                2048 kB\nPss:                1024 kB\nPss_Anon: 12 kB\n";
        assert_eq!(
            parse_rollup(text),
            Footprint {
                rss_kib: 2048,
                pss_kib: 1024
            }
        );
    }

    #[test]
    fn own_footprint_is_nonzero() {
        assert!(footprint("self").unwrap().rss_kib > 0);
    }

    #[test]
    fn own_tree_contains_self() {
        let me = std::process::id() as i32;
        assert_eq!(process_tree(me)[0], me);
    }
}
