//! `switchyard mock`: a simulated OpenAI-protocol provider for tests, benchmarks and local work.
//!
//! Answers are deterministic (a function of the request), and the usage it reports counts exactly
//! what it sent: one token per word of the answer. Faults come from the command line (every
//! request) or per request, from `x-mock-*` headers or a `mock` object in the JSON body (which
//! passes through the gateway untouched, as unknown fields do).

mod answer;
mod faults;
mod server;

pub use faults::Faults;
pub use server::{MockStats, router, serve};
