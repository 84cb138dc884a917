//! sandkeep's glob and grep through `Toolset::call` on a large tree.

use crate::emit_samples;
use anyhow::{bail, ensure, Context};
use sandkeep_tools::{ToolConfig, Toolset};
use serde_json::json;
use std::path::Path;
use std::time::Instant;

/// Run each `glob:PAT` / `grep:PAT` job `runs` times with the tree as workdir;
/// write the last output to `OUTDIR/<job index>.txt`.
pub fn run(root: &Path, outdir: &Path, runs: usize, jobs: &[String]) -> anyhow::Result<()> {
    std::fs::create_dir_all(outdir).with_context(|| format!("creating {}", outdir.display()))?;
    let mut tools = Toolset::new(ToolConfig::new(root));
    for (i, job) in jobs.iter().enumerate() {
        let (tool, pattern) = parse_job(job)?;
        let input = json!({"pattern": pattern});
        let mut samples = Vec::with_capacity(runs);
        let mut text = String::new();
        for _ in 0..runs {
            let t = Instant::now();
            let out = tools.call(tool, &input, None);
            samples.push(t.elapsed());
            ensure!(!out.is_error, "{job}: {}", out.joined_text());
            text = out.joined_text();
        }
        std::fs::write(outdir.join(format!("{i}.txt")), &text)?;
        emit_samples(&format!("sandkeep_{i}"), &samples);
    }
    Ok(())
}

fn parse_job(job: &str) -> anyhow::Result<(&str, &str)> {
    match job.split_once(':') {
        Some((tool @ ("glob" | "grep"), pattern)) if !pattern.is_empty() => Ok((tool, pattern)),
        _ => bail!("a job is glob:PATTERN or grep:PATTERN, got {job:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_jobs() {
        assert_eq!(parse_job("grep:a:b").unwrap(), ("grep", "a:b"));
        assert_eq!(parse_job("glob:**/*.rs").unwrap(), ("glob", "**/*.rs"));
        assert!(parse_job("find:x").is_err());
        assert!(parse_job("grep:").is_err());
    }
}
