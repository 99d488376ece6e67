//! Reading raw HTTP/1 off a socket, for the scripted backends of the relay's tests.

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Reads into `buffer` until it holds a whole request head; gives back where the head
/// ends (its `\r\n\r\n` excluded), or `None` once the peer has closed.
pub async fn read_head(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<usize> {
    loop {
        if let Some(end) = find(buffer, b"\r\n\r\n") {
            return Some(end);
        }
        let mut chunk = [0; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
