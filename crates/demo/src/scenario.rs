//! The demo's scripted agent, built from the copied workspace so that every
//! expectation is computed from the real files (not hard-coded).

use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Manifests the demo looks for, in order of preference.
const MANIFESTS: [&str; 5] = [
    "Cargo.toml",
    "package.json",
    "pyproject.toml",
    "go.mod",
    "README.md",
];
/// Source extensions, in order of preference.
const SOURCE_EXTS: [&str; 8] = ["rs", "py", "go", "ts", "js", "c", "java", "md"];
/// A 1×1 PNG, written by the bash step and read back as an image block.
const PNG_BASE64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

/// What the scenario learned about the workspace (also shown in the summary).
pub struct Survey {
    pub manifest: String,
    pub source_ext: String,
    pub read_file: String,
    pub symbol: String,
    pub source_lines: u64,
}

pub fn survey(workspace: &Path) -> anyhow::Result<Survey> {
    // The demo writes into notes/; files already there would change under it.
    let files: Vec<PathBuf> = list_files(workspace)
        .into_iter()
        .filter(|f| !f.starts_with("notes"))
        .collect();
    let has = |name: &str| {
        files
            .iter()
            .any(|f| f.file_name().is_some_and(|n| n == name))
    };
    let manifest = MANIFESTS
        .iter()
        .find(|m| has(m))
        .map(|m| m.to_string())
        // No manifest: glob for a file that is there (the first in sorted order).
        .or_else(|| {
            let mut names: Vec<String> = files
                .iter()
                .filter_map(|f| f.file_name()?.to_str().map(str::to_string))
                .collect();
            names.sort();
            names.into_iter().next()
        })
        .ok_or_else(|| anyhow::anyhow!("the source directory has no files to demo on"))?;
    let count_ext = |ext: &str| {
        files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == ext))
            .count()
    };
    let source_ext = SOURCE_EXTS
        .iter()
        .copied()
        .max_by_key(|ext| {
            (
                count_ext(ext),
                std::cmp::Reverse(SOURCE_EXTS.iter().position(|e| e == ext)),
            )
        })
        .filter(|ext| count_ext(ext) > 0)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the source directory has no source files to demo on (looked for .{})",
                SOURCE_EXTS.join(", .")
            )
        })?
        .to_string();
    let mut sources: Vec<&PathBuf> = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == source_ext.as_str()))
        .collect();
    sources.sort();
    let source_lines = sources
        .iter()
        .map(|f| {
            std::fs::read(workspace.join(f))
                .map(|b| b.iter().filter(|&&c| c == b'\n').count() as u64)
                .unwrap_or(0)
        })
        .sum();
    // Prefer a file with a recognisable identifier in its first lines.
    let (read_file, symbol) = sources
        .iter()
        .find_map(|f| {
            let text = std::fs::read_to_string(workspace.join(f)).ok()?;
            let head: String = text.lines().take(20).collect::<Vec<_>>().join("\n");
            pick_symbol(&head).map(|s| (f.to_string_lossy().into_owned(), s))
        })
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no .{source_ext} file has a word of 3+ letters in its first 20 lines to grep \
                 for; pick another --source"
            )
        })?;
    Ok(Survey {
        manifest,
        source_ext,
        read_file,
        symbol,
        source_lines,
    })
}

/// An identifier that is not a common keyword: the first of 6+ characters, else
/// the first of 4+, else of 3+ (longer ones make a more telling grep).
fn pick_symbol(text: &str) -> Option<String> {
    const COMMON: [&str; 12] = [
        "return", "import", "struct", "public", "static", "module", "string", "should", "function",
        "default", "crate", "extern",
    ];
    let words: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.chars().next().is_some_and(|c| c.is_ascii_alphabetic()))
        .filter(|w| !COMMON.contains(w))
        .collect();
    [6, 4, 3]
        .iter()
        .find_map(|&min| words.iter().find(|w| w.len() >= min))
        .map(|w| w.to_string())
}

