//! Wire formats and their conversion to and from the IR, one module per protocol, and the
//! codecs the streaming formats share.

pub mod anthropic;
pub mod openai;
pub mod sse;
