//! The SSE decoder must never panic, must respect its frame bound, and must give the same events
//! however the input is split across reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_protocols::sse::SseDecoder;

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    // The first byte picks a split point and a small frame bound, so both paths get exercised.
    let split = usize::from(data[0]) % data.len();
    let limit = 64 + usize::from(data[0]) * 4;
    let input = &data[1..];
    let split = split.min(input.len());

    let whole = decode(&[input], limit);
    let pieces = decode(&[&input[..split], &input[split..]], limit);
    let bytewise: Vec<&[u8]> = input.chunks(1).collect();
    let single = decode(&bytewise, limit);
    if let (Ok(a), Ok(b), Ok(c)) = (&whole, &pieces, &single) {
        assert_eq!(a, b);
        assert_eq!(a, c);
        for e in a {
            assert!(e.data.len() <= limit);
        }
    }
});

fn decode(chunks: &[&[u8]], limit: usize) -> Result<Vec<switchyard_protocols::sse::SseEvent>, ()> {
    let mut d = SseDecoder::new(limit);
    let mut out = Vec::new();
    for c in chunks {
        out.extend(d.feed(c).map_err(|_| ())?);
    }
    out.extend(d.finish());
    Ok(out)
}
