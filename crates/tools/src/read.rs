//! The `read` tool (§9.4): whole text files, line ranges (streamed for files over
//! the cap), and images/PDFs as base64 content blocks.

use crate::input::ReadInput;
use crate::{fserr, paths::Roots, ToolConfig, ToolOutput};
use base64::Engine as _;
use serde_json::json;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Bytes read per step when streaming a range out of a file above the cap.
const STREAM_CHUNK: usize = 65_536;

/// Line selection `[start, end)` over the `\n`-separated elements of a file.
#[derive(Clone, Copy)]
struct LineRange {
    start: u64,
    end: Option<u64>,
}

impl LineRange {
    fn from_view_range(start_line: i64, end_line: i64) -> Self {
        Self {
            start: start_line.saturating_sub(1).max(0) as u64,
            end: (end_line > 0).then_some(end_line as u64),
        }
    }

    fn contains(&self, index: u64) -> bool {
        index >= self.start && self.end.is_none_or(|end| index < end)
    }
}

pub fn read(roots: &Roots, config: &ToolConfig, input: ReadInput) -> ToolOutput {
    match read_inner(roots, config, &input) {
        Ok(out) => out,
        Err(text) => ToolOutput::error(text),
    }
}

fn read_inner(roots: &Roots, config: &ToolConfig, input: &ReadInput) -> Result<ToolOutput, String> {
    let file_path = input.file_path.as_str();
    let path = roots.resolve("read", file_path)?;
    let view_range = input.view_range.as_deref().filter(|v| !v.is_empty());
    if view_range.is_some_and(|v| v.len() != 2) {
        return Err("read: view_range must be [start_line, end_line]".into());
    }
    let fs_err = |e: io::Error| fserr::message("read", file_path, &e);
    let meta = std::fs::metadata(&path).map_err(fs_err)?;
    if !meta.is_file() {
        return Err(format!("read: {file_path}: not a regular file"));
    }
    let size = meta.len();

    if let Some((media_type, is_image)) = media_type(&path) {
        if view_range.is_some() {
            return Err("read: view_range is not supported for image/PDF files".into());
        }
        if let Some(limit) = media_limit(config, is_image) {
            if size > limit {
                return Err(format!("read: {file_path} is {size} bytes, exceeds {limit}-byte limit for image/PDF files."));
            }
        }
        let data =
            base64::engine::general_purpose::STANDARD.encode(std::fs::read(&path).map_err(fs_err)?);
        let block_type = if is_image { "image" } else { "document" };
        let source = json!({"type": "base64", "media_type": media_type, "data": data});
        return Ok(ToolOutput::blocks(vec![
            json!({"type": block_type, "source": source}),
        ]));
    }

    let bytes = match (config.max_file_bytes, view_range) {
        (Some(cap), None) if size > cap => {
            return Err(format!(
                "read: {file_path} is {size} bytes, exceeds {cap}-byte limit. Use the view_range parameter to read specific line ranges, e.g. view_range: [1, 500]."
            ));
        }
        (Some(cap), Some(&[s, e])) if size > cap => {
            let range = LineRange::from_view_range(s, e);
            match stream_range(&path, range, cap).map_err(fs_err)? {
                Some(selected) => selected,
                None if e > 0 && s.max(1) == e => {
                    return Err(format!(
                        "read: line {e} of {file_path} alone exceeds {cap}-byte limit. The read tool cannot return part of a line, so view_range cannot narrow this further."
                    ));
                }
                None => {
                    return Err(format!(
                        "read: view_range [{s}, {e}] of {file_path} exceeds {cap}-byte limit. Narrow the view_range to read a smaller portion."
                    ));
                }
            }
        }
        (_, Some(&[s, e])) => {
            let text = decode(std::fs::read(&path).map_err(fs_err)?, file_path)?;
            return Ok(ToolOutput::text(select_lines(
                &text,
                LineRange::from_view_range(s, e),
            )));
        }
        _ => std::fs::read(&path).map_err(fs_err)?,
    };
    Ok(ToolOutput::text(decode(bytes, file_path)?))
}

