//! The AWS event-stream framing (`application/vnd.amazon.eventstream`) that Bedrock's
//! ConverseStream and InvokeModelWithResponseStream answer in.
//!
//! A message on the wire:
//!
//! ```text
//! | total length u32 BE | headers length u32 BE | prelude CRC32 |   <- the 12-byte prelude
//! | headers ...                                                |
//! | payload ...                                                |
//! | message CRC32 (over every byte before it)                  |
//! ```
//!
//! Each header is `name len u8 | name | type u8 | value`, the value's layout set by the type.
//! Both CRCs are CRC-32 (IEEE). Lengths come from the peer, so nothing is allocated on their word:
//! a message larger than the decoder's limit is refused as soon as its prelude is in.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The largest message [`Decoder::new`] accepts. Bedrock's events are a few KiB; this leaves room
/// for a large tool-use or image chunk while keeping one hostile length from costing more.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// Total length, headers length, prelude CRC.
const PRELUDE_LEN: usize = 12;
const CRC_LEN: usize = 4;
/// A message with no headers and no payload.
const MIN_MESSAGE_LEN: usize = PRELUDE_LEN + CRC_LEN;

// Header value type tags.
const TYPE_TRUE: u8 = 0;
const TYPE_FALSE: u8 = 1;
const TYPE_BYTE: u8 = 2;
const TYPE_SHORT: u8 = 3;
const TYPE_INT: u8 = 4;
const TYPE_LONG: u8 = 5;
const TYPE_BYTES: u8 = 6;
const TYPE_STRING: u8 = 7;
const TYPE_TIMESTAMP: u8 = 8;
const TYPE_UUID: u8 = 9;

/// One typed header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(Bytes),
    String(String),
    /// Milliseconds since the Unix epoch.
    Timestamp(i64),
    Uuid([u8; 16]),
}

impl HeaderValue {
    /// The value when it is a string (every header Bedrock sends is).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            HeaderValue::String(s) => Some(s),
            _ => None,
        }
    }
}

/// The `:message-type` header: what a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType<'a> {
    /// A normal event; `:event-type` names it.
    Event,
    /// A modelled error (throttling, validation…); `:exception-type` names it and the payload
    /// carries its body.
    Exception,
    /// An unmodelled error; `:error-code` and `:error-message` describe it.
    Error,
    /// A type this decoder does not know, kept so the caller can report it.
    Other(&'a str),
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// In wire order; a name may repeat, and [`Message::header`] returns the first.
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Bytes,
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// A string header's value; `None` when it is absent or of another type.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(HeaderValue::as_str)
    }

    pub fn message_type(&self) -> Option<MessageType<'_>> {
        self.header_str(":message-type").map(|t| match t {
            "event" => MessageType::Event,
            "exception" => MessageType::Exception,
            "error" => MessageType::Error,
            other => MessageType::Other(other),
        })
    }

    pub fn event_type(&self) -> Option<&str> {
        self.header_str(":event-type")
    }

    pub fn exception_type(&self) -> Option<&str> {
        self.header_str(":exception-type")
    }

    pub fn content_type(&self) -> Option<&str> {
        self.header_str(":content-type")
    }

    pub fn error_code(&self) -> Option<&str> {
        self.header_str(":error-code")
    }

    pub fn error_message(&self) -> Option<&str> {
        self.header_str(":error-message")
    }
}

/// Why a stream could not be decoded. Once one is returned the stream is lost: a frame boundary
/// cannot be found again without trusting a length that just failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("event-stream prelude CRC mismatch: the frame says {expected:#010x}, the bytes give {computed:#010x}")]
    PreludeCrc { expected: u32, computed: u32 },
    #[error("event-stream message CRC mismatch: the frame says {expected:#010x}, the bytes give {computed:#010x}")]
    MessageCrc { expected: u32, computed: u32 },
    #[error("event-stream message of {length} bytes is over the {max}-byte limit")]
    TooLarge { length: u32, max: usize },
    #[error("event-stream frame lengths are inconsistent: total {total}, headers {headers}")]
    BadLength { total: u32, headers: u32 },
    #[error("event-stream header {name:?} has unknown value type {tag}")]
    BadHeaderType { name: String, tag: u8 },
    #[error("event-stream headers are malformed: {0}")]
    BadHeaders(&'static str),
    #[error("event stream ended inside a message ({buffered} bytes of it received)")]
    Truncated { buffered: usize },
}

