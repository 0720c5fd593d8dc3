//! Decoding a client's request must never panic; what decodes must survive encode → decode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_protocols::openai;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = openai::parse_object(data) else { return };
    if let Ok(req) = openai::decode_chat_request(&body) {
        let encoded = openai::encode_chat_request(&req, &req.model);
        let again = openai::decode_chat_request(&encoded);
        assert!(again.is_ok(), "re-encoded request no longer decodes: {:?}", again.err());
    }
    if let Ok(req) = openai::decode_embedding_request(&body) {
        let encoded = openai::encode_embedding_request(&req, &req.model);
        assert!(openai::decode_embedding_request(&encoded).is_ok());
    }
    // Upstream answers are decoded leniently from any JSON.
    let value = serde_json::Value::Object(body);
    let resp = openai::decode_chat_response(&value);
    let _ = openai::encode_chat_response(&resp);
    let _ = openai::decode_embedding_response(&value);
});
