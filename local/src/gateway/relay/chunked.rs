//! Where a chunked body ends (RFC 9112 §7.1), found across any split of its bytes, so that
//! the relay can pass the body on as it is and still know when the message is over.

/// The longest chunk-size or trailer line accepted (extensions included).
const MAX_LINE: usize = 4096;

/// Follows a chunked body through the bytes fed to it.
#[derive(Debug, Default)]
pub(super) struct ChunkedEnd {
    state: State,
    /// A chunk-size or trailer line read so far, when it spans several feeds.
    line: Vec<u8>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In a chunk-size line.
    #[default]
    Size,
    /// In a chunk's data, with this many bytes left.
    Data(u64),
    /// After a chunk's data: its CR (`false`) or LF (`true`) is next.
    DataEnd(bool),
    /// In the trailer section: a field line, or the empty line that ends the body.
    Trailer,
    Done,
}

/// The body is not valid chunked coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct InvalidChunked;

impl std::fmt::Display for InvalidChunked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid chunked body")
    }
}

impl ChunkedEnd {
    /// Takes bytes of the body and says how many of them belong to it: all of `bytes`
    /// unless the body ends within them ([`is_done`](Self::is_done) then).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<usize, InvalidChunked> {
        let mut at = 0;
        while at < bytes.len() {
            let rest = &bytes[at..];
            match self.state {
                State::Done => break,
                State::Data(left) => {
                    let take = usize::try_from(left).map_or(rest.len(), |l| l.min(rest.len()));
                    at += take;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::DataEnd(false)
                    } else {
                        State::Data(left)
                    };
                }
                State::DataEnd(lf) => {
                    let expected = if lf { b'\n' } else { b'\r' };
                    if rest[0] != expected {
                        return Err(InvalidChunked);
                    }
                    at += 1;
                    self.state = if lf {
                        State::Size
                    } else {
                        State::DataEnd(true)
                    };
                }
                State::Size | State::Trailer => {
                    let Some(line) = self.line(rest)? else {
                        return Ok(bytes.len());
                    };
                    at += line;
                    self.end_line()?;
                }
            }
        }
        Ok(at)
    }

    /// Whether the body has ended (the bytes fed after that were not taken).
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Adds `rest` up to its first LF to the current line: how many bytes that took when
    /// the line is complete, `None` when all of `rest` went into a line still open.
    fn line(&mut self, rest: &[u8]) -> Result<Option<usize>, InvalidChunked> {
        let end = rest.iter().position(|&b| b == b'\n');
        let part = end.map_or(rest, |lf| &rest[..=lf]);
        if self.line.len() + part.len() > MAX_LINE {
            return Err(InvalidChunked);
        }
        self.line.extend_from_slice(part);
        Ok(end.map(|lf| lf + 1))
    }

    /// Acts on the complete line in `self.line`.
    fn end_line(&mut self) -> Result<(), InvalidChunked> {
        if !self.line.ends_with(b"\r\n") {
            return Err(InvalidChunked);
        }
        self.state = match self.state {
            // httparse takes a line without digits as size 0: a size needs a digit.
            State::Size if !self.line[0].is_ascii_hexdigit() => return Err(InvalidChunked),
            State::Size => match httparse::parse_chunk_size(&self.line) {
                Ok(httparse::Status::Complete((_, 0))) => State::Trailer,
                Ok(httparse::Status::Complete((_, size))) => State::Data(size),
                _ => return Err(InvalidChunked),
            },
            // The empty line ends the body; any other is a trailer field, passed on.
            State::Trailer if self.line.len() == 2 => State::Done,
            State::Trailer if self.line.contains(&b':') => State::Trailer,
            _ => return Err(InvalidChunked),
        };
        self.line.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"4\r\nWiki\r\n6;name=value\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nx-checksum: 1\r\n\r\n";

    /// Feeds `body` in the given pieces: the bytes taken, and whether it ended.
    fn feed_in(pieces: &[&[u8]]) -> Result<(usize, bool), InvalidChunked> {
        let mut end = ChunkedEnd::default();
        let mut taken = 0;
        for piece in pieces {
            taken += end.feed(piece)?;
        }
        Ok((taken, end.is_done()))
    }

    #[test]
    fn a_body_ends_after_its_last_chunk_and_trailers_however_it_is_split() {
        assert_eq!(feed_in(&[BODY]), Ok((BODY.len(), true)));
        for split in 0..=BODY.len() {
            let (a, b) = BODY.split_at(split);
            assert_eq!(feed_in(&[a, b]), Ok((BODY.len(), true)), "split at {split}");
        }
        let bytes: Vec<&[u8]> = BODY.chunks(1).collect();
        assert_eq!(feed_in(&bytes), Ok((BODY.len(), true)));
    }

    #[test]
    fn bytes_after_the_body_are_not_taken() {
        let mut with_next = BODY.to_vec();
        with_next.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        assert_eq!(feed_in(&[&with_next]), Ok((BODY.len(), true)));
        assert_eq!(feed_in(&[b"0\r\n\r\nextra"]), Ok((5, true)));
    }

    #[test]
    fn an_unfinished_body_takes_everything_and_waits() {
        assert_eq!(feed_in(&[b"10\r\n0123456789"]), Ok((14, false)));
        assert_eq!(feed_in(&[b"0\r\n"]), Ok((3, false)));
        assert_eq!(feed_in(&[b"0\r\nx-a: 1\r"]), Ok((10, false)));
    }

    #[test]
    fn broken_coding_is_refused() {
        for broken in [
            &b"g\r\n"[..],
            b"4\r\nWikiX\r\n",
            b"4\nWiki\r\n",
            b"4\r\nWiki\r\n0\r\nnot a field\r\n\r\n",
            b"ffffffffffffffffff\r\n",
            b"\r\n",
            b";ext\r\n",
            b" 5\r\nhello\r\n",
        ] {
            assert_eq!(
                feed_in(&[broken]),
                Err(InvalidChunked),
                "{}",
                String::from_utf8_lossy(broken)
            );
        }
        let long_extension = [b"1;".as_slice(), &[b'x'; MAX_LINE]].concat();
        assert_eq!(feed_in(&[&long_extension]), Err(InvalidChunked));
    }

    #[test]
    fn a_huge_chunk_is_followed_without_overflow() {
        let mut end = ChunkedEnd::default();
        assert_eq!(end.feed(b"fffffffffffffff\r\n"), Ok(17));
        assert_eq!(end.feed(&[0; 1000]), Ok(1000));
        assert!(!end.is_done());
    }
}
