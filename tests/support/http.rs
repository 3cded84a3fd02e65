//! A one-thread HTTP server on 127.0.0.1 for tests: answers every request with a fixed response
//! and hands back the requests it received.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;

pub struct Recorded {
    pub head: String,
    pub body: Vec<u8>,
}

pub struct TestServer {
    pub url: String,
    pub requests: mpsc::Receiver<Recorded>,
}

/// Serves `count` requests, each answered with `status`, `content_type` and `body`.
pub fn serve(
    count: usize,
    status: u16,
    content_type: &'static str,
    body: &'static str,
) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_string())
                })
                .map_or(0, |v| v.parse().unwrap());
            let mut received = vec![0; length];
            reader.read_exact(&mut received).unwrap();
            let response = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(response.as_bytes()).unwrap();
            let _ = tx.send(Recorded {
                head,
                body: received,
            });
        }
    });
    TestServer { url, requests: rx }
}
