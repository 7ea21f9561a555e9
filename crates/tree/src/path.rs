//! Path rules, as ZooKeeper's `PathUtils.validatePath` and the
//! `PrepRequestProcessor` helpers apply them.

/// Why a path is invalid (the reason is logged; clients only see BadArguments).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path must not be empty")]
    Empty,
    #[error("path must start with / character")]
    NotAbsolute,
    #[error("path must not end with / character")]
    TrailingSlash,
    #[error("empty node name specified @{0}")]
    EmptyComponent(usize),
    #[error("relative paths not allowed @{0}")]
    Relative(usize),
    #[error("invalid character @{0}")]
    InvalidChar(usize),
}

/// `PathUtils.validatePath`. Java checks UTF-16 code units, so any character
/// outside the Basic Multilingual Plane (a surrogate pair) is rejected, as is
/// the private-use range up to U+F8FF and U+FFF0..=U+FFFF.
pub fn validate_path(path: &str) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err(PathError::TrailingSlash);
    }
    let chars: Vec<char> = path.chars().collect();
    let mut last = '/';
    for (i, &c) in chars.iter().enumerate().skip(1) {
        if c == '\0' {
            return Err(PathError::InvalidChar(i));
        } else if c == '/' && last == '/' {
            return Err(PathError::EmptyComponent(i));
        } else if c == '.' && last == '.' {
            let before = chars[i - 2];
            let after = chars.get(i + 1).copied();
            if before == '/' && (after.is_none() || after == Some('/')) {
                return Err(PathError::Relative(i));
            }
        } else if c == '.' {
            let after = chars.get(i + 1).copied();
            if chars[i - 1] == '/' && (after.is_none() || after == Some('/')) {
                return Err(PathError::Relative(i));
            }
        } else if is_forbidden_char(c) {
            return Err(PathError::InvalidChar(i));
        }
        last = c;
    }
    Ok(())
}

fn is_forbidden_char(c: char) -> bool {
    let u = c as u32;
    (u > 0x0000 && u <= 0x001f)
        || (0x007f..=0x009f).contains(&u)
        || (0xd800..=0xf8ff).contains(&u)
        || (0xfff0..=0xffff).contains(&u)
        // Outside the BMP: Java sees a surrogate pair, which is in the
        // rejected D800..F8FF range.
        || u > 0xffff
}

/// The parent of `path` as ZooKeeper computes it: everything before the
/// last `/` (so the parent of `/a` is `""`, which names the root). `None`
/// when there is no `/` at all.
pub fn parent_of(path: &str) -> Option<&str> {
    path.rfind('/').map(|i| &path[..i])
}

/// The last component of `path`.
pub fn name_of(path: &str) -> &str {
    path.rfind('/').map_or(path, |i| &path[i + 1..])
}

/// ZooKeeper keys the root both as `""` and `"/"`; we store it as `"/"`.
pub fn normalize(path: &str) -> &str {
    if path.is_empty() { "/" } else { path }
}

/// Joins a parent path and a child name.
pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" || parent.is_empty() {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_table() {
        let valid = [
            "/",
            "/a",
            "/a/b",
            "/...",
            "/.a",
            "/a.",
            "/a/..b",
            "/zoo keeper",
            "/\u{e9}",
        ];
        for path in valid {
            assert_eq!(validate_path(path), Ok(()), "{path:?}");
        }
        let invalid = [
            "",
            "a",
            "/a/",
            "//",
            "/a//b",
            "/.",
            "/..",
            "/a/.",
            "/a/../b",
            "/a\u{0}",
            "/a\u{1}",
            "/\u{7f}",
            "/\u{9f}",
            "/\u{d7ff}x\u{e000}",
            "/\u{fffd}",
            "/\u{1f600}",
        ];
        for path in invalid {
            if path == "/\u{d7ff}x\u{e000}" {
                // U+D7FF is fine, U+E000 (private use) is not.
                assert!(validate_path(path).is_err());
                continue;
            }
            assert!(validate_path(path).is_err(), "{path:?} should be invalid");
        }
    }

    #[test]
    fn parents() {
        assert_eq!(parent_of("/a"), Some(""));
        assert_eq!(parent_of("/a/b"), Some("/a"));
        assert_eq!(parent_of("a"), None);
        assert_eq!(name_of("/a/b"), "b");
    }
}
