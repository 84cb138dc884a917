//! Toolset-level tests: dispatch, validation and the `read` cases of §12.5
//! (items 98–117 and 130); the other tools have their own tests beside them.

use super::*;
use base64::Engine as _;
use serde_json::json;
use std::path::Path;

fn tools_with(dir: &Path, edit: impl FnOnce(&mut ToolConfig)) -> Toolset {
    let mut config = ToolConfig::new(dir);
    edit(&mut config);
    Toolset::new(config)
}

fn call(tools: &mut Toolset, name: &str, input: Value) -> (bool, String) {
    let out = tools.call(name, &input, None);
    (out.is_error, out.joined_text())
}

#[test]
fn dispatch_and_validation() {
    let tmp = tempfile::tempdir().unwrap();
    let mut t = Toolset::new(ToolConfig::new(tmp.path()));
    assert!(TOOL_NAMES.iter().all(|n| Toolset::owns(n)) && !Toolset::owns("web_fetch"));
    assert_eq!(
        call(&mut t, "read", json!({})),
        (
            true,
            "ValueError('Invalid arguments for function read')".into()
        )
    );
    assert_eq!(
        call(&mut t, "grep", json!({"pattern": "x", "glob": "*"})),
        (
            true,
            "ValueError('Invalid arguments for function grep')".into()
        )
    );
    assert!(call(&mut t, "nope", json!({}))
        .1
        .starts_with("unknown tool 'nope'"));
}

#[test]
fn write_read_edit_roundtrip() {
    let tmp = tempfile::tempdir().unwrap();
    let mut t = Toolset::new(ToolConfig::new(tmp.path()));
    assert_eq!(
        call(
            &mut t,
            "write",
            json!({"file_path": "f.txt", "content": "hello world"})
        ),
        (false, "wrote 11 bytes to f.txt".into())
    );
    assert_eq!(
        call(&mut t, "read", json!({"file_path": "f.txt"})),
        (false, "hello world".into())
    );
    assert_eq!(
        call(
            &mut t,
            "edit",
            json!({"file_path": "f.txt", "old_string": "world", "new_string": "there"})
        ),
        (false, "edited f.txt (1 replacement(s))".into())
    );
    assert_eq!(
        call(&mut t, "read", json!({"file_path": "./f.txt"})).1,
        "hello there"
    );
    std::fs::write(tmp.path().join("empty"), "").unwrap();
    assert_eq!(
        call(&mut t, "read", json!({"file_path": "empty"})),
        (false, "(no output)".into())
    );
}

#[test]
fn read_rejects_escapes_loops_and_non_regular_files() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    std::fs::create_dir_all(work.join("sub")).unwrap();
    std::fs::create_dir_all(tmp.path().join("outside")).unwrap();
    std::fs::write(tmp.path().join("outside/secret.txt"), "s").unwrap();
    std::os::unix::fs::symlink(tmp.path().join("outside"), work.join("escape")).unwrap();
    std::os::unix::fs::symlink("loop2", work.join("loop1")).unwrap();
    std::os::unix::fs::symlink("loop1", work.join("loop2")).unwrap();
    nix::unistd::mkfifo(&work.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    std::fs::write(work.join("f.txt"), "x").unwrap();
    let mut t = tools_with(&work, |c| c.max_file_bytes = None);
    let read = |t: &mut Toolset, p: &str| call(t, "read", json!({"file_path": p})).1;
    assert_eq!(
        read(&mut t, "escape/secret.txt"),
        "read: path 'escape/secret.txt' is outside the session's working directory"
    );
    assert_eq!(
        read(&mut t, "../etc/passwd"),
        "read: path '../etc/passwd' is outside the session's working directory"
    );
    assert_eq!(
        read(&mut t, "loop1"),
        "read: path 'loop1': too many levels of symbolic links"
    );
    assert_eq!(read(&mut t, "sub"), "read: sub: not a regular file");
    assert_eq!(read(&mut t, "fifo"), "read: fifo: not a regular file");
    assert_eq!(read(&mut t, "f.txt/x"), "read: f.txt/x: not a directory");
    assert_eq!(
        read(&mut t, "missing.txt"),
        "read: missing.txt: no such file or directory"
    );
    assert_eq!(
        call(
            &mut t,
            "edit",
            json!({"file_path": "sub", "old_string": "a", "new_string": "b"})
        )
        .1,
        "edit: sub: not a regular file"
    );
}

