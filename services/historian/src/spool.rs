//! The store-and-forward spool: batches that could not be written, kept in
//! append-only files on local disk until the database takes them.
//!
//! The spool is a directory of segment files `spool-NNNNNNNNNNNNNNNN.bin`
//! (a 16-digit sequence number), drained oldest first. A segment is a run
//! of records, each
//!
//! ```text
//! length   u32 little-endian   bytes of the payload
//! checksum u32 little-endian   CRC-32C (Castagnoli) of the payload
//! payload                      count u32, then per sample:
//!                              tag length u16, tag (UTF-8), at_us i64,
//!                              has-value u8 (0 or 1), value f64 (if 1),
//!                              quality i16 (all little-endian)
//! ```
//!
//! One record is one batch, written and fsynced before [`Spool::append`]
//! returns. New records go to the newest (active) segment; the drainer
//! seals it (so later records go to a new one) before reading it, and
//! deletes a segment only after every record of it was written to the
//! database. A record whose checksum fails or whose payload does not parse
//! is reported and skipped; a record cut short at the end of a file (a
//! torn write after a crash) is reported and ends that file.

use crate::HistorianError;
use chrono::DateTime;
use remine_domain::{Sample, SampleQuality, TagName};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

const CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
/// Records start a new segment once the active one has grown past this.
const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;
const HEADER: usize = 8;

/// A sealed segment's records, read back.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) path: PathBuf,
    pub(crate) bytes: u64,
    pub(crate) batches: Vec<Vec<Sample>>,
    /// What was wrong with records that were skipped, one line each.
    pub(crate) damage: Vec<String>,
}

/// The spool directory: its sealed segments and the active one.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    next_seq: u64,
    /// Sealed segments, oldest first.
    sealed: Vec<PathBuf>,
    active: Option<(PathBuf, File, u64)>,
    bytes: u64,
}

impl Spool {
    /// Opens (creating) `dir`; every segment found there is left from an
    /// earlier run and is sealed, to be drained first.
    pub(crate) fn open(dir: &Path) -> Result<Spool, HistorianError> {
        let io = |e| HistorianError::Spool {
            path: dir.to_path_buf(),
            source: e,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut found: Vec<(u64, PathBuf, u64)> = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(seq) = name
                .strip_prefix("spool-")
                .and_then(|s| s.strip_suffix(".bin"))
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            let len = entry.metadata().map_err(io)?.len();
            found.push((seq, entry.path(), len));
        }
        found.sort();
        Ok(Spool {
            dir: dir.to_path_buf(),
            next_seq: found.last().map_or(1, |(seq, _, _)| seq + 1),
            bytes: found.iter().map(|(_, _, len)| len).sum(),
            sealed: found.into_iter().map(|(_, path, _)| path).collect(),
            active: None,
        })
    }

    /// Bytes on disk in all segments.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether no record waits (sealed or active).
    pub(crate) fn is_empty(&self) -> bool {
        self.sealed.is_empty() && self.active.is_none()
    }

