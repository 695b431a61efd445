//! The crate's one error type: why a unit was refused, naming the file and
//! the field or value at fault.

use std::path::{Path, PathBuf};

/// Why a unit was not imported. The message starts with the file (or folder)
/// at fault and names the field and the value, so it can be shown to the
/// person at the gate as it is.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The path could not be read (missing, permissions, not a file or folder).
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A folder without passport files, files of two forms in one folder, or
    /// a file that is not a passport.
    #[error("{}: {message}", path.display())]
    UnknownForm { path: PathBuf, message: String },
    /// A file the form needs is missing from the unit folder.
    #[error("{}: missing (a {form} unit folder needs it)", file.display())]
    MissingFile { file: PathBuf, form: &'static str },
    /// The file has no content.
    #[error("{}: empty file", file.display())]
    Empty { file: PathBuf },
    /// The bytes are not UTF-8 text (or UTF-16 with a byte-order mark).
    #[error("{}: {message}", file.display())]
    Encoding { file: PathBuf, message: String },
    /// The text is not JSON.
    #[error("{}: invalid JSON at line {line} column {column}: {message}", file.display())]
    Json {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// Valid JSON whose shape does not fit the form: a required field is
    /// missing or has the wrong type. `field` is the path in the document.
    #[error("{}: {field}: {message} (line {line} column {column})", file.display())]
    Shape {
        file: PathBuf,
        field: String,
        message: String,
        line: usize,
        column: usize,
    },
    /// A value the importer refuses: an identifier of the wrong pattern, an
    /// impossible or implausible mass, an unknown unit, a composition that
    /// contradicts the battery. `message` names the field and the value.
    #[error("{}: {message}", file.display())]
    Rejected {
        file: PathBuf,
        field: String,
        message: String,
    },
    /// A second unit with an id already imported in the same batch.
    #[error(
        "{}: duplicate passport id {id} (already imported from {})",
        file.display(),
        first.display()
    )]
    Duplicate {
        file: PathBuf,
        id: String,
        first: PathBuf,
    },
}

impl ImportError {
    /// The file (or folder) the error is about.
    pub fn file(&self) -> &Path {
        match self {
            ImportError::Io { path, .. } | ImportError::UnknownForm { path, .. } => path,
            ImportError::MissingFile { file, .. }
            | ImportError::Empty { file }
            | ImportError::Encoding { file, .. }
            | ImportError::Json { file, .. }
            | ImportError::Shape { file, .. }
            | ImportError::Rejected { file, .. }
            | ImportError::Duplicate { file, .. } => file,
        }
    }

    pub(crate) fn rejected(file: &Path, field: &str, message: impl Into<String>) -> ImportError {
        ImportError::Rejected {
            file: file.to_path_buf(),
            field: field.to_string(),
            message: message.into(),
        }
    }
}