/// Why a message could not be encoded: a field too long for its length prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("event-stream header name of {0} bytes is over the 255-byte limit")]
    NameTooLong(usize),
    #[error("event-stream header {name:?} value of {len} bytes is over the 65535-byte limit")]
    ValueTooLong { name: String, len: usize },
    #[error("event-stream message of {0} bytes is over the 4 GiB frame limit")]
    MessageTooLong(usize),
}

/// Incremental decoder: bytes go in as they arrive, split anywhere, and whole checked messages
/// come out.
///
/// ```text
/// for chunk in body { for message in decoder.feed(&chunk)? { … } }
/// decoder.finish()?;
/// ```
pub struct Decoder {
    /// At most one incomplete message (bounded by `max_message_size`) plus the last chunk.
    buf: BytesMut,
    max_message_size: usize,
    /// Set once a frame fails; every later call returns it again.
    failed: Option<DecodeError>,
}

impl std::fmt::Debug for Decoder {
    // The buffer is the peer's payload, possibly megabytes of it: its size is what helps.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("buffered", &self.buf.len())
            .field("max_message_size", &self.max_message_size)
            .field("failed", &self.failed)
            .finish()
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    pub fn new() -> Self {
        Decoder::with_max_message_size(DEFAULT_MAX_MESSAGE_SIZE)
    }

    pub fn with_max_message_size(max_message_size: usize) -> Self {
        Decoder { buf: BytesMut::new(), max_message_size, failed: None }
    }

    /// Bytes received that are not yet part of a returned message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Takes the next chunk and returns every message it completes, in order.
    ///
    /// An error found behind complete messages is held back and returned by the next call (or by
    /// [`Decoder::finish`]), so the messages before it are still delivered.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Message>, DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        loop {
            match self.next_message() {
                Ok(Some(message)) => out.push(message),
                Ok(None) => return Ok(out),
                Err(e) => {
                    // Nothing after a bad frame can be trusted, so its bytes are let go now.
                    self.buf = BytesMut::new();
                    self.failed = Some(e.clone());
                    return if out.is_empty() { Err(e) } else { Ok(out) };
                }
            }
        }
    }

    /// Ends the stream: an error if it stopped inside a message or a frame failed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.buf.is_empty() { Ok(()) } else { Err(DecodeError::Truncated { buffered: self.buf.len() }) }
    }

    /// Splits one complete message off the front of the buffer, if it is all there.
    fn next_message(&mut self) -> Result<Option<Message>, DecodeError> {
        let Some(prelude) = self.buf.get(..PRELUDE_LEN) else { return Ok(None) };
        let total = be_u32(&prelude[0..4]);
        let headers_len = be_u32(&prelude[4..8]);
        let expected = be_u32(&prelude[8..12]);
        // The lengths are only believed once their own CRC holds.
        let computed = crc32fast::hash(&prelude[..8]);
        if computed != expected {
            return Err(DecodeError::PreludeCrc { expected, computed });
        }
        // Checked before a single byte of the body is waited for, let alone reserved.
        if total as usize > self.max_message_size {
            return Err(DecodeError::TooLarge { length: total, max: self.max_message_size });
        }
        let total_len = total as usize;
        if total_len < MIN_MESSAGE_LEN || headers_len as usize > total_len - MIN_MESSAGE_LEN {
            return Err(DecodeError::BadLength { total, headers: headers_len });
        }
        if self.buf.len() < total_len {
            return Ok(None);
        }
        let frame = self.buf.split_to(total_len).freeze();
        let body_end = total_len - CRC_LEN;
        let expected = be_u32(&frame[body_end..]);
        let computed = crc32fast::hash(&frame[..body_end]);
        if computed != expected {
            return Err(DecodeError::MessageCrc { expected, computed });
        }
        let headers_end = PRELUDE_LEN + headers_len as usize;
        let headers = parse_headers(frame.slice(PRELUDE_LEN..headers_end))?;
        Ok(Some(Message { headers, payload: frame.slice(headers_end..body_end) }))
    }
}

