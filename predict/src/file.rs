//! The model file: layout on [`Model::save`].

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use rapidhash::v3::{rapidhash_v3_seeded, RapidSecrets, RapidStreamHasherV3};

use crate::calibrate::Platt;
use crate::model::{Counts, LineItems, Model, MAX_LINE_ITEMS};
use crate::train::{Params, BITS};

const MAGIC: [u8; 8] = *b"PREDICT\0";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const HEADER_LEN: usize = 152;
const CHECKSUM_LEN: usize = 8;
const FLAG_WEIGHTS: u8 = 1;
/// Per line item: length byte and three counts; the id comes on top.
const LINE_ITEM_FIXED: usize = 1 + 3 * 8;
/// The seed of the file checksum.
pub const CHECKSUM_SEED: u64 = 0x6368_6563_6b73_756d;
static CHECKSUM: RapidSecrets = RapidSecrets::seed(CHECKSUM_SEED);

/// Largest file a reader accepts: 24 bits of weights and the most line
/// items with the longest ids (395 MiB).
pub const MAX_FILE_LEN: u64 = (HEADER_LEN
    + (8 << 24)
    + MAX_LINE_ITEMS * (LINE_ITEM_FIXED + crate::MAX_LINE_ITEM_LEN)
    + CHECKSUM_LEN) as u64;

