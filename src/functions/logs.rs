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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use monoio::io::AsyncReadRent;

/// Where the service's log lines go: tollgate's stderr ([`stderr`]), or a test's collector.
/// Shared by the functions thread's tasks and handed in from the thread that starts it.
pub type LogSink = Arc<dyn Fn(&str) + Send + Sync>;

/// Lines waiting for the writer thread of [`stderr`]; beyond, lines are dropped (counted).
pub const LOG_QUEUE_LINES: usize = 4096;

/// The sink of a running tollgate: each line to stderr, written by a dedicated thread (see
/// [`writer_sink`]) so a slow stderr never stalls the functions thread.
pub fn stderr() -> LogSink {
    writer_sink(std::io::stderr(), LOG_QUEUE_LINES).0
}

/// A sink that hands each line to a thread writing it to `out`, over a queue of `capacity`
/// lines: the caller never blocks; a line that finds the queue full is dropped and counted
/// (the returned counter: the total so far). After the drops, the writer says how many were
/// lost (`tollgate: function output: N lines dropped (the log could not keep up)`) before its
/// next line. The thread ends when the last clone of the sink is dropped; if it cannot start,
/// lines go straight to `out` from the caller (blocking, as a last resort).
pub fn writer_sink<W: Write + Send + 'static>(
    out: W,
    capacity: usize,
) -> (LogSink, Arc<AtomicU64>) {
    let dropped = Arc::new(AtomicU64::new(0));
    let (tx, rx) = std::sync::mpsc::sync_channel::<String>(capacity);
    let out = Arc::new(std::sync::Mutex::new(out));
    let (writer_out, counted) = (out.clone(), dropped.clone());
    let started = std::thread::Builder::new()
        .name("tollgate-fn-log".into())
        .spawn(move || {
            // drops reported so far (the counter only grows: Relaxed, a plain tally)
            let mut reported = 0;
            for line in rx {
                let Ok(mut w) = writer_out.lock() else { return };
                let total = counted.load(Ordering::Relaxed);
                if total > reported {
                    let _ = writeln!(
                        w,
                        "tollgate: function output: {} lines dropped (the log could not keep up)",
                        total - reported
                    );
                    reported = total;
                }
                let _ = writeln!(w, "{line}");
            }
        });
    let counter = dropped.clone();
    let sink: LogSink = match started {
        Ok(_) => Arc::new(move |line: &str| {
            if tx.try_send(line.to_owned()).is_err() {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }),
        Err(_) => Arc::new(move |line: &str| {
            if let Ok(mut w) = out.lock() {
                let _ = writeln!(w, "{line}");
            }
        }),
    };
    (sink, dropped)
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

    /// A writer that blocks until released, then collects.
    struct Gate {
        open: std::sync::mpsc::Receiver<()>,
        opened: bool,
        got: Arc<std::sync::Mutex<Vec<u8>>>,
    }

    impl Write for Gate {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if !self.opened {
                let _ = self.open.recv();
                self.opened = true;
            }
            self.got.lock().expect("lock").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_log_drops_and_counts_lines_instead_of_blocking() {
        let (release, open) = std::sync::mpsc::channel();
        let got = Arc::new(std::sync::Mutex::new(Vec::new()));
        let gate = Gate {
            open,
            opened: false,
            got: got.clone(),
        };
        let capacity = 4;
        let (sink, dropped) = writer_sink(gate, capacity);
        // the writer holds at most one line while stalled, the queue `capacity`: the rest
        // are dropped, and the sink returns each time (a block here hangs the test)
        for i in 0..capacity + 10 {
            sink(&format!("line {i}"));
        }
        let lost = dropped.load(Ordering::Relaxed);
        assert!(lost >= 9, "dropped {lost}");
        release.send(()).expect("release");
        // the queue drains now: "after" gets in once there is room
        loop {
            let before = dropped.load(Ordering::Relaxed);
            sink("after");
            if dropped.load(Ordering::Relaxed) == before {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        drop(sink);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let text = String::from_utf8(got.lock().expect("lock").clone()).expect("utf8");
            if text.ends_with("after\n") {
                assert!(
                    text.contains(" lines dropped (the log could not keep up)\n"),
                    "{text}"
                );
                assert!(text.contains("line 0\n"), "{text}");
                assert!(
                    !text.contains(&format!("line {}\n", capacity + 9)),
                    "{text}"
                );
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "writer never caught up: {text}"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
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
