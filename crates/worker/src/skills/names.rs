//! Archive member name screening and wrapper-directory stripping (protocol.md §7.2
//! rules 1 and 3).

use sandkeep_tools::pyrepr::repr;

/// Why an archive cannot be extracted. The texts are the SDK's (§7.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExtractError(pub String);

impl ExtractError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Screen one member name and split it into clean components.
///
/// Backslashes count as `/`; an absolute name or a `..` component fails the whole
/// archive; `.` and empty components are dropped (the result may be empty, in
/// which case the member is skipped).
pub fn screen(raw: &str) -> Result<Vec<String>, ExtractError> {
    let normalized = raw.replace('\\', "/");
    if normalized.starts_with('/') {
        return Err(ExtractError(format!(
            "refusing archive member with absolute path {}",
            repr(raw)
        )));
    }
    let mut parts = Vec::new();
    for part in normalized.split('/') {
        match part {
            ".." => {
                return Err(ExtractError(format!(
                    "refusing archive member with '..' component: {}",
                    repr(raw)
                )));
            }
            "" | "." => {}
            other => parts.push(other.to_string()),
        }
    }
    Ok(parts)
}

/// The single top-level directory shared by all members, if it wraps at least one
/// nested member (bundles are packaged as `<skill>/SKILL.md`).
pub fn wrapper_dir(members: &[Vec<String>]) -> Option<String> {
    let mut tops = members.iter().filter_map(|m| m.first());
    let first = tops.next()?;
    if !tops.all(|t| t == first) {
        return None;
    }
    let nested = members.iter().any(|m| m.len() > 1);
    nested.then(|| first.clone())
}

/// Remove the wrapper component from a member; `None` means the member is the
/// wrapper itself (or empty) and is skipped.
pub fn strip_wrapper(member: &[String], wrapper: Option<&str>) -> Option<Vec<String>> {
    let rest = match (wrapper, member.first()) {
        (Some(w), Some(top)) if top == w => &member[1..],
        _ => member,
    };
    (!rest.is_empty()).then(|| rest.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(names: &[&str]) -> Vec<Vec<String>> {
        names.iter().map(|n| screen(n).unwrap()).collect()
    }

    #[test]
    fn wrapper_detection_matches_spec_examples() {
        assert_eq!(
            wrapper_dir(&split(&["pdf/SKILL.md", "pdf/scripts/x.py"])),
            Some("pdf".into())
        );
        assert_eq!(wrapper_dir(&split(&["pdf/SKILL.md"])), Some("pdf".into()));
        assert_eq!(
            wrapper_dir(&split(&["pdf/", "pdf/SKILL.md"])),
            Some("pdf".into())
        );
        assert_eq!(wrapper_dir(&split(&["SKILL.md", "scripts/x.py"])), None);
        assert_eq!(wrapper_dir(&split(&["a/x", "b/y"])), None);
        assert_eq!(wrapper_dir(&split(&["pdf/"])), None);
        assert_eq!(wrapper_dir(&[]), None);
    }

    #[test]
    fn strip_matches_spec_examples() {
        let s =
            |n: &str, w: Option<&str>| strip_wrapper(&screen(n).unwrap(), w).map(|v| v.join("/"));
        assert_eq!(s("pdf/SKILL.md", Some("pdf")), Some("SKILL.md".into()));
        assert_eq!(
            s("pdf/scripts/x.py", Some("pdf")),
            Some("scripts/x.py".into())
        );
        assert_eq!(s("pdf", Some("pdf")), None);
        assert_eq!(s("other/x", Some("pdf")), Some("other/x".into()));
        assert_eq!(s("pdf/SKILL.md", None), Some("pdf/SKILL.md".into()));
    }

    #[test]
    fn screening_refuses_absolute_and_dotdot() {
        assert_eq!(
            screen("/etc/passwd").unwrap_err().to_string(),
            "refusing archive member with absolute path '/etc/passwd'"
        );
        assert_eq!(
            screen("..\\evil").unwrap_err().to_string(),
            "refusing archive member with '..' component: '..\\\\evil'"
        );
        assert_eq!(
            screen("a/../../escape.txt").unwrap_err().to_string(),
            "refusing archive member with '..' component: 'a/../../escape.txt'"
        );
        assert_eq!(screen("./a//b/./c").unwrap(), vec!["a", "b", "c"]);
        assert!(screen("./").unwrap().is_empty());
    }

    #[test]
    fn messages_use_python_repr_quoting() {
        assert_eq!(
            screen("/it's").unwrap_err().to_string(),
            "refusing archive member with absolute path \"/it's\""
        );
    }
}