/// Why a model file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("model file is empty")]
    Empty,
    #[error("not a model file (no PREDICT magic)")]
    NotAModel,
    #[error("model file format version {found}; this build reads version {FORMAT_VERSION}")]
    UnsupportedVersion { found: u32 },
    #[error("model file is truncated: {found} bytes of {expected}")]
    Truncated { expected: u64, found: u64 },
    #[error("model file is {found} bytes long but says {declared}")]
    LengthMismatch { declared: u64, found: u64 },
    #[error("model file of {len} bytes; at most {MAX_FILE_LEN} are read")]
    TooLarge { len: u64 },
    #[error("model file fails its checksum (damaged)")]
    Checksum,
    /// A checksummed file that still makes no sense: written by a broken or
    /// hostile writer.
    #[error("model file is malformed: {0}")]
    Malformed(&'static str),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ModelError + '_ {
    move |source| ModelError::Io {
        path: path.to_owned(),
        source,
    }
}

impl Model {
    /// Writes the model to `path` atomically: a temporary file beside it,
    /// fsync'd, renamed over `path`, and the directory fsync'd, so a crash
    /// leaves the old file or the new one and a reader never sees half.
    ///
    /// The file, little-endian throughout:
    ///
    /// | offset | size | field |
    /// | --- | --- | --- |
    /// | 0 | 8 | magic `PREDICT` and a zero byte |
    /// | 8 | 4 | format version, 1 |
    /// | 12 | 1 | flags: bit 0 set if weights follow (clear: priors only) |
    /// | 13 | 1 | bits |
    /// | 14 | 2 | zero |
    /// | 16 | 8 | length of the whole file, checksum included |
    /// | 24 | 8 | feature hash seed |
    /// | 32 | 5 × 8 | alpha, beta, l1, l2, prior strength (f64) |
    /// | 72 | 4 + 4 | hold-out every, hold-out cap (u32) |
    /// | 80 | 2 × 4 | bias of the click and the conversion head (f32) |
    /// | 88 | 4 × 8 | Platt a and b of the click head, then of the conversion head (f64) |
    /// | 120 | 3 × 8 | training impressions, clicks, conversions (u64) |
    /// | 144 | 4 | number of line items (u32) |
    /// | 148 | 4 | zero |
    /// | 152 | 2^bits × 8 | if flag 0: click and conversion weight of each coordinate (f32, f32) |
    /// | … | … | line items, by id: id length (u8), id (UTF-8), impressions, clicks, conversions (u64) |
    /// | end − 8 | 8 | rapidhash v3 (seed [`CHECKSUM_SEED`]) of everything before it |
    ///
    /// [`Model::load`] checks the magic, the version and the length before
    /// it reads the rest (a foreign file of any size costs a header's read),
    /// then the checksum, then every size against the bytes that are there
    /// before allocating for it.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), ModelError> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = path.as_ref();
        let name = path
            .file_name()
            .ok_or_else(|| {
                io_error(path)(io::Error::new(io::ErrorKind::InvalidInput, "names no file"))
            })?
            .to_string_lossy();
        // Unique per process and per save, so two saves at once do not
        // write into one temporary file.
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tmp = path.with_file_name(format!(".{name}.tmp{}-{n}", std::process::id()));
        let written = (|| {
            let mut w = BufWriter::new(File::create(&tmp)?);
            self.write_to(&mut w)?;
            let file = w.into_inner().map_err(io::IntoInnerError::into_error)?;
            file.sync_all()?;
            drop(file);
            std::fs::rename(&tmp, path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_error(path)(e));
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error(dir))
    }

    /// Reads a model file written by [`Model::save`].
    pub fn load(path: impl AsRef<Path>) -> Result<Model, ModelError> {
        let path = path.as_ref();
        let mut file = File::open(path).map_err(io_error(path))?;
        let len = file.metadata().map_err(io_error(path))?.len();
        if len > MAX_FILE_LEN {
            return Err(ModelError::TooLarge { len });
        }
        let mut head = [0u8; HEADER_LEN];
        let got = read_up_to(&mut file, &mut head).map_err(io_error(path))?;
        check_header(&head[..got], len)?;
        let mut bytes = Vec::with_capacity(len as usize);
        bytes.extend_from_slice(&head[..got]);
        // One byte more than announced: a file that grew since is caught
        // by the length check, not read without end.
        file.take(len - got as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io_error(path))?;
        Model::from_bytes(&bytes)
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.file_len() as usize);
        self.write_to(&mut out)
            .unwrap_or_else(|_| unreachable!("writing to a Vec does not fail"));
        out
    }

    fn file_len(&self) -> u64 {
        let ids: usize = self
            .line_items
            .keys()
            .map(|k| LINE_ITEM_FIXED + k.len())
            .sum();
        (HEADER_LEN + 8 * self.weights.len() + ids + CHECKSUM_LEN) as u64
    }

    fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        let mut w = Checksummed {
            inner: w,
            hash: RapidStreamHasherV3::new(&CHECKSUM),
        };
        let p = &self.params;
        let mut h = Vec::with_capacity(HEADER_LEN);
        h.extend_from_slice(&MAGIC);
        h.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        h.push(if self.weights.is_empty() {
            0
        } else {
            FLAG_WEIGHTS
        });
        h.push(p.bits);
        h.extend_from_slice(&[0; 2]);
        h.extend_from_slice(&self.file_len().to_le_bytes());
        h.extend_from_slice(&p.seed.to_le_bytes());
        for x in [p.alpha, p.beta, p.l1, p.l2, p.prior_strength] {
            h.extend_from_slice(&x.to_le_bytes());
        }
        h.extend_from_slice(&p.holdout_every.to_le_bytes());
        h.extend_from_slice(&p.holdout_cap.to_le_bytes());
        for b in self.bias {
            h.extend_from_slice(&b.to_le_bytes());
        }
        for c in &self.calibration {
            h.extend_from_slice(&c.a.to_le_bytes());
            h.extend_from_slice(&c.b.to_le_bytes());
        }
        let t = &self.totals;
        for x in [t.impressions, t.clicks, t.conversions] {
            h.extend_from_slice(&x.to_le_bytes());
        }
        // MAX_LINE_ITEMS fits a u32; the trainer and the reader hold to it.
        h.extend_from_slice(&(self.line_items.len() as u32).to_le_bytes());
        h.extend_from_slice(&[0; 4]);
        debug_assert_eq!(h.len(), HEADER_LEN);
        w.write_all(&h)?;

        let mut buf = Vec::with_capacity(8 * 1024);
        for chunk in self.weights.chunks(1024) {
            buf.clear();
            for [c, v] in chunk {
                buf.extend_from_slice(&c.to_le_bytes());
                buf.extend_from_slice(&v.to_le_bytes());
            }
            w.write_all(&buf)?;
        }

        // Sorted: the same model always writes the same bytes.
        let mut ids: Vec<_> = self.line_items.iter().collect();
        ids.sort_unstable_by_key(|(id, _)| *id);
        for (id, c) in ids {
            buf.clear();
            buf.push(id.len() as u8);
            buf.extend_from_slice(id.as_bytes());
            for x in [c.impressions, c.clicks, c.conversions] {
                buf.extend_from_slice(&x.to_le_bytes());
            }
            w.write_all(&buf)?;
        }
        let sum = w.hash.finish();
        w.inner.write_all(&sum.to_le_bytes())
    }

    /// Reads the bytes of a model file. Never panics, and allocates no more
    /// than `bytes` justify.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, ModelError> {
        check_header(bytes, bytes.len() as u64)?;
        let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        if rapidhash_v3_seeded(body, &CHECKSUM).to_le_bytes() != sum {
            return Err(ModelError::Checksum);
        }
        let mut r = Reader { rest: body };
        r.take::<8>()?; // magic
        r.u32()?; // version
        let flags = r.u8()?;
        if flags & !FLAG_WEIGHTS != 0 {
            return Err(ModelError::Malformed("unknown flags"));
        }
        let bits = r.u8()?;
        r.take::<2>()?;
        r.u64()?; // length, checked
        let seed = r.u64()?;
        let [alpha, beta, l1, l2, prior_strength] = [(); 5].map(|()| r.f64());
        let params = Params {
            bits,
            alpha: alpha?,
            beta: beta?,
            l1: l1?,
            l2: l2?,
            seed,
            holdout_every: r.u32()?,
            holdout_cap: r.u32()?,
            prior_strength: prior_strength?,
        };
        if params.validate().is_err() {
            return Err(ModelError::Malformed("parameters out of range"));
        }
        let bias = [r.f32()?, r.f32()?];
        let calibration = [
            Platt {
                a: r.f64()?,
                b: r.f64()?,
            },
            Platt {
                a: r.f64()?,
                b: r.f64()?,
            },
        ];
        if !bias.iter().all(|b| b.is_finite())
            || !calibration
                .iter()
                .all(|c| c.a.is_finite() && c.b.is_finite())
        {
            return Err(ModelError::Malformed("bias or calibration not finite"));
        }
        let totals = r.counts()?;
        let n_items = r.u32()? as usize;
        r.take::<4>()?;

        let weights = if flags & FLAG_WEIGHTS != 0 {
            let n = 1usize << bits;
            let raw = r.slice(8 * n)?;
            let mut weights = Vec::with_capacity(n);
            for w in raw.chunks_exact(8) {
                let c = f32::from_le_bytes([w[0], w[1], w[2], w[3]]);
                let v = f32::from_le_bytes([w[4], w[5], w[6], w[7]]);
                // One NaN weight would make NaN bids.
                if !c.is_finite() || !v.is_finite() {
                    return Err(ModelError::Malformed("weight not finite"));
                }
                weights.push([c, v]);
            }
            weights
        } else {
            Vec::new()
        };

        if n_items > MAX_LINE_ITEMS {
            return Err(ModelError::Malformed("too many line items"));
        }
        if n_items * LINE_ITEM_FIXED > r.rest.len() {
            return Err(ModelError::Malformed("line items do not fit"));
        }
        let mut line_items = LineItems::default();
        line_items.reserve(n_items);
        let mut last: Option<&str> = None;
        for _ in 0..n_items {
            let len = usize::from(r.u8()?);
            let id = std::str::from_utf8(r.slice(len)?)
                .map_err(|_| ModelError::Malformed("line item id not UTF-8"))?;
            if last.is_some_and(|l| l >= id) {
                return Err(ModelError::Malformed("line items not sorted or repeated"));
            }
            last = Some(id);
            line_items.insert(id.into(), r.counts()?);
        }
        if !r.rest.is_empty() {
            return Err(ModelError::Malformed("bytes after the line items"));
        }
        Ok(Model::from_parts(
            params,
            weights,
            bias,
            calibration,
            totals,
            line_items,
        ))
    }
}

