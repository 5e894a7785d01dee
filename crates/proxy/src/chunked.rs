//! Incremental reader of HTTP/1.1 chunked transfer coding framing (RFC 9112
//! §7.1) for bodies the proxy relays to the peer unchanged.
//!
//! Hand-written rather than borrowed: hyper's chunked decoder is private to
//! hyper, and `httparse::parse_chunk_size` parses one size line out of a
//! contiguous buffer and nothing more. The relay needs a decoder that resumes
//! across arbitrary read boundaries (inside a size line, inside data, between
//! CR and LF, inside trailers), says exactly where the message ends so the
//! bytes after it go to the next message, and reports payload as ranges of
//! the caller's buffer so the capture copies them without decoding into a
//! buffer of its own.
//!
//! Strictness: the bytes we frame are the bytes the peer frames, so reading
//! the framing more leniently than the peer would let a sender make the two
//! disagree on where a message ends (request smuggling), while reading it
//! more strictly only fails the connection. So every line must end in CR LF:
//! a bare LF, which some lenient parsers accept, is an error here, as it is
//! in the stricter servers. After the hex digits only spaces or tabs, `;` (a
//! chunk extension) or CR may follow; spaces or tabs directly before CR are
//! accepted, as hyper and nginx do.

use std::ops::Range;

/// Why chunked framing could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ChunkError {
    /// No hex digits, a non-hex digit, or a byte not allowed in a chunk
    /// extension (NUL).
    #[error("invalid chunk size line")]
    InvalidSizeLine,
    /// A chunk size line ended by a bare LF, or a CR not followed by LF.
    #[error("chunk size line not ended by CRLF")]
    SizeLineEnding,
    /// More hex digits than fit a `u64`.
    #[error("chunk size overflows 64 bits")]
    SizeOverflow,
    /// The size line, without its CRLF, exceeds the configured limit.
    #[error("chunk size line longer than {0} bytes")]
    SizeLineTooLong(usize),
    /// The chunk data was not followed by exactly CR LF.
    #[error("missing CRLF after chunk data")]
    MissingDataCrlf,
    /// A trailer line (or the final empty line) ended by a bare LF, or a CR
    /// not followed by LF.
    #[error("trailer line not ended by CRLF")]
    TrailerLineEnding,
    /// A NUL byte in a trailer field line.
    #[error("NUL byte in trailer section")]
    TrailerNul,
    /// The trailer field lines exceed the configured limit.
    #[error("trailer section longer than {0} bytes")]
    TrailersTooLong(usize),
}

/// Where the decoder is in the framing. Every state but `Data` and `Done`
/// advances one byte at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the hex digits of a size; `len` counts the size line so far.
    Size {
        value: u64,
        digits: bool,
        len: usize,
    },
    /// Spaces or tabs after the digits.
    SizeWs { value: u64, len: usize },
    /// Inside the chunk extensions, up to CR.
    Ext { value: u64, len: usize },
    /// Read the CR that ends a size line.
    SizeLf { value: u64 },
    /// Inside chunk data, `remaining` bytes to go (never zero).
    Data { remaining: u64 },
    /// After chunk data, expecting CR.
    DataCr,
    /// After chunk data and CR, expecting LF.
    DataLf,
    /// At the start of a trailer field line or of the final empty line.
    TrailerStart,
    /// Inside a trailer field line.
    TrailerLine,
    /// Read the CR that ends a trailer field line.
    TrailerLf,
    /// Read the CR of the final empty line.
    EndLf,
    /// The message is complete.
    Done,
}

const FIRST_SIZE: State = State::Size {
    value: 0,
    digits: false,
    len: 0,
};

/// Incremental chunked framing decoder for one message.
#[derive(Debug)]
pub(crate) struct Chunked {
    state: State,
    failed: Option<ChunkError>,
    trailers: Vec<u8>,
    max_line: usize,
    max_trailers: usize,
}

