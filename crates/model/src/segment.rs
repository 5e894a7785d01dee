//! Segment files: zstd-compressed JSON Lines of exchanges (`*.jsonl.zst`).
//!
//! A segment is written under a temporary name and renamed into place when
//! finished, so a reader never sees a partial segment.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use crate::jsonl::{self, DecodeError};
use crate::view::ExchangeView;
use crate::Exchange;

/// File name suffix of finished segments.
pub const SUFFIX: &str = ".jsonl.zst";

/// zstd level for segments that are stored for good (the forwarder's,
/// snapshots, imports).
pub const ZSTD_LEVEL: i32 = 3;

/// zstd level where capture shares a core with the app: the proxy's own
/// segments and its batches to a forwarder, which the forwarder stores again
/// at [`ZSTD_LEVEL`]. A fast (negative) level: on exchange-shaped JSON
/// Lines with JSON bodies, `zstd -b --fast=2 -B524288` compressed 1,114
/// MB/s per core against 645 at level 1, and the output was 1.55x level
/// 1's (4.7x smaller than the lines rather than 7.3x). CPU on the app's
/// core is what capture must not take; bytes on local disk are cheap.
pub const CAPTURE_ZSTD_LEVEL: i32 = -2;

/// Error writing or reading a segment.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    /// The file system refused.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// Which file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A record inside the segment was bad.
    #[error("{path}: {source}")]
    Decode {
        /// Which file.
        path: PathBuf,
        /// The decoding error.
        #[source]
        source: DecodeError,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SegmentError + 'a {
    move |source| SegmentError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// Lines are gathered into a buffer of this size and each full buffer is
/// compressed as one zstd frame; a segment is the frames one after another
/// (a valid zstd stream, which every zstd reader decodes whole). A
/// streaming encoder fed line by line stays on zstd's slower
/// non-contiguous-window path: the proxy's capture sink spent 8.8 µs per
/// 1.7 KB exchange that way against 7.8 µs with frames. Frames of 512 KiB
/// come out 2-4% larger than one long frame on exchange-shaped lines.
const STAGE: usize = 512 << 10;

/// Writes one segment; nothing is visible at `path` until [`finish`](Self::finish).
pub struct SegmentWriter {
    path: PathBuf,
    tmp: PathBuf,
    file: File,
    zstd: zstd::bulk::Compressor<'static>,
    /// Encoded lines not yet compressed (see [`STAGE`]).
    staged: Vec<u8>,
    /// Whether a frame has been written yet.
    started: bool,
    count: u64,
    raw_bytes: u64,
}

impl std::fmt::Debug for SegmentWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentWriter")
            .field("path", &self.path)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl SegmentWriter {
    /// Starts a segment that will appear at `path` (which should end in
    /// [`SUFFIX`]) once finished.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self, SegmentError> {
        Self::create_with_level(path, ZSTD_LEVEL)
    }

    /// [`SegmentWriter::create`] at zstd level `level`.
    pub fn create_with_level(path: impl Into<PathBuf>, level: i32) -> Result<Self, SegmentError> {
        let path = path.into();
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let zstd = zstd::bulk::Compressor::new(level).map_err(io("start zstd for", &tmp))?;
        let file = File::create(&tmp).map_err(io("create", &tmp))?;
        Ok(Self {
            path,
            tmp,
            file,
            zstd,
            staged: Vec::new(),
            started: false,
            count: 0,
            raw_bytes: 0,
        })
    }

    /// Appends one exchange.
    pub fn append(&mut self, ex: &Exchange) -> Result<(), SegmentError> {
        self.append_view(&ex.view())
    }

    /// Appends one exchange given as its [`ExchangeView`].
    pub fn append_view(&mut self, ex: &ExchangeView<'_>) -> Result<(), SegmentError> {
        let before = self.staged.len();
        jsonl::encode_view_into(&mut self.staged, ex);
        self.count += 1;
        self.raw_bytes += (self.staged.len() - before) as u64;
        if self.staged.len() >= STAGE {
            self.write_frame()?;
        }
        Ok(())
    }

    /// Compresses the staged lines as one frame and writes it.
    fn write_frame(&mut self) -> Result<(), SegmentError> {
        let frame = self
            .zstd
            .compress(&self.staged)
            .map_err(io("compress for", &self.tmp))?;
        self.file
            .write_all(&frame)
            .map_err(io("write", &self.tmp))?;
        self.started = true;
        self.staged.clear();
        // One large body must not pin its size for the segment's life.
        if self.staged.capacity() > 4 * STAGE {
            self.staged.shrink_to(STAGE + (64 << 10));
        }
        Ok(())
    }

    /// Exchanges appended so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Uncompressed bytes appended so far.
    pub fn raw_bytes(&self) -> u64 {
        self.raw_bytes
    }

    /// Compresses what is staged, syncs and renames the segment into place;
    /// returns its path. A segment with no exchange is one empty frame.
    pub fn finish(mut self) -> Result<PathBuf, SegmentError> {
        if !self.staged.is_empty() || !self.started {
            self.write_frame()?;
        }
        self.file.sync_all().map_err(io("sync", &self.tmp))?;
        std::fs::rename(&self.tmp, &self.path).map_err(io("rename into place", &self.path))?;
        Ok(self.path)
    }
}

