//! A job's own log lines (`ctx.log` in a handler): their shape, the cap each job's lines are
//! kept under, and the in-memory buffer the memory provider keeps them in.

use crate::job::Millis;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Most log lines kept per job; past it the oldest are dropped (and counted).
pub const MAX_LOG_LINES: usize = 100;
/// Most bytes (UTF-8) of log lines kept per job; past it the oldest are dropped (and counted).
/// A single line longer than this is cut to it.
pub const MAX_LOG_BYTES: usize = 32 * 1024;

/// One line a handler logged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    /// When it was logged (epoch ms).
    pub at: Millis,
    /// The attempt that logged it (1 for the first).
    pub attempt: u32,
    /// Its place within its attempt (1 for the first line): the order lines are shown in,
    /// whatever order they were stored in.
    pub seq: u32,
    pub line: String,
}

impl LogLine {
    /// A line, cut to [`MAX_LOG_BYTES`] (at a character boundary) when longer.
    pub fn new(at: Millis, attempt: u32, seq: u32, mut line: String) -> LogLine {
        if line.len() > MAX_LOG_BYTES {
            let mut end = MAX_LOG_BYTES;
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            line.truncate(end);
        }
        LogLine {
            at,
            attempt,
            seq,
            line,
        }
    }
}

/// A job's kept log lines, oldest first, and how many older ones were dropped by the cap.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobLogs {
    pub lines: Vec<LogLine>,
    pub dropped: u64,
}

/// The memory provider's lines of one job, kept under the cap as they come.
#[derive(Clone, Debug, Default)]
pub struct LogBuffer {
    lines: VecDeque<LogLine>,
    bytes: usize,
    dropped: u64,
}

impl LogBuffer {
    pub fn push(&mut self, line: LogLine) {
        self.bytes += line.line.len();
        self.lines.push_back(line);
        while self.lines.len() > MAX_LOG_LINES || self.bytes > MAX_LOG_BYTES {
            match self.lines.pop_front() {
                Some(old) => {
                    self.bytes -= old.line.len();
                    self.dropped += 1;
                }
                None => break,
            }
        }
    }

    /// The lines in order (attempt, then place in it).
    pub fn snapshot(&self) -> JobLogs {
        let mut lines: Vec<LogLine> = self.lines.iter().cloned().collect();
        lines.sort_by_key(|l| (l.attempt, l.seq));
        JobLogs {
            lines,
            dropped: self.dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_drops_the_oldest_lines_and_counts_them() {
        let mut b = LogBuffer::default();
        for i in 1..=(MAX_LOG_LINES as u32 + 20) {
            b.push(LogLine::new(0, 1, i, format!("line {i}")));
        }
        let s = b.snapshot();
        assert_eq!(s.lines.len(), MAX_LOG_LINES);
        assert_eq!(s.dropped, 20);
        assert_eq!(s.lines[0].line, "line 21");

        let mut b = LogBuffer::default();
        let big = "x".repeat(MAX_LOG_BYTES / 4);
        for i in 1..=5 {
            b.push(LogLine::new(0, 2, i, big.clone()));
        }
        let s = b.snapshot();
        assert_eq!(s.lines.len(), 4);
        assert_eq!(s.dropped, 1);
        assert_eq!(s.lines[0].seq, 2);

        let cut = LogLine::new(0, 1, 1, "é".repeat(MAX_LOG_BYTES));
        assert!(cut.line.len() <= MAX_LOG_BYTES && cut.line.len() >= MAX_LOG_BYTES - 1);
    }
}
