//! Reading units and batches of units: form detection, the hand-over to
//! `Passport::new`, and the refusal of duplicate ids within a batch.

use crate::read::Notes;
use crate::{ImportError, batterypass, catenax, gbt, idta};
use remine_domain::{DomainError, Passport, PassportFields, PassportForm};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One unit read from its passport.
#[derive(Debug, Clone)]
pub struct ImportedUnit {
    /// The plant's copy of the passport.
    pub passport: Passport,
    /// The unit folder, or the GB/T intake file.
    pub source: PathBuf,
    /// Everything accepted that a person should know, each naming its file:
    /// the importer's warnings and the domain's (such as "no chemistry and
    /// no composition - sampling/assay required").
    pub warnings: Vec<String>,
}

impl ImportedUnit {
    /// The file that holds the unit's passport id.
    pub fn id_file(&self) -> PathBuf {
        let name = match self.passport.form() {
            PassportForm::BatteryPass120 => batterypass::GENERAL,
            PassportForm::CatenaX610 => catenax::FILE,
            PassportForm::Idta => idta::NAMEPLATE,
            PassportForm::GbtIntake | PassportForm::Declared => return self.source.clone(),
        };
        self.source.join(name)
    }
}

/// A unit that was not imported, and why.
#[derive(Debug)]
pub struct Refusal {
    /// The unit folder or file, as found in the batch.
    pub path: PathBuf,
    pub error: ImportError,
}

/// The outcome of a batch: every unit is either accepted or refused.
#[derive(Debug, Default)]
pub struct ImportSummary {
    pub accepted: Vec<ImportedUnit>,
    pub refused: Vec<Refusal>,
}

/// What a form reader hands over: the passport's fields, and the file that
/// answers for the checks the domain makes on them (the composition file,
/// or the form's only file).
#[derive(Debug)]
pub(crate) struct Draft {
    pub(crate) fields: PassportFields,
    pub(crate) blame: PathBuf,
}

/// Where a unit's passport is and in which form.
#[derive(Debug)]
enum Layout {
    BatteryPass(PathBuf),
    CatenaX(PathBuf),
    Idta(PathBuf),
    Gbt(PathBuf),
}

const BATTERY_PASS_FILES: [&str; 3] = [
    batterypass::GENERAL,
    batterypass::MATERIALS,
    batterypass::CIRCULARITY,
];
const CATENA_X_FILES: [&str; 1] = [catenax::FILE];
const IDTA_FILES: [&str; 5] = [
    idta::NAMEPLATE,
    idta::TECHNICAL,
    idta::MATERIALS,
    idta::CONDITION,
    idta::CIRCULARITY,
];

fn is_form_file_name(name: &str) -> bool {
    BATTERY_PASS_FILES
        .iter()
        .chain(&CATENA_X_FILES)
        .chain(&IDTA_FILES)
        .any(|f| *f == name)
}

/// The forms whose files a folder holds.
fn forms_in(dir: &Path) -> Vec<(&'static str, Layout)> {
    let has = |names: &[&str]| names.iter().any(|n| dir.join(n).is_file());
    let mut found = Vec::new();
    if has(&BATTERY_PASS_FILES) {
        found.push(("Battery Pass 1.2.0", Layout::BatteryPass(dir.to_path_buf())));
    }
    if has(&CATENA_X_FILES) {
        found.push(("Catena-X 6.1.0", Layout::CatenaX(dir.to_path_buf())));
    }
    if has(&IDTA_FILES) {
        found.push(("IDTA", Layout::Idta(dir.to_path_buf())));
    }
    found
}

