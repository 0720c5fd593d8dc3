//! Recorded provider traffic (`../shared/fixtures/`) as the conformance tests read it.
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;

pub fn fixtures() -> PathBuf {
    // Read when the test runs, not when it was built: cargo reuses a cached test binary after the
    // checkout moves (CI clones to a new place each time), and a path baked in would be stale.
    let crate_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    let dir = PathBuf::from(crate_dir).join("../../../shared/fixtures");
    assert!(dir.is_dir(), "fixtures not found at {} (shared/ must sit beside the repository)", dir.display());
    dir
}

/// One recorded exchange, whatever the cassette format.
pub struct Exchange {
    pub file: String,
    pub url: String,
    pub request: Option<Value>,
    pub status: u16,
    pub body: String,
}

pub fn text_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// Reads go-vcr (envoy) and vcrpy (mirascope, pydantic) cassettes. Gzip bodies are skipped.
pub fn cassette(path: &PathBuf) -> Vec<Exchange> {
    read_cassette(path, false)
}

/// Reads a cassette like `cassette`, but also the bodies stored gzipped (base64 `!!binary`).
pub fn gzip_cassette(path: &PathBuf) -> Vec<Exchange> {
    read_cassette(path, true)
}

fn read_cassette(path: &PathBuf, inflate_gzip: bool) -> Vec<Exchange> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let opts = serde_saphyr::options! { ignore_binary_tag_for_string: true };
    let doc: Value =
        serde_saphyr::from_str_with_options(&text, opts).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = path.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default();
    let mut out = Vec::new();
    for i in doc["interactions"].as_array().into_iter().flatten() {
        let (req, resp) = (&i["request"], &i["response"]);
        let gzip = resp["headers"].as_object().is_some_and(|h| {
            h.iter().any(|(k, v)| k.eq_ignore_ascii_case("content-encoding") && v.to_string().contains("gzip"))
        });
        let request = req
            .get("parsed_body")
            .cloned()
            .or_else(|| text_of(req.get("body")).and_then(|b| serde_json::from_str(&b).ok()));
        let stored = match resp["body"].get("string") {
            Some(s) => text_of(Some(s)),
            None => text_of(resp.get("body")),
        };
        let body = match (resp.get("parsed_body"), stored) {
            (Some(parsed), _) => parsed.to_string(),
            (None, Some(stored)) if gzip && inflate_gzip => {
                String::from_utf8(inflate::gunzip(&inflate::base64(&stored))).unwrap_or_else(|e| panic!("{file}: {e}"))
            }
            (None, Some(_)) if gzip => continue,
            (None, Some(stored)) => stored,
            (None, None) => continue,
        };
        let status = resp["code"].as_u64().or_else(|| resp["status"]["code"].as_u64()).unwrap_or(0) as u16;
        let url = text_of(req.get("uri").or(req.get("url"))).unwrap_or_default();
        out.push(Exchange { file: file.clone(), url, request, status, body });
    }
    out
}

/// Every exchange of the cassettes in `dir` named `prefix*.yaml`, gzipped bodies skipped.
pub fn all_exchanges(dir: &str, prefix: &str) -> Vec<Exchange> {
    cassette_paths(dir, prefix).iter().flat_map(cassette).collect()
}

/// Every exchange of the cassettes in `dir` named `prefix*.yaml`, gzipped bodies inflated.
pub fn gzip_exchanges(dir: &str, prefix: &str) -> Vec<Exchange> {
    cassette_paths(dir, prefix).iter().flat_map(gzip_cassette).collect()
}

fn cassette_paths(dir: &str, prefix: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures().join(dir))
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default();
            name.ends_with(".yaml") && name.starts_with(prefix)
        })
        .collect();
    paths.sort();
    paths
}

/// Base64 and gunzip, just enough to read the recordings stored gzipped.
pub mod inflate {
    pub fn base64(text: &str) -> Vec<u8> {
        let value = |c: u8| match c {
            b'A'..=b'Z' => Some(c - b'A'),
            b'a'..=b'z' => Some(c - b'a' + 26),
            b'0'..=b'9' => Some(c - b'0' + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        };
        let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0u32);
        for v in text.bytes().filter_map(value) {
            acc = (acc << 6) | u32::from(v);
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        out
    }

    /// The payload of a gzip member (RFC 1952).
    pub fn gunzip(data: &[u8]) -> Vec<u8> {
        assert!(data.len() > 18 && data[..3] == [0x1f, 0x8b, 8], "not gzip");
        let flags = data[3];
        let mut pos = 10;
        if flags & 4 != 0 {
            pos += 2 + usize::from(u16::from_le_bytes([data[pos], data[pos + 1]]));
        }
        for flag in [8, 16] {
            if flags & flag != 0 {
                pos += data[pos..].iter().position(|&b| b == 0).unwrap_or(0) + 1;
            }
        }
        if flags & 2 != 0 {
            pos += 2;
        }
        inflate(&data[pos..])
    }

    struct Bits<'a> {
        data: &'a [u8],
        pos: usize,
        bit: u32,
    }