#[test]
fn view_ranges() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("f.txt"), "a\nb\nc\nd\n").unwrap();
    let mut t = Toolset::new(ToolConfig::new(tmp.path()));
    let mut read = |range: Value| {
        call(
            &mut t,
            "read",
            json!({"file_path": "f.txt", "view_range": range}),
        )
    };
    assert_eq!(read(json!([2, 3])), (false, "b\nc".into()));
    assert_eq!(read(json!([2, -1])), (false, "b\nc\nd\n".into()));
    assert_eq!(read(json!([0, 0])), (false, "a\nb\nc\nd\n".into()));
    assert_eq!(read(json!([3, 2])), (false, "(no output)".into()));
    assert_eq!(read(json!([])), (false, "a\nb\nc\nd\n".into()));
    assert_eq!(read(json!(null)), (false, "a\nb\nc\nd\n".into()));
    assert_eq!(
        read(json!([2])),
        (
            true,
            "read: view_range must be [start_line, end_line]".into()
        )
    );
    assert_eq!(
        read(json!([1, 2, 3])),
        (
            true,
            "read: view_range must be [start_line, end_line]".into()
        )
    );
}

#[test]
fn text_caps_and_streaming_ranges() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let big = "line\n".repeat(257 * 1024 / 5 + 1);
    std::fs::write(dir.join("big.txt"), &big).unwrap();
    std::fs::write(dir.join("one.txt"), "x".repeat(300_000)).unwrap();
    let size = big.len();
    let mut t = Toolset::new(ToolConfig::new(dir));
    assert_eq!(
        call(&mut t, "read", json!({"file_path": "big.txt"})).1,
        format!("read: big.txt is {size} bytes, exceeds 262144-byte limit. Use the view_range parameter to read specific line ranges, e.g. view_range: [1, 500].")
    );
    assert_eq!(
        call(&mut t, "edit", json!({"file_path": "big.txt", "old_string": "x", "new_string": "y"})).1,
        format!("edit: big.txt is {size} bytes, exceeds 262144-byte limit. The edit tool loads the whole file and cannot modify a file this large.")
    );
    assert_eq!(
        call(
            &mut t,
            "read",
            json!({"file_path": "big.txt", "view_range": [2, 3]})
        ),
        (false, "line\nline".into())
    );
    assert_eq!(
        call(&mut t, "read", json!({"file_path": "big.txt", "view_range": [1, 0]})).1,
        "read: view_range [1, 0] of big.txt exceeds 262144-byte limit. Narrow the view_range to read a smaller portion."
    );
    assert_eq!(
        call(&mut t, "read", json!({"file_path": "one.txt", "view_range": [1, 1]})).1,
        "read: line 1 of one.txt alone exceeds 262144-byte limit. The read tool cannot return part of a line, so view_range cannot narrow this further."
    );
    let mut larger = tools_with(dir, |c| c.max_file_bytes = Some(512 * 1024));
    assert_eq!(
        call(&mut larger, "read", json!({"file_path": "big.txt"})),
        (false, big.clone())
    );
    let mut uncapped = tools_with(dir, |c| c.max_file_bytes = None);
    assert!(!call(&mut uncapped, "edit", json!({"file_path": "big.txt", "old_string": "line\n", "new_string": "", "replace_all": true})).0);
    std::fs::write(dir.join("small.txt"), "a".repeat(2000)).unwrap();
    let mut tiny = tools_with(dir, |c| c.max_file_bytes = Some(1024));
    assert_eq!(
        call(&mut tiny, "read", json!({"file_path": "small.txt"})).1,
        "read: small.txt is 2000 bytes, exceeds 1024-byte limit. Use the view_range parameter to read specific line ranges, e.g. view_range: [1, 500]."
    );
}

#[test]
fn text_is_strict_utf8_verbatim() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("blob.bin"), [0xff, 0xfe, 0x00, 0x01]).unwrap();
    std::fs::write(tmp.path().join("crlf.txt"), "\u{feff}café — naïve\r\nx\r\n").unwrap();
    let mut t = Toolset::new(ToolConfig::new(tmp.path()));
    assert_eq!(
        call(&mut t, "read", json!({"file_path": "blob.bin"})),
        (true, "read: blob.bin: not valid UTF-8 text (binary files are only supported for image/PDF extensions)".into())
    );
    assert_eq!(
        call(&mut t, "read", json!({"file_path": "crlf.txt"})).1,
        "\u{feff}café — naïve\r\nx\r\n"
    );
    assert_eq!(
        call(
            &mut t,
            "read",
            json!({"file_path": "crlf.txt", "view_range": [2, 2]})
        )
        .1,
        "x\r"
    );
}