/// Magic, version and length, on the first bytes of a file of `len` bytes.
fn check_header(head: &[u8], len: u64) -> Result<(), ModelError> {
    if head.is_empty() {
        return Err(ModelError::Empty);
    }
    let magic = &head[..head.len().min(MAGIC.len())];
    if magic != &MAGIC[..magic.len()] {
        return Err(ModelError::NotAModel);
    }
    let min = (HEADER_LEN + CHECKSUM_LEN) as u64;
    if head.len() < 12 {
        return Err(ModelError::Truncated {
            expected: min,
            found: len,
        });
    }
    let found = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    if found != FORMAT_VERSION {
        return Err(ModelError::UnsupportedVersion { found });
    }
    if head.len() < 24 || len < min {
        return Err(ModelError::Truncated {
            expected: min,
            found: len,
        });
    }
    let mut declared = [0u8; 8];
    declared.copy_from_slice(&head[16..24]);
    let declared = u64::from_le_bytes(declared);
    if declared > MAX_FILE_LEN {
        return Err(ModelError::TooLarge { len: declared });
    }
    if len < declared {
        return Err(ModelError::Truncated {
            expected: declared,
            found: len,
        });
    }
    if len != declared {
        return Err(ModelError::LengthMismatch {
            declared,
            found: len,
        });
    }
    Ok(())
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Hashes what it writes.
struct Checksummed<'w, W> {
    inner: &'w mut W,
    hash: RapidStreamHasherV3<'static>,
}

