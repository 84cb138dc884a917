//! The `edit` tool (§9.6): exact string replacement in a UTF-8 text file.

use crate::input::EditInput;
use crate::{fserr, paths::Roots, write::replace_file, ToolConfig, ToolOutput};

pub fn edit(roots: &Roots, config: &ToolConfig, input: EditInput) -> ToolOutput {
    match edit_inner(roots, config, &input) {
        Ok(text) => ToolOutput::text(text),
        Err(text) => ToolOutput::error(text),
    }
}

fn edit_inner(roots: &Roots, config: &ToolConfig, input: &EditInput) -> Result<String, String> {
    let file_path = input.file_path.as_str();
    let path = roots.resolve("edit", file_path)?;
    roots.check_writable("edit", file_path, &path)?;
    let fs_err = |e: std::io::Error| fserr::message("edit", file_path, &e);
    let meta = std::fs::metadata(&path).map_err(fs_err)?;
    if !meta.is_file() {
        return Err(format!("edit: {file_path}: not a regular file"));
    }
    if let Some(cap) = config.max_file_bytes.filter(|&cap| meta.len() > cap) {
        return Err(format!(
            "edit: {file_path} is {} bytes, exceeds {cap}-byte limit. The edit tool loads the whole file and cannot modify a file this large.",
            meta.len()
        ));
    }
    let text = String::from_utf8(std::fs::read(&path).map_err(fs_err)?).map_err(|_| {
        format!("edit: {file_path}: not valid UTF-8 text (cannot edit binary files)")
    })?;
    // `matches("")` yields every char boundary: len(text)+1, as Python counts.
    let count = text.matches(input.old_string.as_str()).count();
    let replace_all = input.replace_all.unwrap_or(false);
    if count == 0 {
        return Err(format!("edit: old_string not found in {file_path}"));
    }
    if count > 1 && !replace_all {
        return Err(format!(
            "edit: old_string appears {count} times in {file_path} (must be unique)"
        ));
    }
    let (new_text, replaced) = if replace_all {
        (text.replace(&input.old_string, &input.new_string), count)
    } else {
        (text.replacen(&input.old_string, &input.new_string, 1), 1)
    };
    replace_file(&path, new_text.as_bytes()).map_err(fs_err)?;
    Ok(format!("edited {file_path} ({replaced} replacement(s))"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::Path;

    fn run(dir: &Path, config: Option<ToolConfig>, json: serde_json::Value) -> (bool, String) {
        let config = config.unwrap_or_else(|| ToolConfig::new(dir));
        let input = crate::input::parse("edit", &json).unwrap();
        let out = edit(&Roots::new(&config), &config, input);
        (out.is_error, out.joined_text())
    }

    #[test]
    fn uniqueness_and_replace_all() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("f.txt");
        std::fs::write(&f, "ab ab").unwrap();
        assert_eq!(
            run(
                tmp.path(),
                None,
                json!({"file_path": "f.txt", "old_string": "ab", "new_string": "x"})
            ),
            (
                true,
                "edit: old_string appears 2 times in f.txt (must be unique)".into()
            )
        );
        assert_eq!(
            run(
                tmp.path(),
                None,
                json!({"file_path": "f.txt", "old_string": "nope", "new_string": "x"})
            ),
            (true, "edit: old_string not found in f.txt".into())
        );
        assert_eq!(
            run(
                tmp.path(),
                None,
                json!({"file_path": "f.txt", "old_string": "ab", "new_string": "x", "replace_all": "true"})
            ),
            (false, "edited f.txt (2 replacement(s))".into())
        );
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "x x");
        // Empty old_string: len+1 positions; unique only in an empty file.
        assert_eq!(
            run(
                tmp.path(),
                None,
                json!({"file_path": "f.txt", "old_string": "", "new_string": "-"})
            )
            .1,
            "edit: old_string appears 4 times in f.txt (must be unique)"
        );
        assert_eq!(
            run(tmp.path(), None, json!({"file_path": "f.txt", "old_string": "", "new_string": "-", "replace_all": true})).1,
            "edited f.txt (4 replacement(s))"
        );
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "-x- -x-");
        std::fs::write(tmp.path().join("empty"), "").unwrap();
        assert_eq!(
            run(
                tmp.path(),
                None,
                json!({"file_path": "empty", "old_string": "", "new_string": "new"})
            )
            .1,
            "edited empty (1 replacement(s))"
        );
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("empty")).unwrap(),
            "new"
        );
    }

    #[test]
    fn rejects_directories_binaries_and_oversized_files() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("sub")).unwrap();
        std::fs::write(tmp.path().join("blob.bin"), [0xff, 0xfe, 0x00, 0x01]).unwrap();
        std::fs::write(tmp.path().join("big.txt"), "a".repeat(2000)).unwrap();
        let j = |p: &str| json!({"file_path": p, "old_string": "a", "new_string": "b"});
        let mut uncapped = ToolConfig::new(tmp.path());
        uncapped.max_file_bytes = None;
        assert_eq!(
            run(tmp.path(), Some(uncapped.clone()), j("sub")).1,
            "edit: sub: not a regular file"
        );
        assert_eq!(
            run(tmp.path(), None, j("blob.bin")).1,
            "edit: blob.bin: not valid UTF-8 text (cannot edit binary files)"
        );
        assert_eq!(
            run(tmp.path(), None, j("missing")).1,
            "edit: missing: no such file or directory"
        );
        let mut small = ToolConfig::new(tmp.path());
        small.max_file_bytes = Some(1024);
        assert_eq!(
            run(tmp.path(), Some(small), j("big.txt")).1,
            "edit: big.txt is 2000 bytes, exceeds 1024-byte limit. The edit tool loads the whole file and cannot modify a file this large."
        );
        assert_eq!(run(tmp.path(), Some(uncapped), json!({"file_path": "big.txt", "old_string": "a", "new_string": "b", "replace_all": true})).1, "edited big.txt (2000 replacement(s))");
    }

    #[test]
    fn utf8_crlf_and_bom_survive() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("c.txt");
        std::fs::write(&f, "\u{feff}café — naïve\r\n").unwrap();
        let out = run(
            tmp.path(),
            None,
            json!({"file_path": "c.txt", "old_string": "café", "new_string": "thé"}),
        );
        assert!(!out.0, "{out:?}");
        assert_eq!(
            std::fs::read(&f).unwrap(),
            "\u{feff}thé — naïve\r\n".as_bytes()
        );
    }
}