    /// Appends one batch as one record and fsyncs it.
    pub(crate) fn append(&mut self, batch: &[Sample]) -> Result<u64, HistorianError> {
        if self
            .active
            .as_ref()
            .is_some_and(|(_, _, len)| *len >= SEGMENT_BYTES)
        {
            self.seal();
        }
        if self.active.is_none() {
            let path = self.dir.join(format!("spool-{:016}.bin", self.next_seq));
            self.next_seq += 1;
            let file = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&path)
                .map_err(|e| HistorianError::Spool {
                    path: path.clone(),
                    source: e,
                })?;
            // The new file's name must survive a crash too.
            if let Ok(d) = File::open(&self.dir) {
                let _ = d.sync_all();
            }
            self.active = Some((path, file, 0));
        }
        let record = encode_record(batch);
        if let Some((path, file, len)) = &mut self.active {
            let io = |e| HistorianError::Spool {
                path: path.clone(),
                source: e,
            };
            file.write_all(&record).map_err(io)?;
            file.sync_data().map_err(io)?;
            *len += record.len() as u64;
        }
        self.bytes += record.len() as u64;
        Ok(record.len() as u64)
    }

    /// Closes the active segment: later records go to a new one.
    pub(crate) fn seal(&mut self) {
        if let Some((path, _, _)) = self.active.take() {
            self.sealed.push(path);
        }
    }

    /// The oldest sealed segment, sealing the active one when no other is.
    pub(crate) fn oldest(&mut self) -> Option<PathBuf> {
        if self.sealed.is_empty() {
            self.seal();
        }
        self.sealed.first().cloned()
    }

    /// Deletes a drained segment.
    pub(crate) fn remove(&mut self, path: &Path) -> Result<(), HistorianError> {
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        std::fs::remove_file(path).map_err(|e| HistorianError::Spool {
            path: path.to_path_buf(),
            source: e,
        })?;
        self.sealed.retain(|p| p != path);
        self.bytes = self.bytes.saturating_sub(len);
        Ok(())
    }
}

/// Reads a sealed segment's records; damaged ones are listed, not fatal.
pub(crate) fn read_segment(path: &Path) -> Result<Segment, HistorianError> {
    let data = std::fs::read(path).map_err(|e| HistorianError::Spool {
        path: path.to_path_buf(),
        source: e,
    })?;
    let mut batches = Vec::new();
    let mut damage = Vec::new();
    let mut at = 0usize;
    while at < data.len() {
        let Some(header) = data.get(at..at + HEADER) else {
            damage.push(format!(
                "{}: torn record header at byte {at} ({} bytes left), rest of file skipped",
                path.display(),
                data.len() - at
            ));
            break;
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let sum = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let Some(payload) = data.get(at + HEADER..at + HEADER + len) else {
            damage.push(format!(
                "{}: torn record at byte {at} (length {len}, {} bytes left), rest of file skipped",
                path.display(),
                data.len() - at - HEADER
            ));
            break;
        };
        if CASTAGNOLI.checksum(payload) != sum {
            damage.push(format!(
                "{}: record at byte {at} fails its checksum, skipped",
                path.display()
            ));
        } else {
            match decode_payload(payload) {
                Ok(batch) => batches.push(batch),
                Err(why) => damage.push(format!(
                    "{}: record at byte {at} does not parse ({why}), skipped",
                    path.display()
                )),
            }
        }
        at += HEADER + len;
    }
    Ok(Segment {
        path: path.to_path_buf(),
        bytes: data.len() as u64,
        batches,
        damage,
    })
}

fn encode_record(batch: &[Sample]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(4 + batch.len() * 48);
    payload.extend_from_slice(&(batch.len() as u32).to_le_bytes());
    for s in batch {
        let tag = s.tag().as_str().as_bytes();
        payload.extend_from_slice(&(tag.len() as u16).to_le_bytes());
        payload.extend_from_slice(tag);
        payload.extend_from_slice(&s.at().timestamp_micros().to_le_bytes());
        match s.value() {
            Some(v) => {
                payload.push(1);
                payload.extend_from_slice(&v.to_le_bytes());
            }
            None => payload.push(0),
        }
        payload.extend_from_slice(&s.quality().code().to_le_bytes());
    }
    let mut record = Vec::with_capacity(HEADER + payload.len());
    record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    record.extend_from_slice(&CASTAGNOLI.checksum(&payload).to_le_bytes());
    record.extend_from_slice(&payload);
    record
}

/// Reads fixed-size fields off the front of a payload.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!("{n} bytes wanted, {} left", self.0.len()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
}

