//! Decoding upstream stream chunks must never panic, and re-encoding what decodes must work.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_protocols::openai::{ChunkDecoder, ChunkEncoder};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut decoder = ChunkDecoder::default();
    let mut encoder = ChunkEncoder::new(true);
    for line in text.split('\n') {
        if let Ok(events) = decoder.decode(line) {
            for e in &events {
                let _ = encoder.encode(e);
            }
        }
    }
});
