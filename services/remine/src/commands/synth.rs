//! `remine synth --packs N --seed S (--out DIR | --db URL | --data DIR)`:
//! a synthetic plant year, generated from the simulator's models and
//! written as files or through the store's ports, with a summary and the
//! time it took.

use super::PLANT_DB_FILE;
use crate::cli::SynthArgs;
use crate::storage;
use anyhow::bail;
use remine_synth::{Bias, SynthConfig, generate};
use std::process::ExitCode;
use std::time::Instant;

pub async fn run(args: &SynthArgs) -> anyhow::Result<ExitCode> {
    if args.out.is_some() && args.db.db.is_some() {
        bail!("give either --out DIR (files) or --db URL (a database), not both");
    }
    let mut config = SynthConfig::new(args.packs, args.seed)?;
    for spec in &args.bias {
        config = config.with_bias(Bias::parse(spec)?);
    }
    let start = Instant::now();
    let year = generate(&config)?;
    let generated = start.elapsed();
    println!(
        "generated {} lots and {} edges in {:.2} s",
        year.lots().len(),
        year.edges().len(),
        generated.as_secs_f64()
    );
    match &args.out {
        Some(dir) => {
            let written = Instant::now();
            let report = year.write_files(dir)?;
            println!(
                "wrote {} files ({:.1} MB) to {} in {:.2} s",
                report.files,
                report.bytes as f64 / 1e6,
                dir.display(),
                written.elapsed().as_secs_f64()
            );
        }
        None => {
            let store = storage::open(&args.db, PLANT_DB_FILE).await?;
            let written = Instant::now();
            let mut next = 0;
            let report = year
                .write_store(&store, |done, total| {
                    let pct = done * 100 / total.max(1);
                    if pct >= next {
                        println!(
                            "stored {done}/{total} lots ({pct} %), {:.1} s",
                            written.elapsed().as_secs_f64()
                        );
                        next = pct + 10;
                    }
                })
                .await?;
            let secs = written.elapsed().as_secs_f64();
            println!(
                "stored {} lots, {} edges, {} weighings, {} assays in {:.1} s ({:.0} writes/s)",
                report.lots,
                report.edges,
                report.measurements,
                report.assays,
                secs,
                report.writes() as f64 / secs.max(1e-9)
            );
        }
    }
    print!("{}", year.summary());
    println!("elapsed {:.2} s", start.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}
