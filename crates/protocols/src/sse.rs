//! Server-sent events: an incremental decoder with a bounded frame size, and the encoder.
//!
//! The decoder follows the WHATWG event-stream grammar: lines end in LF, CRLF or a lone CR;
//! lines starting with `:` are comments; `data:` lines join with LF; a blank line dispatches the
//! event. It scans each byte once, however the input is split across reads, so a long event
//! costs linear time (the flaw that made peers drop `eventsource-stream`).

use bytes::{BufMut, Bytes, BytesMut};

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field; `None` means the default type, `message`.
    pub event: Option<String>,
    pub data: String,
    pub id: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SseError {
    #[error("server-sent event exceeds the maximum frame size of {limit} bytes")]
    FrameTooLarge { limit: usize },
    #[error("server-sent event is not valid UTF-8")]
    InvalidUtf8,
}

/// Default bound on one event (all its lines): larger than any real LLM chunk, small enough that a
/// broken upstream cannot make the gateway buffer without end.
pub const DEFAULT_MAX_FRAME: usize = 4 * 1024 * 1024;

#[derive(Debug)]
pub struct SseDecoder {
    max_frame: usize,
    /// The line being read, without its terminator.
    line: Vec<u8>,
    /// The previous byte was a CR, so an LF right after it ends nothing.
    after_cr: bool,
    /// Fields of the event being assembled.
    event: Option<String>,
    data: String,
    has_data: bool,
    id: Option<String>,
    /// Bytes the current event has taken so far, to enforce `max_frame`.
    frame_bytes: usize,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME)
    }
}

impl SseDecoder {
    pub fn new(max_frame: usize) -> Self {
        SseDecoder {
            max_frame,
            line: Vec::new(),
            after_cr: false,
            event: None,
            data: String::new(),
            has_data: false,
            id: None,
            frame_bytes: 0,
        }
    }