/// Callers have already checked that `b` holds four bytes.
fn be_u32(b: &[u8]) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&b[..4]);
    u32::from_be_bytes(word)
}

/// Reads a header block; every read is bounds-checked because the block is the peer's.
fn parse_headers(mut block: Bytes) -> Result<Vec<(String, HeaderValue)>, DecodeError> {
    let mut headers = Vec::new();
    while block.has_remaining() {
        let name_len = take_u8(&mut block)? as usize;
        let name = utf8(take(&mut block, name_len)?, "header name is not UTF-8")?;
        let tag = take_u8(&mut block)?;
        let value = match tag {
            TYPE_TRUE => HeaderValue::Bool(true),
            TYPE_FALSE => HeaderValue::Bool(false),
            TYPE_BYTE => HeaderValue::Byte(i8::from_be_bytes(take_array(&mut block)?)),
            TYPE_SHORT => HeaderValue::Short(i16::from_be_bytes(take_array(&mut block)?)),
            TYPE_INT => HeaderValue::Int(i32::from_be_bytes(take_array(&mut block)?)),
            TYPE_LONG => HeaderValue::Long(i64::from_be_bytes(take_array(&mut block)?)),
            TYPE_BYTES => {
                let len = u16::from_be_bytes(take_array(&mut block)?) as usize;
                HeaderValue::Bytes(take(&mut block, len)?)
            }
            TYPE_STRING => {
                let len = u16::from_be_bytes(take_array(&mut block)?) as usize;
                HeaderValue::String(utf8(take(&mut block, len)?, "string header is not UTF-8")?)
            }
            TYPE_TIMESTAMP => HeaderValue::Timestamp(i64::from_be_bytes(take_array(&mut block)?)),
            TYPE_UUID => HeaderValue::Uuid(take_array(&mut block)?),
            tag => return Err(DecodeError::BadHeaderType { name, tag }),
        };
        headers.push((name, value));
    }
    Ok(headers)
}

const SHORT_HEADER: DecodeError = DecodeError::BadHeaders("a header runs past the header block");

fn take_u8(block: &mut Bytes) -> Result<u8, DecodeError> {
    if block.has_remaining() { Ok(block.get_u8()) } else { Err(SHORT_HEADER) }
}

fn take(block: &mut Bytes, len: usize) -> Result<Bytes, DecodeError> {
    if block.remaining() >= len { Ok(block.split_to(len)) } else { Err(SHORT_HEADER) }
}

fn take_array<const N: usize>(block: &mut Bytes) -> Result<[u8; N], DecodeError> {
    let mut out = [0u8; N];
    if block.remaining() < N {
        return Err(SHORT_HEADER);
    }
    block.copy_to_slice(&mut out);
    Ok(out)
}

fn utf8(bytes: Bytes, what: &'static str) -> Result<String, DecodeError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::BadHeaders(what))
}

