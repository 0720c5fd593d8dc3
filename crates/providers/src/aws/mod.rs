//! The AWS pieces a Bedrock provider needs, kept free of any provider wiring: the event-stream
//! codec its streaming answers are framed in, and SigV4 request signing.

pub mod eventstream;
pub mod sigv4;