    /// Feeds the next bytes read and returns the events they complete.
    pub fn feed(&mut self, mut input: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        let mut out = Vec::new();
        while !input.is_empty() {
            if self.after_cr && input[0] == b'\n' {
                input = &input[1..];
                self.after_cr = false;
                continue;
            }
            self.after_cr = false;
            match input.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(end) => {
                    self.take_bytes(end)?;
                    self.line.extend_from_slice(&input[..end]);
                    self.after_cr = input[end] == b'\r';
                    input = &input[end + 1..];
                    let line = std::mem::take(&mut self.line);
                    if let Some(event) = self.process_line(&line)? {
                        out.push(event);
                    }
                    self.line = line;
                    self.line.clear();
                }
                None => {
                    self.take_bytes(input.len())?;
                    self.line.extend_from_slice(input);
                    input = &[];
                }
            }
        }
        Ok(out)
    }

    /// Called at end of input: an event whose lines all ended but whose blank line never came is
    /// still dispatched (some servers close right after the last `data:` line); a partial line
    /// is dropped, as the standard says.
    pub fn finish(&mut self) -> Option<SseEvent> {
        self.line.clear();
        self.dispatch()
    }

    fn take_bytes(&mut self, n: usize) -> Result<(), SseError> {
        self.frame_bytes += n;
        if self.frame_bytes > self.max_frame {
            return Err(SseError::FrameTooLarge { limit: self.max_frame });
        }
        Ok(())
    }

    fn process_line(&mut self, line: &[u8]) -> Result<Option<SseEvent>, SseError> {
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line[0] == b':' {
            return Ok(None);
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        let value = std::str::from_utf8(value).map_err(|_| SseError::InvalidUtf8)?;
        match name {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            b"event" => self.event = Some(value.to_string()),
            b"id" if !value.contains('\0') => self.id = Some(value.to_string()),
            _ => {} // `retry` and unknown fields mean nothing to a proxy.
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        self.frame_bytes = 0;
        let event = self.event.take();
        if !self.has_data {
            return None;
        }
        self.has_data = false;
        Some(SseEvent { event, data: std::mem::take(&mut self.data), id: self.id.clone() })
    }
}

/// Encodes one event. Data containing line breaks becomes several `data:` lines.
pub fn encode(event: Option<&str>, data: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 16);
    if let Some(event) = event {
        out.put_slice(b"event: ");
        out.put_slice(event.as_bytes());
        out.put_u8(b'\n');
    }
    for line in data.split('\n') {
        out.put_slice(b"data: ");
        out.put_slice(line.strip_suffix('\r').unwrap_or(line).as_bytes());
        out.put_u8(b'\n');
    }
    out.put_u8(b'\n');
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut d = SseDecoder::default();
        let mut out = Vec::new();
        for c in chunks {
            out.extend(d.feed(c).unwrap_or_else(|e| panic!("decode failed: {e}")));
        }
        out.extend(d.finish());
        out
    }

    fn data(s: &str) -> SseEvent {
        SseEvent { data: s.into(), ..Default::default() }
    }

    #[test]
    fn lf_crlf_and_cr_line_endings() {
        for text in ["data: a\n\ndata: b\n\n", "data: a\r\n\r\ndata: b\r\n\r\n", "data: a\r\rdata: b\r\r"] {
            assert_eq!(decode_all(&[text.as_bytes()]), vec![data("a"), data("b")], "{text:?}");
        }
    }

    #[test]
    fn comments_event_names_and_multiline_data() {
        let text = ": keep-alive\nevent: message_start\ndata: one\ndata: two\nid: 7\n\n";
        let got = decode_all(&[text.as_bytes()]);
        assert_eq!(
            got,
            vec![SseEvent { event: Some("message_start".into()), data: "one\ntwo".into(), id: Some("7".into()) }]
        );
    }

    #[test]
    fn every_split_point_gives_the_same_events() {
        let text =
            b"event: x\r\ndata: {\"a\": 1}\r\n\r\n: c\rdata:no-space\r\rdata: \xc3\xa9t\xc3\xa9\n\ndata: [DONE]\n\n";
        let whole = decode_all(&[text]);
        assert_eq!(whole.len(), 4);
        for i in 0..=text.len() {
            for j in i..=text.len() {
                let got = decode_all(&[&text[..i], &text[i..j], &text[j..]]);
                assert_eq!(got, whole, "split at {i},{j}");
            }
        }
    }

    #[test]
    fn blank_lines_without_data_dispatch_nothing() {
        assert_eq!(decode_all(&[b"\n\n\nevent: ping\n\n"]), vec![]);
    }

    #[test]
    fn frame_size_is_bounded() {
        let mut d = SseDecoder::new(16);
        assert!(d.feed(b"data: 0123456789\n").is_ok());
        assert_eq!(d.feed(b"data: more\n"), Err(SseError::FrameTooLarge { limit: 16 }));
        let mut d = SseDecoder::new(16);
        assert_eq!(d.feed(&[b'x'; 17]), Err(SseError::FrameTooLarge { limit: 16 }));
    }

    #[test]
    fn invalid_utf8_is_an_error_not_a_panic() {
        let mut d = SseDecoder::default();
        assert_eq!(d.feed(b"data: \xff\n\n"), Err(SseError::InvalidUtf8));
    }

    #[test]
    fn unterminated_event_is_dispatched_at_end_but_partial_line_is_not() {
        assert_eq!(decode_all(&[b"data: a\n"]), vec![data("a")]);
        assert_eq!(decode_all(&[b"data: a\n\ndata: partial"]), vec![data("a")]);
    }

    #[test]
    fn encode_round_trips() {
        let bytes = encode(Some("delta"), "line1\nline2");
        assert_eq!(&bytes[..], b"event: delta\ndata: line1\ndata: line2\n\n");
        assert_eq!(
            decode_all(&[&bytes]),
            vec![SseEvent { event: Some("delta".into()), data: "line1\nline2".into(), id: None }]
        );
    }
}