fn list_files(root: &Path) -> Vec<PathBuf> {
    ignore::WalkBuilder::new(root)
        .hidden(false)
        .git_ignore(false)
        .build()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_some_and(|t| t.is_file()))
        .filter_map(|e| e.path().strip_prefix(root).ok().map(Path::to_path_buf))
        .collect()
}

/// The first `n` lines of a file as `read` with `view_range [1, n]` returns them.
fn head_lines(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split('\n').take(n).collect::<Vec<_>>().join("\n")
}

fn call(name: &str, input: Value, expect: Value) -> Value {
    json!([{ "name": name, "input": input, "expect": expect }])
}

/// The scenario JSON for the emulator's scripted agent: one turn, one call per step.
pub fn build(workspace: &Path, s: &Survey) -> Value {
    let note = "# sandkeep demo\n\nstatus: draft\n";
    let count_cmd = format!(
        "find . -name '*.{}' -not -path './skills/*' -not -path './notes/*' -print0 | xargs -0 cat | wc -l",
        s.source_ext
    );
    let steps = vec![
        call(
            "glob",
            json!({"pattern": format!("**/{}", s.manifest)}),
            json!({"is_error": false, "contains": [s.manifest]}),
        ),
        call(
            "grep",
            json!({"pattern": s.symbol}),
            json!({"is_error": false, "contains": [s.symbol]}),
        ),
        call(
            "read",
            json!({"file_path": s.read_file, "view_range": [1, 20]}),
            json!({"is_error": false, "equals": head_lines(&workspace.join(&s.read_file), 20)}),
        ),
        call(
            "write",
            json!({"file_path": "notes/SANDKEEP_DEMO.md", "content": note}),
            json!({"is_error": false, "equals": format!("wrote {} bytes to notes/SANDKEEP_DEMO.md", note.len())}),
        ),
        call(
            "edit",
            json!({"file_path": "notes/SANDKEEP_DEMO.md", "old_string": "draft", "new_string": "final"}),
            json!({"is_error": false, "equals": "edited notes/SANDKEEP_DEMO.md (1 replacement(s))"}),
        ),
        call(
            "bash",
            json!({"command": count_cmd}),
            json!({"is_error": false, "equals": s.source_lines.to_string()}),
        ),
        call(
            "bash",
            json!({"command": format!("echo '{PNG_BASE64}' | base64 -d > notes/pixel.png && grep -c final notes/SANDKEEP_DEMO.md")}),
            json!({"is_error": false, "equals": "1"}),
        ),
        call(
            "read",
            json!({"file_path": "notes/pixel.png"}),
            json!({"is_error": false, "block_types": ["image"]}),
        ),
    ];
    json!({
        "turns": [{
            "steps": steps,
            "message": format!("Surveyed the project: {} lines of .{} source.", s.source_lines, s.source_ext),
        }],
        "terminate_after": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survey_computes_expectations_from_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(
            dir.path().join("src/main.rs"),
            "fn main() {\n    println!(\"hi\");\n}\n",
        )
        .unwrap();
        let s = survey(dir.path()).unwrap();
        assert_eq!(s.manifest, "Cargo.toml");
        assert_eq!(s.source_ext, "rs");
        assert_eq!(s.source_lines, 3);
        assert_eq!(s.symbol, "println");
        let scenario = build(dir.path(), &s);
        assert_eq!(scenario["turns"][0]["steps"].as_array().unwrap().len(), 8);
    }

    #[test]
    fn docs_only_sources_and_short_words_work() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("README.md"), "# Tiny\n\nsee docs\n").unwrap();
        let s = survey(dir.path()).unwrap();
        assert_eq!((s.source_ext.as_str(), s.source_lines), ("md", 3));
        assert_eq!(s.symbol, "Tiny");
        let cmd = build(dir.path(), &s)["turns"][0]["steps"][5][0]["input"]["command"].clone();
        assert!(
            cmd.as_str().unwrap().contains("-not -path './notes/*'"),
            "{cmd}"
        );
    }

    #[test]
    fn empty_source_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(survey(dir.path()).is_err());
    }
}
