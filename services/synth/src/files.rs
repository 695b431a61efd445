//! Writing a plant year to a folder: the passports, the intake list of
//! units without one, the lots, the edges, the truth and a summary.

use crate::{PlantYear, SynthError};
use remine_domain::{Element, PassportForm};
use serde_json::{Map, Value, json};
use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileReport {
    pub files: usize,
    pub bytes: u64,
}

fn elements(values: impl Fn(Element) -> f64) -> Value {
    let mut map = Map::new();
    for e in Element::ALL {
        let v = values(e);
        if v != 0.0 {
            map.insert(e.symbol().into(), json!(v));
        }
    }
    Value::Object(map)
}

struct Out<'a> {
    dir: &'a Path,
    report: FileReport,
}

impl Out<'_> {
    fn write(&mut self, rel: &str, bytes: &[u8]) -> Result<(), SynthError> {
        let path = self.dir.join(rel);
        fs::write(&path, bytes).map_err(SynthError::io(&path))?;
        self.report.files += 1;
        self.report.bytes += bytes.len() as u64;
        Ok(())
    }

    fn lines(
        &mut self,
        rel: &str,
        rows: impl Iterator<Item = Result<Value, SynthError>>,
    ) -> Result<(), SynthError> {
        let path = self.dir.join(rel);
        let file = fs::File::create(&path).map_err(SynthError::io(&path))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let mut bytes = 0u64;
        for row in rows {
            let mut line = serde_json::to_vec(&row?).map_err(|e| SynthError::Io {
                path: path.clone(),
                source: e.into(),
            })?;
            line.push(b'\n');
            bytes += line.len() as u64;
            w.write_all(&line).map_err(SynthError::io(&path))?;
        }
        w.flush().map_err(SynthError::io(&path))?;
        self.report.files += 1;
        self.report.bytes += bytes;
        Ok(())
    }
}

impl PlantYear {
    /// Writes the year into `dir` (created; it must be new or empty):
    /// `passports/`, `intake-declared.csv`, `lots.jsonl`, `edges.jsonl`,
    /// `truth.jsonl` and `README.md` (the formats and the summary). The
    /// same year gives byte-identical files.
    #[tracing::instrument(skip(self), fields(dir = %dir.display()))]
    pub fn write_files(&self, dir: &Path) -> Result<FileReport, SynthError> {
        fs::create_dir_all(dir).map_err(SynthError::io(dir))?;
        let mut entries = fs::read_dir(dir).map_err(SynthError::io(dir))?;
        if entries.next().is_some() {
            return Err(SynthError::NotEmpty(dir.to_path_buf()));
        }
        let passports = dir.join("passports");
        fs::create_dir(&passports).map_err(SynthError::io(&passports))?;
        let mut out = Out {
            dir,
            report: FileReport::default(),
        };

        let mut declared = String::from("lot,chemistry,unit_type,weighed_mass_kg,country\n");
        for unit in &self.units {
            let doc = &unit.doc;
            if doc.form == PassportForm::Declared {
                declared.push_str(&format!(
                    "{},{},{},{},{}\n",
                    doc.id,
                    doc.chemistry.name(),
                    doc.unit_type.name(),
                    doc.weight,
                    doc.country.as_str()
                ));
                continue;
            }
            if doc.form != PassportForm::GbtIntake {
                let folder = passports.join(&doc.serial);
                fs::create_dir(&folder).map_err(SynthError::io(&folder))?;
            }
            for (rel, value) in doc.files() {
                let mut bytes = serde_json::to_vec_pretty(&value).map_err(|e| SynthError::Io {
                    path: passports.join(&rel),
                    source: e.into(),
                })?;
                bytes.push(b'\n');
                out.write(&format!("passports/{rel}"), &bytes)?;
            }
        }
        out.write("intake-declared.csv", declared.as_bytes())?;

        out.lines(
            "lots.jsonl",
            self.lots.iter().map(|lot| {
                let passport = match lot.unit {
                    Some(u) => Value::String(self.units[u].passport()?.id().to_string()),
                    None => Value::Null,
                };
                let measurement = match lot.weighing {
                    Some(w) => json!({
                        "instrument": w.instrument.name(),
                        "method": w.instrument.mass_method().map(|m| m.name()),
                        "wet_kg": w.wet_kg,
                        "moisture": w.moisture,
                        "relative_sigma": w.instrument.relative_sigma(),
                    }),
                    None => Value::Null,
                };
                let assays: Vec<Value> = lot
                    .assays
                    .iter()
                    .map(|a| {
                        json!({
                            "element": a.element.symbol(),
                            "fraction": a.fraction,
                            "sigma": a.sigma,
                            "method": lot.assay_by.map(|i| i.name()),
                            "lab": lot.assay_by.map(|i| i.lab()),
                            "sample": format!("{}-S1", lot.id),
                        })
                    })
                    .collect();
                Ok(json!({
                    "id": lot.id.as_str(),
                    "kind": lot.kind.code(),
                    "created_at": lot.created_at.to_rfc3339(),
                    "mass_kg": lot.booked_kg,
                    "elements": elements(|e| lot.booked[e as usize]),
                    "content_source": lot.source.name(),
                    "passport": passport,
                    "country": lot.country.as_ref().map(|c| c.as_str()),
                    "measurement": measurement,
                    "assays": assays,
                }))
            }),
        )?;
        out.lines(
            "edges.jsonl",
            self.edges.iter().map(|e| {
                Ok(json!({
                    "from": self.lots[e.from].id.as_str(),
                    "to": self.lots[e.to].id.as_str(),
                    "mass_kg": e.booked_kg,
                    "true_kg": e.true_kg,
                }))
            }),
        )?;
        out.lines(
            "truth.jsonl",
            self.lots.iter().map(|lot| {
                let m = lot.true_moisture;
                Ok(json!({
                    "id": lot.id.as_str(),
                    "kind": lot.kind.code(),
                    "mass_kg": lot.truth.total(),
                    "moisture": m,
                    "wet_kg": lot.truth.total() / (1.0 - m),
                    "elements": elements(|e| lot.truth.element(e)),
                    "rest_kg": lot.truth.rest(),
                    "remaining_kg": lot.remaining.total(),
                    "remaining": elements(|e| lot.remaining.element(e)),
                }))
            }),
        )?;
        let readme = format!(
            "{}\n## This year\n\n```text\n{}```\n",
            FORMAT,
            self.summary()
        );
        out.write("README.md", readme.as_bytes())?;
        Ok(out.report)
    }
}

