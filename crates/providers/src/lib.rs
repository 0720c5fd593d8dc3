//! Provider kinds (endpoints, auth, per-provider quirks), the pooled upstream client, and the
//! built-in mock provider.

pub mod aws;
mod call;
mod client;
pub mod mock;
mod provider;

pub use call::{
    ChatOutcome, EventStream, StreamItem, StreamStart, UPSTREAM_AUTH_ERROR, UPSTREAM_FORBIDDEN, chat, count_tokens,
    embeddings,
};
pub use client::{Timeouts, UpstreamClient};
pub use provider::{HealthCheckSpec, Provider, ProviderSpec, ProviderType};