impl<W: Write> Checksummed<'_, W> {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hash.write(bytes);
        self.inner.write_all(bytes)
    }
}

/// Reads fields off the front of a byte slice; running out is malformed
/// (the length and checksum were right, so the writer was wrong).
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn slice(&mut self, n: usize) -> Result<&'a [u8], ModelError> {
        if n > self.rest.len() {
            return Err(ModelError::Malformed("a field runs past the end"));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], ModelError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.slice(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, ModelError> {
        Ok(self.take::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, ModelError> {
        self.take().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, ModelError> {
        self.take().map(u64::from_le_bytes)
    }

    fn f32(&mut self) -> Result<f32, ModelError> {
        self.take().map(f32::from_le_bytes)
    }

    fn f64(&mut self) -> Result<f64, ModelError> {
        self.take().map(f64::from_le_bytes)
    }

    fn counts(&mut self) -> Result<Counts, ModelError> {
        let c = Counts {
            impressions: self.u64()?,
            clicks: self.u64()?,
            conversions: self.u64()?,
        };
        if c.clicks > c.impressions || c.conversions > c.impressions {
            return Err(ModelError::Malformed(
                "more clicks or conversions than impressions",
            ));
        }
        Ok(c)
    }
}

const _: () = assert!(MAX_LINE_ITEMS <= u32::MAX as usize);
const _: () = assert!(*BITS.end() as u32 <= usize::BITS - 4);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_streamed_checksum_is_the_bulk_one() {
        // The writer hashes as it writes, the reader all at once.
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut stream = RapidStreamHasherV3::new(&CHECKSUM);
        for chunk in data.chunks(37) {
            stream.write(chunk);
        }
        assert_eq!(stream.finish(), rapidhash_v3_seeded(&data, &CHECKSUM));
    }

    #[test]
    fn the_header_is_as_documented() {
        let bytes = Model::priors_only().to_bytes();
        assert_eq!(bytes.len(), HEADER_LEN + CHECKSUM_LEN);
        assert_eq!(&bytes[..8], b"PREDICT\0");
        assert_eq!(bytes[8..12], 1u32.to_le_bytes());
        assert_eq!(bytes[12], 0, "no weights");
        assert_eq!(bytes[16..24], (bytes.len() as u64).to_le_bytes());
        assert_eq!(bytes[24..32], crate::DEFAULT_SEED.to_le_bytes());
    }

    #[test]
    fn max_file_len_is_395_mib() {
        assert_eq!(MAX_FILE_LEN >> 20, 395);
    }
}