/// The content block media type for the extensions that are read as binary.
fn media_type(path: &Path) -> Option<(&'static str, bool)> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => ("image/png", true),
        "jpg" | "jpeg" => ("image/jpeg", true),
        "gif" => ("image/gif", true),
        "webp" => ("image/webp", true),
        "pdf" => ("application/pdf", false),
        _ => return None,
    })
}

/// Raw-byte limit for an image/PDF: the media cap (images: the base64 cap turned
/// into raw bytes), lowered by an explicitly configured text cap.
fn media_limit(config: &ToolConfig, is_image: bool) -> Option<u64> {
    let media = if is_image {
        config.max_image_base64_bytes.map(|b64| b64 / 4 * 3)
    } else {
        config.max_pdf_bytes
    };
    let text = config
        .text_cap_applies_to_media
        .then_some(config.max_file_bytes)
        .flatten();
    match (media, text) {
        (Some(m), Some(t)) => Some(m.min(t)),
        (m, t) => m.or(t),
    }
}

fn decode(bytes: Vec<u8>, file_path: &str) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|_| {
        format!("read: {file_path}: not valid UTF-8 text (binary files are only supported for image/PDF extensions)")
    })
}

/// Elements `[start, end)` of `text.split('\n')`, joined with `\n`.
fn select_lines(text: &str, range: LineRange) -> String {
    let take = range
        .end
        .map_or(usize::MAX, |end| end.saturating_sub(range.start) as usize);
    let start = usize::try_from(range.start).unwrap_or(usize::MAX);
    text.split('\n')
        .skip(start)
        .take(take)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Stream `path` and collect the same bytes [`select_lines`] would return,
/// without holding more than `cap` of them. `None`: the selection exceeds `cap`.
fn stream_range(path: &Path, range: LineRange, cap: u64) -> io::Result<Option<Vec<u8>>> {
    let mut file = File::open(path)?;
    let mut chunk = vec![0u8; STREAM_CHUNK];
    let mut selected = Vec::new();
    let mut index = 0u64; // current element of split('\n')
    loop {
        if range.end.is_some_and(|end| index >= end) {
            break;
        }
        let n = match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        for piece in chunk[..n].split_inclusive(|&b| b == b'\n') {
            let (body, ends_line) = match piece.split_last() {
                Some((b'\n', body)) => (body, true),
                _ => (piece, false),
            };
            if range.contains(index) {
                selected.extend_from_slice(body);
                if ends_line && range.contains(index + 1) {
                    selected.push(b'\n');
                }
                if selected.len() as u64 > cap {
                    return Ok(None);
                }
            }
            if ends_line {
                index += 1;
                if range.end.is_some_and(|end| index >= end) {
                    break;
                }
            }
        }
    }
    Ok(Some(selected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_selection_matches_python_slicing() {
        let text = "a\nb\nc\nd\n";
        let sel = |s, e| select_lines(text, LineRange::from_view_range(s, e));
        assert_eq!(sel(2, 3), "b\nc");
        assert_eq!(sel(2, -1), "b\nc\nd\n");
        assert_eq!(sel(0, 0), text);
        assert_eq!(sel(3, 2), "");
        assert_eq!(sel(5, 0), "");
        assert_eq!(sel(6, 9), "");
        assert_eq!(sel(i64::MIN, i64::MAX), text);
    }

    #[test]
    fn streaming_agrees_with_in_memory_selection() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        // Lines straddle the 64 KiB chunk boundary.
        let mut text = String::new();
        for i in 0..20_000 {
            text.push_str(&format!("line {i}\n"));
        }
        text.push_str("tail-without-newline");
        std::fs::write(&path, &text).unwrap();
        for (s, e) in [
            (1, 1),
            (2, 3),
            (7000, 7005),
            (19_990, -1),
            (0, 0),
            (20_001, 20_001),
            (5, 2),
            (20_002, 0),
        ] {
            let range = LineRange::from_view_range(s, e);
            let streamed = stream_range(&path, range, u64::MAX).unwrap().unwrap();
            assert_eq!(
                String::from_utf8(streamed).unwrap(),
                select_lines(&text, range),
                "range [{s}, {e}]"
            );
        }
        assert!(stream_range(&path, LineRange::from_view_range(1, 100), 50)
            .unwrap()
            .is_none());
    }
}