/// Frames one message. Takes the same `(name, value)` pairs a decoded [`Message`] holds, so a
/// message re-encodes as `encode(&m.headers, &m.payload)`.
pub fn encode<N: AsRef<str>>(headers: &[(N, HeaderValue)], payload: &[u8]) -> Result<Bytes, EncodeError> {
    let mut block = BytesMut::new();
    for (name, value) in headers {
        let name = name.as_ref();
        let name_len = u8::try_from(name.len()).map_err(|_| EncodeError::NameTooLong(name.len()))?;
        block.put_u8(name_len);
        block.put_slice(name.as_bytes());
        match value {
            HeaderValue::Bool(true) => block.put_u8(TYPE_TRUE),
            HeaderValue::Bool(false) => block.put_u8(TYPE_FALSE),
            HeaderValue::Byte(v) => {
                block.put_u8(TYPE_BYTE);
                block.put_i8(*v);
            }
            HeaderValue::Short(v) => {
                block.put_u8(TYPE_SHORT);
                block.put_i16(*v);
            }
            HeaderValue::Int(v) => {
                block.put_u8(TYPE_INT);
                block.put_i32(*v);
            }
            HeaderValue::Long(v) => {
                block.put_u8(TYPE_LONG);
                block.put_i64(*v);
            }
            HeaderValue::Bytes(v) => {
                block.put_u8(TYPE_BYTES);
                put_short_bytes(&mut block, name, v)?;
            }
            HeaderValue::String(v) => {
                block.put_u8(TYPE_STRING);
                put_short_bytes(&mut block, name, v.as_bytes())?;
            }
            HeaderValue::Timestamp(v) => {
                block.put_u8(TYPE_TIMESTAMP);
                block.put_i64(*v);
            }
            HeaderValue::Uuid(v) => {
                block.put_u8(TYPE_UUID);
                block.put_slice(v);
            }
        }
    }
    let total = MIN_MESSAGE_LEN + block.len() + payload.len();
    let total_u32 = u32::try_from(total).map_err(|_| EncodeError::MessageTooLong(total))?;
    // Below `total`, so it fits too.
    let headers_u32 = u32::try_from(block.len()).map_err(|_| EncodeError::MessageTooLong(total))?;

    let mut out = BytesMut::with_capacity(total);
    out.put_u32(total_u32);
    out.put_u32(headers_u32);
    let prelude_crc = crc32fast::hash(&out);
    out.put_u32(prelude_crc);
    out.put_slice(&block);
    out.put_slice(payload);
    let message_crc = crc32fast::hash(&out);
    out.put_u32(message_crc);
    Ok(out.freeze())
}

