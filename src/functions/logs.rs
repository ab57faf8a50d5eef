//! A function process's stdout and stderr, pumped into tollgate's log.
//!
//! Owns the line framing ([`Lines`]: split on LF, a trailing CR dropped, lines longer than
//! [`MAX_LOG_LINE`] cut into pieces of that size, a last line without LF flushed at the end)
//! and the pump task ([`pump`]) that reads one of a process's output sockets on the functions
//! thread and writes each line to tollgate's stderr as
//! `tollgate: function NAME [REQUEST] stdout|stderr: LINE`, where REQUEST is the gateway
//! request id (`x-request-id`) of the invocation the process runs, or ran last (what it wrote
//! before its answer may be read from the pipe after it), `-` before its first one. Leaves out the sockets' creation (see [`super::sandbox`]). The pump ends at
//! end of stream (the process, and every process of its group, has exited).

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;
use std::sync::Arc;

use monoio::io::AsyncReadRent;

/// Where the service's log lines go: tollgate's stderr ([`stderr`]), or a test's collector.
/// Shared by the functions thread's tasks and handed in from the thread that starts it.
pub type LogSink = Arc<dyn Fn(&str) + Send + Sync>;

/// The sink of a running tollgate: each line to stderr.
pub fn stderr() -> LogSink {
    Arc::new(|line: &str| {
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    })
}

/// Longest log line written as one; longer ones are split into pieces of this size.
pub const MAX_LOG_LINE: usize = 16 * 1024;
/// Bytes read from a process's output at once.
const READ_CHUNK: usize = 8 * 1024;

/// The line framing of a byte stream.
#[derive(Debug, Default)]
pub struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    /// Feeds `data`; calls `emit` with each complete line (without its LF and a CR before it).
    pub fn push(&mut self, mut data: &[u8], emit: &mut impl FnMut(&[u8])) {
        while !data.is_empty() {
            let room = MAX_LOG_LINE - self.partial.len();
            let window = &data[..data.len().min(room)];
            match window.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.partial.extend_from_slice(&window[..i]);
                    let line = self.partial.strip_suffix(b"\r").unwrap_or(&self.partial);
                    emit(line);
                    self.partial.clear();
                    data = &data[i + 1..];
                }
                None => {
                    self.partial.extend_from_slice(window);
                    data = &data[window.len()..];
                    if self.partial.len() >= MAX_LOG_LINE {
                        emit(&self.partial);
                        self.partial.clear();
                    }
                }
            }
        }
    }

    /// The stream ended: a last line without LF is emitted.
    pub fn finish(&mut self, emit: &mut impl FnMut(&[u8])) {
        if !self.partial.is_empty() {
            emit(&self.partial);
            self.partial.clear();
        }
    }
}

/// One formatted log line.
pub fn format_line(function: &str, request: &str, stream: &str, line: &[u8]) -> String {
    format!(
        "tollgate: function {function} [{request}] {stream}: {}",
        String::from_utf8_lossy(line)
    )
}

/// Reads `output` until its end, logging each line to `sink` with `function`, the current
/// request id (`label`, `-` when empty) and `stream` ("stdout" or "stderr").
pub async fn pump(
    output: std::os::unix::net::UnixStream,
    function: Rc<str>,
    stream: &'static str,
    label: Rc<RefCell<String>>,
    sink: LogSink,
) {
    let Ok(mut sock) = monoio::net::UnixStream::from_std(output) else {
        return;
    };
    let mut lines = Lines::default();
    let mut emit = |line: &[u8]| {
        let label = label.borrow();
        let request = if label.is_empty() { "-" } else { &label };
        sink(&format_line(&function, request, stream, line));
    };
    let mut buf = Vec::with_capacity(READ_CHUNK);
    loop {
        buf.clear();
        let (res, b) = sock.read(buf).await;
        buf = b;
        match res {
            Ok(0) | Err(_) => break,
            Ok(n) => lines.push(buf.get(..n).unwrap_or_default(), &mut emit),
        }
    }
    lines.finish(&mut emit);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut l = Lines::default();
        let mut emit = |x: &[u8]| out.push(x.to_vec());
        for c in chunks {
            l.push(c, &mut emit);
        }
        l.finish(&mut emit);
        out
    }

    #[test]
    fn lines_across_chunks_crlf_and_the_last_line() {
        assert_eq!(
            split(&[b"one\ntw", b"o\r\n\nthr", b"ee"]),
            vec![
                b"one".to_vec(),
                b"two".to_vec(),
                b"".to_vec(),
                b"three".to_vec()
            ]
        );
        assert!(split(&[b""]).is_empty());
    }

    #[test]
    fn long_lines_are_split_at_the_limit() {
        let long = vec![b'x'; MAX_LOG_LINE * 2 + 5];
        let mut data = long.clone();
        data.extend_from_slice(b"\nend\n");
        let got = split(&[&data[..100], &data[100..]]);
        assert_eq!(got.len(), 4);
        assert_eq!(got[0].len(), MAX_LOG_LINE);
        assert_eq!(got[1].len(), MAX_LOG_LINE);
        assert_eq!(got[2], vec![b'x'; 5]);
        assert_eq!(got[3], b"end".to_vec());
    }

    #[test]
    fn the_log_line_names_function_request_and_stream() {
        assert_eq!(
            format_line("hello", "req-1", "stderr", b"oops \xff"),
            "tollgate: function hello [req-1] stderr: oops \u{fffd}"
        );
    }

    fn pumps_until_the_end(rt_epoll: bool) {
        let (mut w, r) = std::os::unix::net::UnixStream::pair().expect("pair");
        r.set_nonblocking(true).expect("nonblocking");
        let got = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let g = got.clone();
        let sink: LogSink = Arc::new(move |l: &str| g.lock().expect("lock").push(l.to_string()));
        let run = async move {
            let label = Rc::new(RefCell::new("r1".to_string()));
            let task = monoio::spawn(pump(r, "f".into(), "stdout", label.clone(), sink));
            w.write_all(b"a\n").expect("write");
            monoio::time::sleep(std::time::Duration::from_millis(20)).await;
            label.borrow_mut().clear();
            w.write_all(b"b").expect("write");
            drop(w);
            // ends at end of stream (a hang here would fail the test by its harness timeout)
            task.await;
        };
        if rt_epoll {
            monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build()
                .expect("epoll")
                .block_on(run);
        } else if let Ok(mut rt) = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .build()
        {
            rt.block_on(run);
        } else {
            return;
        }
        assert_eq!(
            *got.lock().expect("lock"),
            vec![
                "tollgate: function f [r1] stdout: a".to_string(),
                "tollgate: function f [-] stdout: b".to_string()
            ]
        );
    }

    #[test]
    fn pump_ends_at_end_of_stream_epoll() {
        pumps_until_the_end(true);
    }

    #[test]
    fn pump_ends_at_end_of_stream_io_uring() {
        pumps_until_the_end(false);
    }
}
