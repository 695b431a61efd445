//! The anchor of the `remine synth --out` benchmark: writes the same bytes
//! as a generated year with a bare `std::fs` loop (the files are read into
//! memory first, then timed while written to a new folder).
//!
//! `cargo run --release -p remine-synth --example fs_anchor -- YEAR_DIR NEW_DIR`

use std::path::{Path, PathBuf};
use std::time::Instant;

fn collect(dir: &Path, root: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>, dirs: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        if path.is_dir() {
            dirs.push(rel.to_path_buf());
            collect(&path, root, out, dirs);
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((rel.to_path_buf(), bytes));
        }
    }
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(from), Some(to)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: fs_anchor YEAR_DIR NEW_DIR");
        std::process::exit(2);
    };
    let (mut files, mut dirs) = (Vec::new(), Vec::new());
    collect(Path::new(from), Path::new(from), &mut files, &mut dirs);
    let to = Path::new(to);
    let start = Instant::now();
    std::fs::create_dir_all(to)?;
    for d in &dirs {
        std::fs::create_dir(to.join(d))?;
    }
    let mut bytes = 0;
    for (rel, data) in &files {
        std::fs::write(to.join(rel), data)?;
        bytes += data.len();
    }
    println!(
        "wrote {} files, {} folders, {:.1} MB in {:.2} s",
        files.len(),
        dirs.len(),
        bytes as f64 / 1e6,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
