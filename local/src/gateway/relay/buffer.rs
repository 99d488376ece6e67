//! A connection's read buffer.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes read from a socket and not yet handled: `data[start..end]`. Reads land after `end`,
/// handled bytes leave from the front, and an emptied buffer starts over at 0, so a
/// keep-alive connection reads every message into the same memory.
#[derive(Debug)]
pub(super) struct Buffer {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl Buffer {
    pub fn new(capacity: usize) -> Self {
        Self {
            data: vec![0; capacity],
            start: 0,
            end: 0,
        }
    }

    pub fn filled(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Drops the first `n` bytes, handled.
    pub fn consume(&mut self, n: usize) {
        assert!(n <= self.len(), "consumed more than was read");
        self.start += n;
        if self.start == self.end {
            self.clear();
        }
    }

    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Gives memory back down to `capacity` once empty: a connection that read one large
    /// message does not keep its buffer while it idles.
    pub fn shrink_to(&mut self, capacity: usize) {
        if self.is_empty() && self.data.len() > capacity {
            self.data.truncate(capacity);
            self.data.shrink_to_fit();
        }
    }

    /// Reads once from `stream` after the bytes already held, which stay in place or move
    /// to the front; the buffer grows while they fill it, up to `max` bytes. `Ok(0)`: the
    /// peer closed its side.
    pub async fn read_from(
        &mut self,
        stream: &mut (impl AsyncRead + Unpin),
        max: usize,
    ) -> io::Result<usize> {
        self.make_room(max)?;
        let read = stream.read(&mut self.data[self.end..]).await?;
        self.end += read;
        Ok(read)
    }

    fn make_room(&mut self, max: usize) -> io::Result<()> {
        if self.end < self.data.len() {
            return Ok(());
        }
        if self.start > 0 {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        } else if self.data.len() < max {
            let grown = (self.data.len() * 2).max(1024).min(max);
            self.data.resize(grown, 0);
        } else {
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!("more than {max} bytes without the end of a message head"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpStream;

    #[tokio::test]
    async fn reads_append_consumed_bytes_leave_and_the_buffer_grows_to_its_limit() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut peer = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buffer = Buffer::new(4);
        tokio::io::AsyncWriteExt::write_all(&mut peer, b"abcdefgh")
            .await
            .unwrap();
        let mut read = 0;
        while read < 8 {
            read += buffer.read_from(&mut stream, 1024).await.unwrap();
        }
        assert_eq!(buffer.filled(), b"abcdefgh", "grown past its first 4 bytes");
        buffer.consume(3);
        assert_eq!(buffer.filled(), b"defgh");
        buffer.consume(5);
        assert!(buffer.is_empty());

        tokio::io::AsyncWriteExt::write_all(&mut peer, &[b'x'; 2048])
            .await
            .unwrap();
        let mut full = Ok(1);
        while matches!(full, Ok(n) if n > 0) {
            full = buffer.read_from(&mut stream, 1024).await;
        }
        assert_eq!(buffer.len(), 1024);
        assert_eq!(full.unwrap_err().kind(), io::ErrorKind::OutOfMemory);
        drop(peer);
        buffer.clear();
        while buffer.read_from(&mut stream, 1024).await.unwrap() > 0 {
            buffer.clear();
        }
    }
}