/// Encodes exchanges as one in-memory segment (zstd JSON Lines).
pub fn encode(exchanges: &[Exchange]) -> Vec<u8> {
    encode_with_level(exchanges, ZSTD_LEVEL)
}

/// [`encode`] at zstd level `level`.
pub fn encode_with_level(exchanges: &[Exchange], level: i32) -> Vec<u8> {
    let mut raw = Vec::with_capacity(exchanges.len() * 512);
    for ex in exchanges {
        jsonl::encode_into(&mut raw, ex);
    }
    // Compressing into memory cannot fail for valid levels.
    zstd::bulk::compress(&raw, level).unwrap_or_default()
}

/// Error decoding an in-memory segment with [`decode`].
#[derive(Debug, thiserror::Error)]
pub enum BytesError {
    /// The bytes are not a valid zstd stream.
    #[error("segment is not valid zstd: {0}")]
    Decompress(#[source] std::io::Error),
    /// The segment decompresses to more than the caller allowed.
    #[error("segment decompresses to more than {max_len} bytes")]
    TooLarge {
        /// The limit that was passed to [`decode`].
        max_len: usize,
    },
    /// A record inside the segment was bad.
    #[error("bad record in segment: {0}")]
    Record(#[source] DecodeError),
}

/// Decodes an in-memory segment (as [`encode`] makes, or as fetched from an
/// object store), stopping at the first bad record. At most `max_len`
/// decompressed bytes are produced, so a small hostile input cannot
/// exhaust memory.
pub fn decode(bytes: &[u8], max_len: usize) -> Result<Vec<Exchange>, BytesError> {
    let dec = zstd::stream::read::Decoder::with_buffer(bytes).map_err(BytesError::Decompress)?;
    let mut raw = Vec::new();
    // One byte past the limit tells "exactly max_len" from "more".
    let limit = u64::try_from(max_len).unwrap_or(u64::MAX).saturating_add(1);
    dec.take(limit)
        .read_to_end(&mut raw)
        .map_err(BytesError::Decompress)?;
    if raw.len() > max_len {
        return Err(BytesError::TooLarge { max_len });
    }
    jsonl::read(raw.as_slice())
        .map(|r| r.map_err(BytesError::Record))
        .collect()
}

/// Reads every exchange of a segment file, stopping at the first bad record.
pub fn read_file(path: &Path) -> Result<Vec<Exchange>, SegmentError> {
    let file = File::open(path).map_err(io("open", path))?;
    let dec = zstd::stream::read::Decoder::new(file).map_err(io("start zstd stream in", path))?;
    jsonl::read(BufReader::new(dec))
        .map(|r| {
            r.map_err(|source| match source {
                DecodeError::Io(e) => SegmentError::Io {
                    op: "decompress",
                    path: path.to_owned(),
                    source: e,
                },
                source => SegmentError::Decode {
                    path: path.to_owned(),
                    source,
                },
            })
        })
        .collect()
}

/// Finished segment files below `dir` (recursively), sorted by path.
pub fn list(dir: &Path) -> Result<Vec<PathBuf>, SegmentError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(io("list", &d))? {
            let entry = entry.map_err(io("list", &d))?;
            let p = entry.path();
            let ft = entry.file_type().map_err(io("stat", &p))?;
            if ft.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(SUFFIX) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Reads every exchange in every segment below `dir`, ordered by start time.
pub fn read_dir(dir: &Path) -> Result<Vec<Exchange>, SegmentError> {
    let mut all = Vec::new();
    for p in list(dir)? {
        all.extend(read_file(&p)?);
    }
    all.sort_by(|a, b| a.start.cmp(&b.start).then(a.id.cmp(&b.id)));
    Ok(all)
}