fn decode_payload(payload: &[u8]) -> Result<Vec<Sample>, String> {
    let mut r = Reader(payload);
    let count = u32::from_le_bytes(r.array()?) as usize;
    let mut batch = Vec::with_capacity(count.min(payload.len() / 19 + 1));
    let mut last_tag: Option<TagName> = None;
    for _ in 0..count {
        let len = u16::from_le_bytes(r.array()?) as usize;
        let name = std::str::from_utf8(r.take(len)?).map_err(|e| e.to_string())?;
        // Batches come grouped by tag often enough that reusing the last
        // parsed name saves most of the parsing.
        let tag = match &last_tag {
            Some(t) if t.as_str() == name => t.clone(),
            _ => TagName::parse(name).map_err(|e| e.to_string())?,
        };
        let at_us = i64::from_le_bytes(r.array()?);
        let at = DateTime::from_timestamp_micros(at_us)
            .ok_or_else(|| format!("{at_us} is not a time in microseconds"))?;
        let value = match r.array::<1>()?[0] {
            0 => None,
            1 => Some(f64::from_le_bytes(r.array()?)),
            other => return Err(format!("has-value byte {other}")),
        };
        let code = i16::from_le_bytes(r.array()?);
        let quality =
            SampleQuality::from_code(code).ok_or_else(|| format!("quality code {code}"))?;
        batch.push(Sample::new(tag.clone(), at, value, quality));
        last_tag = Some(tag);
    }
    if !r.0.is_empty() {
        return Err(format!("{} bytes after the last sample", r.0.len()));
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(tag: &str, s: i64, value: Option<f64>, q: SampleQuality) -> Sample {
        Sample::new(
            TagName::parse(tag).unwrap(),
            DateTime::from_timestamp(1_700_000_000 + s, 123_456_000).unwrap(),
            value,
            q,
        )
    }

    #[test]
    fn records_round_trip_through_a_segment() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        let a = vec![
            sample("L/U/A", 0, Some(1.5), SampleQuality::Good),
            sample("L/U/B", 1, None, SampleQuality::BadTimeout),
        ];
        let b = vec![sample("L/U/A", 2, Some(-3.0), SampleQuality::Uncertain)];
        spool.append(&a).unwrap();
        spool.append(&b).unwrap();
        let path = spool.oldest().unwrap();
        let seg = read_segment(&path).unwrap();
        assert_eq!(seg.batches, vec![a, b]);
        assert!(seg.damage.is_empty());
        assert_eq!(seg.bytes, spool.bytes());
        spool.remove(&path).unwrap();
        assert!(spool.is_empty());
        assert_eq!(spool.bytes(), 0);
    }

    #[test]
    fn a_flipped_byte_skips_only_its_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        let one = vec![sample("L/U/A", 0, Some(1.0), SampleQuality::Good)];
        let two = vec![sample("L/U/A", 1, Some(2.0), SampleQuality::Good)];
        let first = spool.append(&one).unwrap() as usize;
        spool.append(&two).unwrap();
        let path = spool.oldest().unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[first - 1] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
        let seg = read_segment(&path).unwrap();
        assert_eq!(seg.batches, vec![two]);
        assert_eq!(seg.damage.len(), 1);
        assert!(seg.damage[0].contains("checksum"), "{}", seg.damage[0]);
    }

    #[test]
    fn segments_left_by_an_earlier_run_are_drained_first_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        spool
            .append(&[sample("L/U/A", 0, Some(1.0), SampleQuality::Good)])
            .unwrap();
        spool.seal();
        spool
            .append(&[sample("L/U/A", 1, Some(1.0), SampleQuality::Good)])
            .unwrap();
        drop(spool);
        let mut again = Spool::open(dir.path()).unwrap();
        let first = again.oldest().unwrap();
        assert!(first.ends_with("spool-0000000000000001.bin"));
        again.remove(&first).unwrap();
        assert!(
            again
                .oldest()
                .unwrap()
                .ends_with("spool-0000000000000002.bin")
        );
        again.append(&[]).unwrap();
        assert_eq!(again.sealed.len(), 1, "a new run writes to a new segment");
    }
}