fn put_short_bytes(block: &mut BytesMut, name: &str, value: &[u8]) -> Result<(), EncodeError> {
    let len = u16::try_from(value.len())
        .map_err(|_| EncodeError::ValueTooLong { name: name.to_string(), len: value.len() })?;
    block.put_u16(len);
    block.put_slice(value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn fixtures() -> PathBuf {
        // Read when the test runs, not when it was built: a cached test binary may outlive the
        // checkout it was built in.
        let crate_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
        let dir = PathBuf::from(crate_dir).join("../../../shared/fixtures/bedrock");
        assert!(dir.is_dir(), "fixtures not found at {} (shared/ must sit beside the repository)", dir.display());
        dir
    }

    fn recording(name: &str) -> Vec<u8> {
        let path = fixtures().join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn decode_whole(bytes: &[u8]) -> Vec<Message> {
        let mut decoder = Decoder::new();
        let messages = decoder.feed(bytes).unwrap_or_else(|e| panic!("decode: {e}"));
        decoder.finish().unwrap_or_else(|e| panic!("finish: {e}"));
        messages
    }

    fn decode_bytewise(bytes: &[u8]) -> Vec<Message> {
        let mut decoder = Decoder::new();
        let mut messages = Vec::new();
        for b in bytes {
            messages.extend(decoder.feed(std::slice::from_ref(b)).unwrap_or_else(|e| panic!("decode: {e}")));
        }
        decoder.finish().unwrap_or_else(|e| panic!("finish: {e}"));
        messages
    }

    fn event_types(messages: &[Message]) -> Vec<&str> {
        messages.iter().map(|m| m.event_type().unwrap_or("<none>")).collect()
    }

    /// Every recording, fed whole and a byte at a time, gives the same events, each a JSON
    /// event with a JSON payload, and re-encodes to the recorded bytes.
    #[test]
    fn recordings_decode_whole_and_bytewise() {
        let mut names: Vec<String> = std::fs::read_dir(fixtures())
            .unwrap_or_else(|e| panic!("{e}"))
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .filter(|n| n.ends_with(".eventstream.bin"))
            .collect();
        names.sort();
        assert!(names.len() >= 5, "expected the Bedrock recordings, found {names:?}");
        for name in &names {
            let bytes = recording(name);
            let whole = decode_whole(&bytes);
            assert!(!whole.is_empty(), "{name}: no messages");
            assert_eq!(decode_bytewise(&bytes), whole, "{name}: byte-at-a-time differs");
            let mut reencoded = Vec::new();
            for m in &whole {
                assert_eq!(m.message_type(), Some(MessageType::Event), "{name}");
                assert_eq!(m.content_type(), Some("application/json"), "{name}");
                serde_json::from_slice::<serde_json::Value>(&m.payload)
                    .unwrap_or_else(|e| panic!("{name}: {:?} payload is not JSON: {e}", m.event_type()));
                reencoded.extend_from_slice(&encode(&m.headers, &m.payload).unwrap_or_else(|e| panic!("{e}")));
            }
            assert_eq!(reencoded, bytes, "{name}: re-encoding differs from the recording");
        }
    }

    #[test]
    fn converse_stream_events_in_order() {
        let messages = decode_whole(&recording("kong-converse-stream-text.eventstream.bin"));
        assert_eq!(
            event_types(&messages),
            ["messageStart", "contentBlockDelta", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata"]
        );
        let start: serde_json::Value = serde_json::from_slice(&messages[0].payload).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(start["role"], "assistant");
        let metadata: serde_json::Value =
            serde_json::from_slice(&messages[5].payload).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(metadata["usage"]["totalTokens"], 106);

        // A tool-use stream: deltas, then the tool block opened with contentBlockStart.
        let tool = decode_whole(&recording("pydantic-converse-stream-tool-use.body.eventstream.bin"));
        let types = event_types(&tool);
        assert_eq!(types.first(), Some(&"messageStart"));
        assert_eq!(types[types.len() - 3..], ["contentBlockStop", "messageStop", "metadata"]);
        assert!(types.contains(&"contentBlockStart"));
        assert!(
            types.iter().all(|t| matches!(
                *t,
                "messageStart"
                    | "contentBlockStart"
                    | "contentBlockDelta"
                    | "contentBlockStop"
                    | "messageStop"
                    | "metadata"
            )),
            "{types:?}"
        );
    }

    #[test]
    fn invoke_model_stream_is_chunks() {
        let messages = decode_whole(&recording("agentgateway-invoke-model-with-response-stream-nova.eventstream.bin"));
        assert_eq!(messages.len(), 9);
        for m in &messages {
            assert_eq!(m.event_type(), Some("chunk"));
            let chunk: serde_json::Value = serde_json::from_slice(&m.payload).unwrap_or_else(|e| panic!("{e}"));
            // The model's own event, base64 in `bytes`.
            assert!(chunk["bytes"].as_str().is_some_and(|b| !b.is_empty()), "{chunk}");
        }
    }

    /// Known-answer frames from the AWS C event-stream library's tests.
    #[test]
    fn reference_frames() {
        let empty = [0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8, 0xff];
        assert_eq!(encode::<&str>(&[], b"").unwrap_or_else(|e| panic!("{e}"))[..], empty);
        assert_eq!(decode_whole(&empty), [Message { headers: vec![], payload: Bytes::new() }]);

        let mut no_headers = vec![0x00, 0x00, 0x00, 0x1d, 0x00, 0x00, 0x00, 0x00, 0xfd, 0x52, 0x8c, 0x5a];
        no_headers.extend_from_slice(b"{'foo':'bar'}");
        no_headers.extend_from_slice(&[0xc3, 0x65, 0x39, 0x36]);
        assert_eq!(encode::<&str>(&[], b"{'foo':'bar'}").unwrap_or_else(|e| panic!("{e}"))[..], no_headers);

        let mut one_header = vec![0x00, 0x00, 0x00, 0x3d, 0x00, 0x00, 0x00, 0x20, 0x07, 0xfd, 0x83, 0x96, 0x0c];
        one_header.extend_from_slice(b"content-type");
        one_header.extend_from_slice(&[0x07, 0x00, 0x10]);
        one_header.extend_from_slice(b"application/json");
        one_header.extend_from_slice(b"{'foo':'bar'}");
        one_header.extend_from_slice(&[0x8d, 0x9c, 0x08, 0xb1]);
        let decoded = decode_whole(&one_header);
        assert_eq!(decoded.len(), 1);
        assert_eq!(decoded[0].header_str("content-type"), Some("application/json"));
        assert_eq!(&decoded[0].payload[..], b"{'foo':'bar'}");
        assert_eq!(encode(&decoded[0].headers, &decoded[0].payload).unwrap_or_else(|e| panic!("{e}"))[..], one_header);
    }

    fn every_header_type() -> Vec<(String, HeaderValue)> {
        vec![
            ("true".into(), HeaderValue::Bool(true)),
            ("false".into(), HeaderValue::Bool(false)),
            ("byte".into(), HeaderValue::Byte(-7)),
            ("short".into(), HeaderValue::Short(-30_000)),
            ("int".into(), HeaderValue::Int(i32::MIN)),
            ("long".into(), HeaderValue::Long(i64::MAX)),
            ("bytes".into(), HeaderValue::Bytes(Bytes::from_static(&[0, 1, 2, 0xff]))),
            ("string".into(), HeaderValue::String("héllo ✓".into())),
            ("timestamp".into(), HeaderValue::Timestamp(1_700_000_000_123)),
            ("uuid".into(), HeaderValue::Uuid(*b"0123456789abcdef")),
            ("empty".into(), HeaderValue::String(String::new())),
            // A repeated name keeps both, in order.
            ("string".into(), HeaderValue::String("second".into())),
        ]
    }

    #[test]
    fn round_trip_every_header_type() {
        let headers = every_header_type();
        let payload = b"\x00binary payload\xff";
        let frame = encode(&headers, payload).unwrap_or_else(|e| panic!("{e}"));
        let expected = Message { headers, payload: Bytes::from_static(payload) };
        assert_eq!(decode_whole(&frame), std::slice::from_ref(&expected));
        assert_eq!(decode_bytewise(&frame), std::slice::from_ref(&expected));
        assert_eq!(expected.header_str("string"), Some("héllo ✓"));
        assert_eq!(expected.header("long"), Some(&HeaderValue::Long(i64::MAX)));
        assert_eq!(expected.header_str("long"), None);
    }

    #[test]
    fn several_messages_in_one_chunk_and_split_across_chunks() {
        let a = encode(&[(":event-type", HeaderValue::String("a".into()))], b"1").unwrap_or_else(|e| panic!("{e}"));
        let b = encode(&[(":event-type", HeaderValue::String("b".into()))], b"22").unwrap_or_else(|e| panic!("{e}"));
        let stream = [a.as_ref(), b.as_ref(), a.as_ref()].concat();
        for split in 0..=stream.len() {
            let mut decoder = Decoder::new();
            let mut got = decoder.feed(&stream[..split]).unwrap_or_else(|e| panic!("{e}"));
            got.extend(decoder.feed(&stream[split..]).unwrap_or_else(|e| panic!("{e}")));
            decoder.finish().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(event_types(&got), ["a", "b", "a"], "split at {split}");
            assert_eq!(decoder.buffered(), 0);
        }
    }

    #[test]
    fn common_header_helpers() {
        let exception = Message {
            headers: vec![
                (":message-type".into(), HeaderValue::String("exception".into())),
                (":exception-type".into(), HeaderValue::String("throttlingException".into())),
                (":content-type".into(), HeaderValue::String("application/json".into())),
            ],
            payload: Bytes::from_static(b"{\"message\":\"slow down\"}"),
        };
        assert_eq!(exception.message_type(), Some(MessageType::Exception));
        assert_eq!(exception.exception_type(), Some("throttlingException"));
        assert_eq!(exception.event_type(), None);

        let error = Message {
            headers: vec![
                (":message-type".into(), HeaderValue::String("error".into())),
                (":error-code".into(), HeaderValue::String("InternalFailure".into())),
                (":error-message".into(), HeaderValue::String("boom".into())),
            ],
            payload: Bytes::new(),
        };
        assert_eq!(error.message_type(), Some(MessageType::Error));
        assert_eq!((error.error_code(), error.error_message()), (Some("InternalFailure"), Some("boom")));

        let odd = Message { headers: vec![(":message-type".into(), HeaderValue::Int(1))], payload: Bytes::new() };
        assert_eq!(odd.message_type(), None);
        let other = Message {
            headers: vec![(":message-type".into(), HeaderValue::String("ping".into()))],
            payload: Bytes::new(),
        };
        assert_eq!(other.message_type(), Some(MessageType::Other("ping")));
    }

    fn sample_frame() -> Bytes {
        encode(&[(":event-type", HeaderValue::String("chunk".into()))], b"{\"bytes\":\"\"}")
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn flipped_payload_byte_is_a_message_crc_error() {
        let mut frame = sample_frame().to_vec();
        let at = frame.len() - 6;
        frame[at] ^= 0x01;
        let mut decoder = Decoder::new();
        assert!(matches!(decoder.feed(&frame), Err(DecodeError::MessageCrc { .. })));
        // The stream is lost from here on.
        assert!(matches!(decoder.feed(&sample_frame()), Err(DecodeError::MessageCrc { .. })));
        assert!(matches!(decoder.finish(), Err(DecodeError::MessageCrc { .. })));
    }

    #[test]
    fn flipped_byte_anywhere_is_caught() {
        let frame = sample_frame();
        for at in 0..frame.len() {
            let mut bad = frame.to_vec();
            bad[at] ^= 0x80;
            let mut decoder = Decoder::new();
            let result = decoder.feed(&bad).and_then(|m| decoder.finish().map(|()| m));
            assert!(
                matches!(result, Err(DecodeError::PreludeCrc { .. } | DecodeError::MessageCrc { .. })),
                "byte {at}: {result:?}"
            );
        }
    }

    #[test]
    fn flipped_prelude_byte_is_a_prelude_crc_error() {
        let mut frame = sample_frame().to_vec();
        frame[2] ^= 0x40;
        assert!(matches!(Decoder::new().feed(&frame), Err(DecodeError::PreludeCrc { .. })));
    }

    fn prelude(total: u32, headers: u32) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&headers.to_be_bytes());
        let crc = crc32fast::hash(&p);
        p.extend_from_slice(&crc.to_be_bytes());
        p
    }

    #[test]
    fn absurd_length_is_refused_before_the_body_arrives() {
        let mut decoder = Decoder::new();
        // A valid prelude claiming ~4 GiB: refused on the prelude alone, nothing reserved.
        let err = decoder.feed(&prelude(0xffff_fff0, 0)).err();
        assert_eq!(err, Some(DecodeError::TooLarge { length: 0xffff_fff0, max: DEFAULT_MAX_MESSAGE_SIZE }));
        assert!(decoder.buf.capacity() < 1024, "reserved {} bytes", decoder.buf.capacity());
        assert_eq!(decoder.buffered(), 0);
        assert!(format!("{decoder:?}").contains("TooLarge"));

        // The limit is configurable and inclusive.
        let frame = sample_frame();
        let mut exact = Decoder::with_max_message_size(frame.len());
        assert_eq!(exact.feed(&frame).map(|m| m.len()), Ok(1));
        let mut below = Decoder::with_max_message_size(frame.len() - 1);
        assert!(matches!(below.feed(&frame), Err(DecodeError::TooLarge { .. })));
    }

    #[test]
    fn inconsistent_lengths_are_refused() {
        for (total, headers) in [(0, 0), (15, 0), (16, 1), (20, 5), (20, u32::MAX)] {
            let err = Decoder::new().feed(&prelude(total, headers)).err();
            assert_eq!(err, Some(DecodeError::BadLength { total, headers }), "total {total}, headers {headers}");
        }
    }

    /// Frames a raw header block with valid CRCs, to reach the header parser.
    fn frame_with_header_block(block: &[u8]) -> Vec<u8> {
        let total = (MIN_MESSAGE_LEN + block.len()) as u32;
        let mut frame = prelude(total, block.len() as u32);
        frame.extend_from_slice(block);
        let crc = crc32fast::hash(&frame);
        frame.extend_from_slice(&crc.to_be_bytes());
        frame
    }

    #[test]
    fn bad_header_type_is_named() {
        let frame = frame_with_header_block(b"\x03abc\x0a");
        assert_eq!(Decoder::new().feed(&frame).err(), Some(DecodeError::BadHeaderType { name: "abc".into(), tag: 10 }));
    }

    #[test]
    fn malformed_header_blocks_are_errors_not_panics() {
        let cases: [&[u8]; 7] = [
            b"\x05ab",                    // name runs past the block
            b"\x03abc",                   // no type
            b"\x03abc\x04\x00\x01",       // int cut short
            b"\x03abc\x07\x00\x09short",  // string cut short
            b"\x03abc\x06\x00",           // bytes length cut short
            b"\x02\xff\xfe\x00",          // name not UTF-8
            b"\x01a\x07\x00\x02\xc3\x28", // string not UTF-8
        ];
        for block in cases {
            let err = Decoder::new().feed(&frame_with_header_block(block)).err();
            assert!(matches!(err, Some(DecodeError::BadHeaders(_))), "{block:?}: {err:?}");
        }
    }

    #[test]
    fn stream_ending_inside_a_message_is_truncated() {
        let frame = sample_frame();
        for cut in 1..frame.len() {
            let mut decoder = Decoder::new();
            assert_eq!(decoder.feed(&frame[..cut]), Ok(vec![]));
            assert_eq!(decoder.finish(), Err(DecodeError::Truncated { buffered: cut }), "cut at {cut}");
        }
        assert_eq!(Decoder::new().finish(), Ok(()));
    }

    #[test]
    fn good_messages_before_a_bad_one_are_still_delivered() {
        let mut bad = sample_frame().to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        let stream = [sample_frame().as_ref(), sample_frame().as_ref(), &bad].concat();
        let mut decoder = Decoder::new();
        assert_eq!(decoder.feed(&stream).map(|m| m.len()), Ok(2));
        assert!(matches!(decoder.feed(b""), Err(DecodeError::MessageCrc { .. })));

        let mut decoder = Decoder::new();
        assert_eq!(decoder.feed(&stream).map(|m| m.len()), Ok(2));
        assert!(matches!(decoder.finish(), Err(DecodeError::MessageCrc { .. })));
    }

    #[test]
    fn encode_refuses_what_the_format_cannot_hold() {
        let long_name = "n".repeat(256);
        assert_eq!(encode(&[(long_name.as_str(), HeaderValue::Bool(true))], b""), Err(EncodeError::NameTooLong(256)));
        let long_value = HeaderValue::String("v".repeat(65_536));
        assert_eq!(encode(&[("k", long_value)], b""), Err(EncodeError::ValueTooLong { name: "k".into(), len: 65_536 }));
        // The largest lengths that fit are accepted.
        let max_name = "n".repeat(255);
        let max_value = HeaderValue::Bytes(Bytes::from(vec![7u8; 65_535]));
        let frame = encode(&[(max_name.as_str(), max_value.clone())], b"").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(decode_whole(&frame)[0].header(&max_name), Some(&max_value));
    }

    /// Deterministic garbage of every shape: the decoder returns errors, never panics.
    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let frame = sample_frame();
        for _ in 0..2_000 {
            let mut data = if next() % 2 == 0 { frame.to_vec() } else { vec![0u8; (next() % 64) as usize] };
            for _ in 0..=(next() % 4) {
                if data.is_empty() {
                    break;
                }
                let at = (next() as usize) % data.len();
                data[at] = next() as u8;
            }
            let mut decoder = Decoder::with_max_message_size(1024);
            let _ = decoder.feed(&data);
            let _ = decoder.finish();
        }
    }
}
