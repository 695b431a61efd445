//! Reading one passport file: bytes to text (UTF-8, or UTF-16 with a
//! byte-order mark, decoded and flagged), text to a typed document with the
//! JSON position or the field path of any fault.

use crate::ImportError;
use serde::de::DeserializeOwned;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Passport files are a few kilobytes; anything far larger is not one, and
/// reading it whole would only waste memory.
const MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Warnings gathered while reading a unit, each tied to the file it is about.
#[derive(Debug, Default)]
pub(crate) struct Notes(Vec<(PathBuf, String)>);

impl Notes {
    pub(crate) fn warn(&mut self, file: &Path, message: impl Into<String>) {
        self.0.push((file.to_path_buf(), message.into()));
    }

    /// Each warning with the file's name only, as the plant stores it with
    /// the passport (a full path means nothing on another machine).
    pub(crate) fn for_passport(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|(f, m)| {
                let name = f
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default();
                format!("{name}: {m}")
            })
            .collect()
    }

    /// Each warning with the full path, as the import report shows it.
    pub(crate) fn for_report(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|(f, m)| format!("{}: {m}", f.display()))
            .collect()
    }
}

/// The text of `file`: UTF-8 (a UTF-8 byte-order mark is dropped), or
/// UTF-16 with a byte-order mark, which RFC 8259 forbids but which is
/// decoded exactly and flagged rather than refused.
#[tracing::instrument(skip_all, fields(file = %file.display()))]
pub(crate) fn read_text(file: &Path, notes: &mut Notes) -> Result<String, ImportError> {
    let io = |source| ImportError::Io {
        path: file.to_path_buf(),
        source,
    };
    let handle = std::fs::File::open(file).map_err(io)?;
    let mut bytes = Vec::new();
    handle
        .take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(ImportError::Encoding {
            file: file.to_path_buf(),
            message: format!("file is larger than {MAX_BYTES} bytes: not a passport document"),
        });
    }
    decode(file, &bytes, notes)
}

fn decode(file: &Path, bytes: &[u8], notes: &mut Notes) -> Result<String, ImportError> {
    let encoding = |message: String| ImportError::Encoding {
        file: file.to_path_buf(),
        message,
    };
    let text = match bytes {
        [0xFF, 0xFE, rest @ ..] => {
            let t = utf16(rest, u16::from_le_bytes).map_err(encoding)?;
            notes.warn(file, "file is UTF-16LE (RFC 8259 requires UTF-8); decoded");
            t
        }
        [0xFE, 0xFF, rest @ ..] => {
            let t = utf16(rest, u16::from_be_bytes).map_err(encoding)?;
            notes.warn(file, "file is UTF-16BE (RFC 8259 requires UTF-8); decoded");
            t
        }
        [0xEF, 0xBB, 0xBF, rest @ ..] => utf8(rest).map_err(encoding)?,
        _ => utf8(bytes).map_err(encoding)?,
    };
    if text.trim().is_empty() {
        return Err(ImportError::Empty {
            file: file.to_path_buf(),
        });
    }
    Ok(text)
}

fn utf8(bytes: &[u8]) -> Result<String, String> {
    // JSON text never holds a NUL byte; UTF-16 without a byte-order mark
    // holds one in every other byte and would otherwise pass as UTF-8.
    if let Some(at) = bytes.iter().position(|b| *b == 0) {
        return Err(format!(
            "file is not UTF-8 text: NUL byte at offset {at} (looks like UTF-16 without a byte-order mark)"
        ));
    }
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        format!("file is not UTF-8: invalid byte at offset {at}")
    })
}

fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Result<String, String> {
    if !bytes.len().is_multiple_of(2) {
        return Err("file is UTF-16 but has an odd number of bytes".into());
    }
    let units: Vec<u16> = bytes.chunks_exact(2).map(|c| unit([c[0], c[1]])).collect();
    String::from_utf16(&units)
        .map_err(|_| "file is UTF-16 but holds an unpaired surrogate: not text".to_string())
}

/// Reads and parses `file` into the document type `T`.
pub(crate) fn read_json<T: DeserializeOwned>(
    file: &Path,
    notes: &mut Notes,
) -> Result<T, ImportError> {
    let text = read_text(file, notes)?;
    parse_json(file, &text)
}

/// Parses `text` into `T`: a syntax error gives its line and column, a
/// shape error (missing field, wrong type) gives the path of the field.
pub(crate) fn parse_json<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, ImportError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        json_error(file, e.into_inner(), field)
    })?;
    de.end().map_err(|e| json_error(file, e, String::new()))?;
    Ok(value)
}

fn json_error(file: &Path, e: serde_json::Error, field: String) -> ImportError {
    let (line, column) = (e.line(), e.column());
    let full = e.to_string();
    let message = full
        .strip_suffix(&format!(" at line {line} column {column}"))
        .unwrap_or(&full)
        .to_string();
    match e.classify() {
        serde_json::error::Category::Data => ImportError::Shape {
            file: file.to_path_buf(),
            field: if field.is_empty() || field == "." {
                "document".into()
            } else {
                field
            },
            message,
            line,
            column,
        },
        _ => ImportError::Json {
            file: file.to_path_buf(),
            line,
            column,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(bytes: &[u8], expected: Result<&str, &str>) {
        let mut notes = Notes::default();
        let got = decode(Path::new("x.json"), bytes, &mut notes).map_err(|e| e.to_string());
        match (got, expected) {
            (Ok(t), Ok(want)) => assert_eq!(t, want),
            (Err(e), Err(want)) => assert!(e.contains(want), "{e}"),
            (got, want) => panic!("got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn text_is_decoded_from_utf8_and_from_utf16_with_a_bom() {
        check(b"{}", Ok("{}"));
        check(b"\xEF\xBB\xBF{}", Ok("{}"));
        check(b"\xFF\xFE{\x00}\x00", Ok("{}"));
        check(b"\xFE\xFF\x00{\x00}", Ok("{}"));
    }

    #[test]
    fn bytes_that_are_not_text_are_refused_without_mojibake() {
        check(b"", Err("empty file"));
        check(b"  \n", Err("empty file"));
        check(b"{\xC3}", Err("not UTF-8: invalid byte at offset 1"));
        check(b"\xFF\xFE{\x00}", Err("odd number of bytes"));
        check(b"\xFF\xFE\x00\xD8", Err("unpaired surrogate"));
        check(
            b"{\x00}\x00",
            Err("looks like UTF-16 without a byte-order mark"),
        );
    }

    #[test]
    fn json_faults_give_their_position_or_field() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Doc {
            mass: f64,
        }
        let e = parse_json::<Doc>(Path::new("d.json"), "{\n \"mass\": 1\n \"x\": 2}")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("d.json: invalid JSON at line 3 column 2"),
            "{e}"
        );
        let e = parse_json::<Doc>(Path::new("d.json"), "{\"mass\": \"heavy\"}")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("d.json: mass: invalid type: string"), "{e}");
        let e = parse_json::<Doc>(Path::new("d.json"), "{}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `mass`"), "{e}");
        let e = parse_json::<Doc>(Path::new("d.json"), "{\"mass\": 1} []")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("invalid JSON at line 1 column 13: trailing characters"),
            "{e}"
        );
    }
}