    impl Bits<'_> {
        fn bits(&mut self, n: u32) -> u32 {
            let mut v = 0;
            for i in 0..n {
                let b = u32::from(self.data[self.pos] >> self.bit) & 1;
                v |= b << i;
                self.bit += 1;
                if self.bit == 8 {
                    self.bit = 0;
                    self.pos += 1;
                }
            }
            v
        }
    }

    /// A canonical Huffman code: how many codes of each length, and the symbols in code order.
    struct Huffman {
        counts: [i32; 16],
        symbols: Vec<u16>,
    }

    fn huffman(lengths: &[u8]) -> Huffman {
        let mut counts = [0i32; 16];
        lengths.iter().for_each(|&l| counts[usize::from(l)] += 1);
        counts[0] = 0;
        let mut offsets = [0usize; 16];
        for len in 1..15 {
            offsets[len + 1] = offsets[len] + counts[len] as usize;
        }
        let mut symbols = vec![0u16; lengths.len()];
        for (symbol, &l) in lengths.iter().enumerate() {
            if l != 0 {
                symbols[offsets[usize::from(l)]] = symbol as u16;
                offsets[usize::from(l)] += 1;
            }
        }
        Huffman { counts, symbols }
    }

    fn decode(bits: &mut Bits, h: &Huffman) -> usize {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..16 {
            code |= bits.bits(1) as i32;
            let count = h.counts[len];
            if code - count < first {
                return usize::from(h.symbols[(index + code - first) as usize]);
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        panic!("bad Huffman code")
    }

    const LENGTH_BASE: [usize; 29] = [
        3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227,
        258,
    ];
    const LENGTH_EXTRA: [u32; 29] =
        [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
    const DIST_BASE: [usize; 30] = [
        1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097,
        6145, 8193, 12289, 16385, 24577,
    ];
    const DIST_EXTRA: [u32; 30] =
        [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];

    /// Raw DEFLATE (RFC 1951): stored, fixed and dynamic blocks.
    fn inflate(data: &[u8]) -> Vec<u8> {
        let mut bits = Bits { data, pos: 0, bit: 0 };
        let mut out = Vec::new();
        loop {
            let last = bits.bits(1) == 1;
            match bits.bits(2) {
                0 => {
                    if bits.bit != 0 {
                        bits.bit = 0;
                        bits.pos += 1;
                    }
                    let len = usize::from(u16::from_le_bytes([data[bits.pos], data[bits.pos + 1]]));
                    bits.pos += 4;
                    out.extend_from_slice(&data[bits.pos..bits.pos + len]);
                    bits.pos += len;
                }
                1 => {
                    let mut lengths = [8u8; 288];
                    lengths[144..256].fill(9);
                    lengths[256..280].fill(7);
                    codes(&mut bits, &mut out, &huffman(&lengths), &huffman(&[5u8; 30]));
                }
                2 => {
                    let (lit, dist) = dynamic_tables(&mut bits);
                    codes(&mut bits, &mut out, &lit, &dist);
                }
                _ => panic!("bad block type"),
            }
            if last {
                return out;
            }
        }
    }

    fn dynamic_tables(bits: &mut Bits) -> (Huffman, Huffman) {
        const ORDER: [usize; 19] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];
        let nlen = bits.bits(5) as usize + 257;
        let ndist = bits.bits(5) as usize + 1;
        let ncode = bits.bits(4) as usize + 4;
        let mut code_lengths = [0u8; 19];
        for &at in &ORDER[..ncode] {
            code_lengths[at] = bits.bits(3) as u8;
        }
        let code = huffman(&code_lengths);
        let mut lengths = Vec::with_capacity(nlen + ndist);
        while lengths.len() < nlen + ndist {
            match decode(bits, &code) {
                sym @ 0..=15 => lengths.push(sym as u8),
                16 => {
                    let prev = *lengths.last().unwrap_or(&0);
                    let n = 3 + bits.bits(2) as usize;
                    lengths.extend(std::iter::repeat_n(prev, n));
                }
                17 => lengths.extend(std::iter::repeat_n(0, 3 + bits.bits(3) as usize)),
                _ => lengths.extend(std::iter::repeat_n(0, 11 + bits.bits(7) as usize)),
            }
        }
        (huffman(&lengths[..nlen]), huffman(&lengths[nlen..]))
    }

    fn codes(bits: &mut Bits, out: &mut Vec<u8>, lit: &Huffman, dist: &Huffman) {
        loop {
            let sym = decode(bits, lit);
            if sym < 256 {
                out.push(sym as u8);
                continue;
            }
            if sym == 256 {
                return;
            }
            let sym = sym - 257;
            let len = LENGTH_BASE[sym] + bits.bits(LENGTH_EXTRA[sym]) as usize;
            let d = decode(bits, dist);
            let distance = DIST_BASE[d] + bits.bits(DIST_EXTRA[d]) as usize;
            let start = out.len() - distance;
            for k in 0..len {
                out.push(out[start + k]);
            }
        }
    }
}