fn detect(path: &Path) -> Result<Layout, ImportError> {
    let meta = std::fs::metadata(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_file() {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if is_form_file_name(&name)
            && let Some(parent) = path.parent()
        {
            return detect(parent);
        }
        let is_json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        return if is_json {
            Ok(Layout::Gbt(path.to_path_buf()))
        } else {
            Err(ImportError::UnknownForm {
                path: path.to_path_buf(),
                message: "not a passport: expected a unit folder or a GB/T intake form (.json)"
                    .into(),
            })
        };
    }
    let mut found = forms_in(path);
    match found.len() {
        1 => Ok(found.remove(0).1),
        0 => Err(ImportError::UnknownForm {
            path: path.to_path_buf(),
            message: format!(
                "no passport files: expected {} (Battery Pass 1.2.0), {} (Catena-X 6.1.0) or {} (IDTA)",
                batterypass::GENERAL,
                catenax::FILE,
                idta::NAMEPLATE
            ),
        }),
        _ => Err(ImportError::UnknownForm {
            path: path.to_path_buf(),
            message: format!(
                "files of several passport forms in one folder ({}): which one is the unit's?",
                found.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            ),
        }),
    }
}

/// Reads one unit: a unit folder (Battery Pass 1.2.0, Catena-X 6.1.0,
/// IDTA) or a GB/T intake file; the form is detected from the file names.
/// A file of a folder form stands for its folder.
#[tracing::instrument(skip_all, fields(path = %path.display()))]
pub fn read_unit(path: &Path) -> Result<ImportedUnit, ImportError> {
    let layout = detect(path)?;
    let mut notes = Notes::default();
    let (draft, source) = match layout {
        Layout::BatteryPass(dir) => (batterypass::read(&dir, &mut notes)?, dir),
        Layout::CatenaX(dir) => (catenax::read(&dir, &mut notes)?, dir),
        Layout::Idta(dir) => (idta::read(&dir, &mut notes)?, dir),
        Layout::Gbt(file) => (gbt::read(&file, &mut notes)?, file),
    };
    let Draft { mut fields, blame } = draft;
    fields.warnings = notes.for_passport();
    let own = fields.warnings.len();
    let passport = Passport::new(fields).map_err(|e| domain_refusal(&blame, e))?;
    let mut warnings = notes.for_report();
    warnings.extend(
        passport
            .warnings()
            .iter()
            .skip(own)
            .map(|w| format!("{}: {w}", source.display())),
    );
    for w in &warnings {
        tracing::warn!(warning = %w, "accepted with a warning");
    }
    Ok(ImportedUnit {
        passport,
        source,
        warnings,
    })
}

fn domain_refusal(file: &Path, e: DomainError) -> ImportError {
    let field = match &e {
        DomainError::OutOfRange { what, .. } | DomainError::Malformed { what, .. } => *what,
        DomainError::Inconsistent(_) | DomainError::NotAllowed(_) => "consistency",
    };
    ImportError::rejected(file, field, e.to_string())
}

/// The units a batch path stands for: itself when it is a unit, else the
/// units directly inside it (one level: unit folders and `.json` files).
/// A sub-folder holding folders of its own is another collection and is
/// not walked; one holding only files that are no passport is a unit that
/// will be refused, so a misnamed passport is never skipped in silence.
fn units_under(path: &Path, refused: &mut Vec<Refusal>) -> Vec<PathBuf> {
    if !path.is_dir() || !forms_in(path).is_empty() {
        return vec![path.to_path_buf()];
    }
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(source) => {
            refused.push(Refusal {
                path: path.to_path_buf(),
                error: ImportError::Io {
                    path: path.to_path_buf(),
                    source,
                },
            });
            return Vec::new();
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    paths
        .into_iter()
        .filter(|p| {
            if p.is_dir() {
                !forms_in(p).is_empty() || (holds_json(p) && !holds_folders(p))
            } else {
                p.extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("json"))
            }
        })
        .collect()
}

fn holds_folders(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|it| it.filter_map(Result::ok).any(|e| e.path().is_dir()))
        .unwrap_or(false)
}

fn holds_json(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|it| {
            it.filter_map(Result::ok).any(|e| {
                e.path()
                    .extension()
                    .is_some_and(|x| x.eq_ignore_ascii_case("json"))
            })
        })
        .unwrap_or(false)
}

/// Imports a batch. Each path is a unit folder, a GB/T intake file, or a
/// folder of units (walked one level, in name order). A unit whose id was
/// already accepted in this batch is refused, naming the file it was first
/// imported from; nothing is overwritten or merged.
#[tracing::instrument(skip_all, fields(paths = paths.len()))]
pub fn import_paths(paths: &[PathBuf]) -> ImportSummary {
    let mut summary = ImportSummary::default();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for path in paths {
        for unit in units_under(path, &mut summary.refused) {
            match read_unit(&unit) {
                Ok(imported) => {
                    let id = imported.passport.id().as_str().to_string();
                    if let Some(first) = seen.get(&id) {
                        tracing::warn!(%id, path = %unit.display(), "duplicate passport id refused");
                        summary.refused.push(Refusal {
                            path: unit,
                            error: ImportError::Duplicate {
                                file: imported.id_file(),
                                id,
                                first: first.clone(),
                            },
                        });
                    } else {
                        seen.insert(id, imported.id_file());
                        summary.accepted.push(imported);
                    }
                }
                Err(error) => {
                    tracing::warn!(path = %unit.display(), %error, "unit refused");
                    summary.refused.push(Refusal { path: unit, error });
                }
            }
        }
    }
    tracing::info!(
        accepted = summary.accepted.len(),
        refused = summary.refused.len(),
        "batch imported"
    );
    summary
}