/// The folder's own description of its files.
const FORMAT: &str = "# A synthetic plant year (remine synth)

Generated by `remine synth`; the same seed gives byte-identical files.

- `passports/`: one entry per unit with a passport, as it arrives at the
  gate: a folder named after the unit's serial for Battery Pass 1.2.0
  (`GeneralProductInformation.json`, `MaterialComposition.json`, element
  masses in grams), Catena-X battery_pass 6.1.0 (`BatteryPass.json`,
  concentrations in percent or ppm) and IDTA (`NameplateBattery.json`,
  `TechnicalDataBattery.json`, `MaterialCompositionBattery.json`, kilograms);
  a file `<GB/T 34014 code>.json` for the plant's GB/T intake form.
  `remine passport import passports/` reads them all.
- `intake-declared.csv`: units without a passport (a declared chemistry and
  the weighed mass): `lot,chemistry,unit_type,weighed_mass_kg,country`.
- `lots.jsonl`: every lot in the order it was made, as the plant booked it:
  `id`, `kind` (the store's lot-kind code), `created_at`, `mass_kg` (the
  weighing's dry mass), `elements` (kg: the passport's for units, assay
  times mass for assayed lots, carried from the inputs otherwise),
  `content_source`, `passport`, `country`, `measurement` (`instrument`,
  `method`, `wet_kg`, `moisture`, `relative_sigma`) and `assays`
  (`element`, `fraction`, absolute `sigma`, `method`, `lab`, `sample`).
- `edges.jsonl`: the genealogy, `from`, `to`, `mass_kg` (booked: the
  source's booked mass in proportion to what truly moved; the edges out of
  a lot never exceed its mass; into a product, the payable metal) and
  `true_kg`.
- `truth.jsonl`: per lot, the true dry `mass_kg`, `moisture`, `wet_kg`,
  `elements` (kg), `rest_kg` (untracked: oxygen, solvents, polymers,
  water, sulphate), and what remains of it at year end (`remaining_kg`,
  `remaining`). Every tracked element received is, at year end, in exactly
  one lot's `remaining`.
";