impl Chunked {
    /// A decoder that accepts chunk-size lines (with extensions) up to
    /// `max_line` bytes and a trailer section up to `max_trailers` bytes.
    ///
    /// Both limits exclude line terminators where a line ends the section:
    /// `max_line` counts the size line without its CRLF, `max_trailers`
    /// counts the field lines (each with its CRLF) as [`Chunked::trailers`]
    /// returns them, without the final empty line.
    pub(crate) fn new(max_line: usize, max_trailers: usize) -> Self {
        Self {
            state: FIRST_SIZE,
            failed: None,
            trailers: Vec::new(),
            max_line,
            max_trailers,
        }
    }

    /// Reads framing from `buf` (the next bytes of the stream, which may
    /// split anywhere: inside a size line, inside data, between CR and LF,
    /// inside trailers). Returns how many bytes of `buf` belong to this
    /// message; it is `buf.len()` unless the message ended inside `buf`, in
    /// which case the rest belongs to the next message (and once done, every
    /// later call returns 0). Calls `data` with each range (relative to
    /// `buf`) of chunk payload bytes, in order, never with an empty range.
    /// After an error the decoder stays failed (later calls return the same
    /// error); ranges passed to `data` before the error in the same call
    /// were valid payload.
    pub(crate) fn feed(
        &mut self,
        buf: &[u8],
        mut data: impl FnMut(Range<usize>),
    ) -> Result<usize, ChunkError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let mut pos = 0;
        while pos < buf.len() {
            match self.state {
                State::Done => break,
                State::Data { remaining } => {
                    // One slice per chunk per call, whatever its length.
                    let avail = buf.len() - pos;
                    let n = usize::try_from(remaining).map_or(avail, |r| r.min(avail));
                    data(pos..pos + n);
                    pos += n;
                    // `n <= remaining`, so this cannot wrap.
                    self.state = match remaining - n as u64 {
                        0 => State::DataCr,
                        remaining => State::Data { remaining },
                    };
                }
                state => {
                    let Some(&b) = buf.get(pos) else { break };
                    pos += 1;
                    match self.step(state, b) {
                        Ok(next) => self.state = next,
                        Err(e) => {
                            self.failed = Some(e.clone());
                            return Err(e);
                        }
                    }
                }
            }
        }
        Ok(pos)
    }

    /// True once the last-chunk and the trailer section (possibly empty) and
    /// its final CRLF were read.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The raw trailer field lines (e.g. `b"grpc-status: 0\r\nx-a: b\r\n"`),
    /// without the final empty line; empty when there were none. Meaningful
    /// once done.
    pub(crate) fn trailers(&self) -> &[u8] {
        &self.trailers
    }

    /// The state after byte `b` in a byte-at-a-time `state`.
    fn step(&mut self, state: State, b: u8) -> Result<State, ChunkError> {
        Ok(match state {
            State::Size { value, digits, len } => match char::from(b).to_digit(16) {
                Some(d) => {
                    let len = self.size_line_byte(len)?;
                    let value = value
                        .checked_mul(16)
                        .and_then(|v| v.checked_add(u64::from(d)))
                        .ok_or(ChunkError::SizeOverflow)?;
                    State::Size {
                        value,
                        digits: true,
                        len,
                    }
                }
                None if digits => self.after_digits(value, len, b)?,
                None => return Err(ChunkError::InvalidSizeLine),
            },
            State::SizeWs { value, len } => self.after_digits(value, len, b)?,
            State::Ext { value, len } => match b {
                b'\r' => State::SizeLf { value },
                b'\n' => return Err(ChunkError::SizeLineEnding),
                0 => return Err(ChunkError::InvalidSizeLine),
                _ => State::Ext {
                    value,
                    len: self.size_line_byte(len)?,
                },
            },
            State::SizeLf { value } => match (b, value) {
                (b'\n', 0) => State::TrailerStart,
                (b'\n', remaining) => State::Data { remaining },
                _ => return Err(ChunkError::SizeLineEnding),
            },
            State::DataCr => match b {
                b'\r' => State::DataLf,
                _ => return Err(ChunkError::MissingDataCrlf),
            },
            State::DataLf => match b {
                b'\n' => FIRST_SIZE,
                _ => return Err(ChunkError::MissingDataCrlf),
            },
            State::TrailerStart => match b {
                b'\r' => State::EndLf,
                _ => {
                    self.trailer_field_byte(b)?;
                    State::TrailerLine
                }
            },
            State::TrailerLine => match b {
                b'\r' => {
                    self.push_trailer(b)?;
                    State::TrailerLf
                }
                _ => {
                    self.trailer_field_byte(b)?;
                    State::TrailerLine
                }
            },
            State::TrailerLf => match b {
                b'\n' => {
                    self.push_trailer(b)?;
                    State::TrailerStart
                }
                _ => return Err(ChunkError::TrailerLineEnding),
            },
            State::EndLf => match b {
                b'\n' => State::Done,
                _ => return Err(ChunkError::TrailerLineEnding),
            },
            // `feed` handles these itself and never steps them; leaving the
            // state as it is keeps this total without a panic.
            State::Data { .. } | State::Done => state,
        })
    }

    /// The state after byte `b` following the digits (and maybe spaces or
    /// tabs) of a size line.
    fn after_digits(&self, value: u64, len: usize, b: u8) -> Result<State, ChunkError> {
        Ok(match b {
            b' ' | b'\t' => State::SizeWs {
                value,
                len: self.size_line_byte(len)?,
            },
            b';' => State::Ext {
                value,
                len: self.size_line_byte(len)?,
            },
            b'\r' => State::SizeLf { value },
            b'\n' => return Err(ChunkError::SizeLineEnding),
            _ => return Err(ChunkError::InvalidSizeLine),
        })
    }

    /// Counts one more byte of the size line against `max_line`.
    fn size_line_byte(&self, len: usize) -> Result<usize, ChunkError> {
        let len = len.saturating_add(1);
        if len > self.max_line {
            return Err(ChunkError::SizeLineTooLong(self.max_line));
        }
        Ok(len)
    }

    /// Keeps a byte of a trailer field line other than its CR LF.
    fn trailer_field_byte(&mut self, b: u8) -> Result<(), ChunkError> {
        match b {
            b'\n' => Err(ChunkError::TrailerLineEnding),
            0 => Err(ChunkError::TrailerNul),
            _ => self.push_trailer(b),
        }
    }

    fn push_trailer(&mut self, b: u8) -> Result<(), ChunkError> {
        if self.trailers.len() >= self.max_trailers {
            return Err(ChunkError::TrailersTooLong(self.max_trailers));
        }
        self.trailers.push(b);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX_LINE: usize = 64;
    const MAX_TRAILERS: usize = 256;

    const SAMPLE: &[u8] = b"4;name=value\r\nWiki\r\n5 ; a ; b=\"q v\"\r\npedia\r\n\
        e\t;x\r\n in\r\n\r\nchunks.\r\n0000;last\r\ngrpc-status: 0\r\nx-a: b\r\n\r\n";
    const SAMPLE_PAYLOAD: &[u8] = b"Wikipedia in\r\n\r\nchunks.";
    const SAMPLE_TRAILERS: &[u8] = b"grpc-status: 0\r\nx-a: b\r\n";

    /// What a decoder made of a stream fed in pieces.
    #[derive(Debug, PartialEq, Eq)]
    struct Decoded {
        consumed: usize,
        payload: Vec<u8>,
        trailers: Vec<u8>,
        done: bool,
    }

    /// Feeds `pieces` in order to `dec`, checking the contract of each call.
    fn decode_with<'a>(
        dec: &mut Chunked,
        pieces: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Decoded, ChunkError> {
        let mut consumed = 0;
        let mut payload = Vec::new();
        for piece in pieces {
            let mut end = 0;
            let n = dec.feed(piece, |r| {
                assert!(!r.is_empty() && r.start >= end, "{r:?} after {end}");
                end = r.end;
                payload.extend_from_slice(&piece[r]);
            })?;
            assert!(end <= n && n <= piece.len());
            assert!(n == piece.len() || dec.is_done());
            consumed += n;
        }
        Ok(Decoded {
            consumed,
            payload,
            trailers: dec.trailers().to_vec(),
            done: dec.is_done(),
        })
    }

    fn decode<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> Result<Decoded, ChunkError> {
        decode_with(&mut Chunked::new(MAX_LINE, MAX_TRAILERS), pieces)
    }

    /// The result of feeding `stream` whole, after checking that byte by
    /// byte and every 2-way split give the same.
    fn decode_all_splits(
        max_line: usize,
        max_trailers: usize,
        stream: &[u8],
    ) -> Result<Decoded, ChunkError> {
        let whole = decode_with(&mut Chunked::new(max_line, max_trailers), [stream]);
        let bytes = decode_with(&mut Chunked::new(max_line, max_trailers), stream.chunks(1));
        assert_eq!(bytes, whole, "byte by byte");
        for at in 0..=stream.len() {
            let (a, b) = stream.split_at(at);
            let split = decode_with(&mut Chunked::new(max_line, max_trailers), [a, b]);
            assert_eq!(split, whole, "split at {at}");
        }
        whole
    }

    fn assert_rejects(stream: &[u8], expected: ChunkError) {
        assert_rejects_with(MAX_LINE, MAX_TRAILERS, stream, expected);
    }

    fn assert_rejects_with(
        max_line: usize,
        max_trailers: usize,
        stream: &[u8],
        expected: ChunkError,
    ) {
        assert_eq!(
            decode_all_splits(max_line, max_trailers, stream),
            Err(expected),
            "{:?}",
            String::from_utf8_lossy(stream)
        );
    }

    #[test]
    fn decodes_extensions_and_trailers() {
        let got = decode([SAMPLE]).unwrap();
        assert_eq!(
            got,
            Decoded {
                consumed: SAMPLE.len(),
                payload: SAMPLE_PAYLOAD.to_vec(),
                trailers: SAMPLE_TRAILERS.to_vec(),
                done: true,
            }
        );
    }

    #[test]
    fn decodes_empty_body_without_trailers() {
        let got = decode([&b"0\r\n\r\n"[..]]).unwrap();
        assert_eq!((got.consumed, got.done), (5, true));
        assert!(got.payload.is_empty() && got.trailers.is_empty());
        // Spaces or tabs before CR, and upper-case hex with leading zeros.
        let got = decode([&b"00A \t\r\n0123456789\r\n0\r\n\r\n"[..]]).unwrap();
        assert_eq!(got.payload, b"0123456789");
        assert!(got.done);
    }

    #[test]
    fn stops_at_message_end_and_leaves_the_rest() {
        let mut stream = SAMPLE.to_vec();
        stream.extend_from_slice(b"GET /next HTTP/1.1\r\n\r\n");
        let mut dec = Chunked::new(MAX_LINE, MAX_TRAILERS);
        let mut payload = Vec::new();
        let n = dec
            .feed(&stream, |r| payload.extend_from_slice(&stream[r]))
            .unwrap();
        assert_eq!(n, SAMPLE.len());
        assert!(dec.is_done());
        assert_eq!(payload, SAMPLE_PAYLOAD);
        assert_eq!(dec.trailers(), SAMPLE_TRAILERS);
        // Done: nothing more belongs to this message.
        assert_eq!(dec.feed(&stream[n..], |_| panic!("no payload")), Ok(0));
        assert_eq!(dec.feed(b"", |_| panic!("no payload")), Ok(0));
    }

    #[test]
    fn every_split_point_gives_the_same_result() {
        let mut stream = SAMPLE.to_vec();
        stream.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        let got = decode_all_splits(MAX_LINE, MAX_TRAILERS, &stream).unwrap();
        assert_eq!(got.consumed, SAMPLE.len());
        assert_eq!(got.payload, SAMPLE_PAYLOAD);
        assert_eq!(got.trailers, SAMPLE_TRAILERS);
        // Cut short anywhere: not done, same payload as far as it goes.
        for at in 0..SAMPLE.len() {
            let got = decode([&SAMPLE[..at]]).unwrap();
            assert_eq!(got.consumed, at);
            assert!(!got.done, "done after {at} bytes");
            assert!(SAMPLE_PAYLOAD.starts_with(&got.payload));
        }
    }

    #[test]
    fn rejects_bad_hex() {
        assert_rejects(b"zz\r\n", ChunkError::InvalidSizeLine);
        assert_rejects(b"4x\r\nWiki\r\n", ChunkError::InvalidSizeLine);
        assert_rejects(b"+4\r\nWiki\r\n", ChunkError::InvalidSizeLine);
        assert_rejects(b"0x4\r\nWiki\r\n", ChunkError::InvalidSizeLine);
        assert_rejects(b"1 2\r\nab\r\n", ChunkError::InvalidSizeLine);
        assert_rejects(b"4;a\0b\r\nWiki\r\n", ChunkError::InvalidSizeLine);
    }

    #[test]
    fn rejects_empty_size() {
        assert_rejects(b"\r\n", ChunkError::InvalidSizeLine);
        assert_rejects(b";ext\r\n", ChunkError::InvalidSizeLine);
        assert_rejects(b" 4\r\nWiki\r\n", ChunkError::InvalidSizeLine);
        assert_rejects(b"4\r\nWiki\r\n\r\n", ChunkError::InvalidSizeLine);
    }

    #[test]
    fn rejects_bare_lf() {
        assert_rejects(b"4\nWiki\r\n0\r\n\r\n", ChunkError::SizeLineEnding);
        assert_rejects(b"4;a=b\nWiki\r\n", ChunkError::SizeLineEnding);
        assert_rejects(b"4 \nWiki\r\n", ChunkError::SizeLineEnding);
        assert_rejects(b"4\rWiki\r\n", ChunkError::SizeLineEnding);
        assert_rejects(b"0\r\nx: y\n\r\n", ChunkError::TrailerLineEnding);
        assert_rejects(b"0\r\n\n", ChunkError::TrailerLineEnding);
        assert_rejects(b"0\r\n\rx", ChunkError::TrailerLineEnding);
        assert_rejects(b"0\r\nx: y\rz\r\n\r\n", ChunkError::TrailerLineEnding);
    }

    #[test]
    fn rejects_missing_crlf_after_data() {
        assert_rejects(b"4\r\nWikiX\r\n", ChunkError::MissingDataCrlf);
        assert_rejects(b"4\r\nWiki\n0\r\n\r\n", ChunkError::MissingDataCrlf);
        assert_rejects(b"4\r\nWiki\rX", ChunkError::MissingDataCrlf);
        assert_rejects(b"4\r\nWiki0\r\n\r\n", ChunkError::MissingDataCrlf);
    }

    #[test]
    fn rejects_size_overflow() {
        assert_rejects(b"10000000000000000\r\n", ChunkError::SizeOverflow);
        assert_rejects(b"fffffffffffffffff;x\r\n", ChunkError::SizeOverflow);
        // The largest size fits, as do leading zeros before it.
        let got = decode([&b"0000ffffffffffffffff\r\nabc"[..]]).unwrap();
        assert_eq!(
            (got.consumed, &got.payload[..], got.done),
            (25, &b"abc"[..], false)
        );
    }

    #[test]
    fn rejects_size_line_too_long() {
        // Exactly `max_line` bytes before CRLF is fine.
        let got = decode_all_splits(8, 0, b"1;abcdef\r\nx\r\n0000000\t\r\n\r\n").unwrap();
        assert!(got.done);
        assert_rejects_with(8, 0, b"1;abcdefg\r\nx\r\n", ChunkError::SizeLineTooLong(8));
        assert_rejects_with(8, 0, b"000000001\r\nx\r\n", ChunkError::SizeLineTooLong(8));
        assert_rejects_with(8, 0, b"1       \t\r\n", ChunkError::SizeLineTooLong(8));
        assert_rejects_with(0, 0, b"0\r\n\r\n", ChunkError::SizeLineTooLong(0));
        assert_eq!(
            ChunkError::SizeLineTooLong(8).to_string(),
            "chunk size line longer than 8 bytes"
        );
    }

    #[test]
    fn rejects_trailers_too_long() {
        let line = b"x-a: 12345678\r\n";
        let mut fits = b"0\r\n".to_vec();
        fits.extend_from_slice(line);
        fits.extend_from_slice(b"\r\n");
        let got = decode_all_splits(MAX_LINE, line.len(), &fits).unwrap();
        assert_eq!((&got.trailers[..], got.done), (&line[..], true));
        assert_rejects_with(
            MAX_LINE,
            line.len() - 1,
            &fits,
            ChunkError::TrailersTooLong(line.len() - 1),
        );
        // No trailers fit in a zero limit; the final empty line does not count.
        assert!(decode_all_splits(MAX_LINE, 0, b"0\r\n\r\n").unwrap().done);
        assert_rejects_with(
            MAX_LINE,
            0,
            b"0\r\nx\r\n\r\n",
            ChunkError::TrailersTooLong(0),
        );
    }

    #[test]
    fn rejects_nul_in_trailers() {
        assert_rejects(b"0\r\nx\0: y\r\n\r\n", ChunkError::TrailerNul);
        assert_rejects(b"0\r\n\0\r\n\r\n", ChunkError::TrailerNul);
    }

    #[test]
    fn errors_are_sticky() {
        let mut dec = Chunked::new(MAX_LINE, MAX_TRAILERS);
        assert_eq!(dec.feed(b"4\r\nWi", |_| {}), Ok(5));
        assert_eq!(dec.feed(b"kiX", |_| {}), Err(ChunkError::MissingDataCrlf));
        assert_eq!(
            dec.feed(b"0\r\n\r\n", |_| panic!("no payload")),
            Err(ChunkError::MissingDataCrlf)
        );
        assert_eq!(dec.feed(b"", |_| {}), Err(ChunkError::MissingDataCrlf));
        assert!(!dec.is_done());
    }

    /// xorshift64: deterministic, good enough to pick test shapes.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        /// Uniform enough in `0..n`; `n` must not be zero.
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    fn size_line(rng: &mut Rng, size: usize, out: &mut Vec<u8>) {
        out.extend(std::iter::repeat_n(b'0', rng.below(3)));
        let hex = if rng.below(2) == 0 {
            format!("{size:x}")
        } else {
            format!("{size:X}")
        };
        out.extend_from_slice(hex.as_bytes());
        let ext: &[u8] = match rng.below(6) {
            0 | 1 => b"",
            2 => b";a=b",
            3 => b" ;name=\"quoted \\\" value\"",
            4 => b"\t; x ; y=1",
            _ => b";\xff\x01",
        };
        out.extend_from_slice(ext);
        out.extend_from_slice(b"\r\n");
    }

    /// `payload` in random chunks with random extensions, then `trailers`.
    fn encode(rng: &mut Rng, payload: &[u8], trailers: &[u8]) -> Vec<u8> {
        let max_chunk = [1, 7, 100, 5000][rng.below(4)];
        let mut out = Vec::new();
        let mut rest = payload;
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(1 + rng.below(rest.len().min(max_chunk)));
            size_line(rng, chunk.len(), &mut out);
            out.extend_from_slice(chunk);
            out.extend_from_slice(b"\r\n");
            rest = tail;
        }
        size_line(rng, 0, &mut out);
        out.extend_from_slice(trailers);
        out.extend_from_slice(b"\r\n");
        out
    }

    #[test]
    fn random_chunkings_round_trip() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for case in 0..400 {
            let len = [0, 1, 10, 300, 3000][rng.below(5)];
            let payload_len = rng.below(len + 1);
            let payload = rng.bytes(payload_len);
            let mut trailers = Vec::new();
            for i in 0..rng.below(4) {
                trailers.extend_from_slice(format!("x-t{i}: {}\r\n", rng.next()).as_bytes());
            }
            let encoded = encode(&mut rng, &payload, &trailers);
            let mut stream = encoded.clone();
            let extra = 1 + rng.below(16);
            stream.extend(rng.bytes(extra));

            let max_piece = [1, 3, 17, 500, stream.len()][rng.below(5)];
            let mut pieces = Vec::new();
            let mut rest = &stream[..];
            while !rest.is_empty() {
                // Empty reads now and then: they must change nothing.
                let n = rng.below(rest.len().min(max_piece) + 1);
                let (piece, tail) = rest.split_at(n);
                pieces.push(piece);
                rest = tail;
            }

            let got = decode(pieces.iter().copied()).unwrap_or_else(|e| panic!("case {case}: {e}"));
            assert_eq!(
                got,
                Decoded {
                    consumed: encoded.len(),
                    payload,
                    trailers,
                    done: true,
                },
                "case {case}"
            );
        }
    }
}