fn block_of(t: &mut Toolset, file_path: &str) -> (bool, Value) {
    let out = t.call("read", &json!({"file_path": file_path}), None);
    (out.is_error, out.content[0].clone())
}

#[test]
fn images_and_pdfs_become_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    for name in [
        "slide.jpg",
        "slide.JPEG",
        "chart.png",
        "doc.pdf",
        "anim.gif",
        "pic.webp",
    ] {
        std::fs::write(tmp.path().join(name), &bytes).unwrap();
    }
    let mut t = Toolset::new(ToolConfig::new(tmp.path()));
    for (name, kind, media) in [
        ("slide.jpg", "image", "image/jpeg"),
        ("slide.JPEG", "image", "image/jpeg"),
        ("chart.png", "image", "image/png"),
        ("doc.pdf", "document", "application/pdf"),
        ("anim.gif", "image", "image/gif"),
        ("pic.webp", "image", "image/webp"),
    ] {
        let (is_error, block) = block_of(&mut t, name);
        assert!(!is_error);
        assert_eq!(
            (
                block["type"].as_str(),
                block["source"]["media_type"].as_str()
            ),
            (Some(kind), Some(media))
        );
        assert_eq!(block["source"]["type"], "base64");
        let data = base64::engine::general_purpose::STANDARD
            .decode(block["source"]["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(data, bytes);
    }
    assert_eq!(
        call(
            &mut t,
            "read",
            json!({"file_path": "slide.jpg", "view_range": [1, 2]})
        )
        .1,
        "read: view_range is not supported for image/PDF files"
    );
}

#[test]
fn media_caps() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("big.png"), vec![0u8; 300 * 1024]).unwrap();
    std::fs::write(dir.join("huge.png"), vec![0u8; 4_000_000]).unwrap();
    std::fs::write(dir.join("small.png"), vec![0u8; 2048]).unwrap();
    std::fs::write(dir.join("small.pdf"), vec![0u8; 2048]).unwrap();
    let mut default = Toolset::new(ToolConfig::new(dir));
    assert!(
        !block_of(&mut default, "big.png").0,
        "the text cap does not apply to images"
    );
    assert_eq!(
        call(&mut default, "read", json!({"file_path": "huge.png"})).1,
        "read: huge.png is 4000000 bytes, exceeds 3932160-byte limit for image/PDF files."
    );
    let mut explicit = Toolset::new(ToolConfig::new(dir).with_explicit_max_file_bytes(Some(1024)));
    assert_eq!(
        call(&mut explicit, "read", json!({"file_path": "small.png"})).1,
        "read: small.png is 2048 bytes, exceeds 1024-byte limit for image/PDF files."
    );
    let mut media = tools_with(dir, |c| {
        c.max_image_base64_bytes = Some(1024);
        c.max_pdf_bytes = Some(1024);
    });
    assert_eq!(
        call(&mut media, "read", json!({"file_path": "small.png"})).1,
        "read: small.png is 2048 bytes, exceeds 768-byte limit for image/PDF files."
    );
    assert!(call(&mut media, "read", json!({"file_path": "small.pdf"}))
        .1
        .contains("exceeds 1024-byte limit"));
    let mut relaxed = tools_with(dir, |c| {
        c.max_image_base64_bytes = Some(1 << 20);
        c.max_pdf_bytes = None;
    });
    assert!(!block_of(&mut relaxed, "small.png").0 && !block_of(&mut relaxed, "small.pdf").0);
}

#[test]
fn non_utf8_names_are_rendered_lossily() {
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let w = std::fs::canonicalize(tmp.path()).unwrap();
    let name = std::ffi::OsStr::from_bytes(b"bad\xffname.txt");
    std::fs::write(w.join(name), "needle\n").unwrap();
    let mut t = Toolset::new(ToolConfig::new(&w));
    let expected = format!("{}/bad\u{fffd}name.txt", w.display());
    assert_eq!(
        call(&mut t, "glob", json!({"pattern": "*.txt"})),
        (false, expected.clone())
    );
    assert_eq!(
        call(&mut t, "grep", json!({"pattern": "needle"})),
        (false, format!("{expected}:1:needle"))
    );
    // A symlink whose target is not UTF-8 resolves without panicking.
    std::os::unix::fs::symlink(name, w.join("link.txt")).unwrap();
    assert_eq!(
        call(&mut t, "read", json!({"file_path": "link.txt"})),
        (false, "needle\n".into())
    );
}
