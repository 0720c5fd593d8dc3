//! `switchyard demo`: the gateway in front of simulated providers, with no keys and no network.

use std::net::SocketAddr;
use std::time::Duration;

use switchyard_providers::UpstreamClient;
use switchyard_providers::mock::{self, Faults};

use crate::{AppState, DEFAULT_LISTEN, Runtime, StartError, app, config, serve_on, server};

/// The key the demo accepts, printed in its examples.
pub const DEMO_KEY: &str = "sk-switchyard-demo";

/// Three simulated providers with different speeds and reliability.
fn providers() -> [(&'static str, Faults); 3] {
    [
        (
            "fast",
            Faults { latency: Duration::from_millis(30), chunk_delay: Duration::from_millis(15), ..Default::default() },
        ),
        (
            "steady",
            Faults {
                latency: Duration::from_millis(250),
                chunk_delay: Duration::from_millis(60),
                ..Default::default()
            },
        ),
        // Fails one request in three, so fallbacks show in `x-switchyard-attempts`.
        (
            "flaky",
            Faults {
                latency: Duration::from_millis(80),
                error_rate: 0.34,
                chunk_delay: Duration::from_millis(30),
                ..Default::default()
            },
        ),
    ]
}

fn demo_config(ports: &[(&str, u16)]) -> String {
    let mut providers = String::new();
    for (name, port) in ports {
        providers
            .push_str(&format!("  {name}: {{ type: openai-compatible, base_url: \"http://127.0.0.1:{port}/v1\" }}\n"));
    }
    format!(
        r#"server:
  master_key: {DEMO_KEY}
# The request log lives in memory: see it at /admin/logs and /admin/usage.
storage: "sqlite::memory:"
logging: {{ capture: full }}
providers:
{providers}models:
  - name: smart
    targets:
      - {{ provider: flaky, model: sim-large, weight: 3, price: {{ input_per_mtok: 3, output_per_mtok: 15 }} }}
      - {{ provider: steady, model: sim-large, weight: 1, price: {{ input_per_mtok: 2.5, output_per_mtok: 10 }} }}
    fallbacks: [fast]
  - name: fast
    targets:
      - {{ provider: fast, model: sim-small, price: {{ input_per_mtok: 0.15, output_per_mtok: 0.6 }} }}
  - name: embed
    targets:
      - {{ provider: fast, model: sim-embed }}
"#
    )
}

pub async fn run(listen: Option<String>) -> Result<(), StartError> {
    let mut ports = Vec::new();
    for (name, faults) in providers() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| StartError::Bind(SocketAddr::from(([127, 0, 0, 1], 0)), e))?;
        let port =
            listener.local_addr().map_err(|e| StartError::Bind(SocketAddr::from(([127, 0, 0, 1], 0)), e))?.port();
        let (router, _) = mock::router(faults);
        tokio::spawn(async move { axum::serve(listener, router).await });
        ports.push((name, port));
    }
    let text = demo_config(&ports);
    let cfg = config::parse("demo", &text, &|_| None).map_err(|e| StartError::Config(e.to_string()))?;
    let runtime = Runtime::build(&cfg, "demo").map_err(|e| StartError::Config(e.join("; ")))?;
    let listen = listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let addr: SocketAddr = listen.parse().map_err(|_| StartError::Listen(listen.clone()))?;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| StartError::Bind(addr, e))?;
    let local = listener.local_addr().map_err(|e| StartError::Bind(addr, e))?;
    let client = UpstreamClient::new(Duration::from_secs(2)).map_err(|e| StartError::Client(e.message))?;
    println!("{}", banner(local));
    let mut state = AppState::new(runtime, client);
    let writer = crate::records::start(&mut state, cfg.storage.as_deref(), &cfg.logging, None).await?;
    crate::start_background(&state);
    serve_on(listener, app(state), server::shutdown_signal(), Duration::from_secs(5)).await;
    crate::records::stop(writer).await;
    Ok(())
}

fn banner(addr: SocketAddr) -> String {
    format!(
        r#"Switchyard demo listening on http://{addr}
Simulated providers: fast (30 ms), steady (250 ms), flaky (fails 1 in 3). No keys, no network.
Models: smart (flaky + steady, falls back to fast), fast, embed.   API key: {DEMO_KEY}

Try it:
  curl http://{addr}/v1/chat/completions -i \
    -H "Authorization: Bearer {DEMO_KEY}" -H "Content-Type: application/json" \
    -d '{{"model": "smart", "messages": [{{"role": "user", "content": "Hello"}}]}}'

  curl -N http://{addr}/v1/chat/completions \
    -H "Authorization: Bearer {DEMO_KEY}" -H "Content-Type: application/json" \
    -d '{{"model": "fast", "stream": true, "messages": [{{"role": "user", "content": "Stream please"}}]}}'

The request log (newest first) and usage by model:
  curl -s http://{addr}/admin/logs?limit=5 -H "Authorization: Bearer {DEMO_KEY}"
  curl -s "http://{addr}/admin/usage?group_by=model" -H "Authorization: Bearer {DEMO_KEY}"

Python (pip install openai):
  from openai import OpenAI
  client = OpenAI(base_url="http://{addr}/v1", api_key="{DEMO_KEY}")
  print(client.chat.completions.create(model="smart", messages=[{{"role": "user", "content": "Hello"}}]).choices[0].message.content)
  for chunk in client.chat.completions.create(model="fast", stream=True, messages=[{{"role": "user", "content": "Hi"}}]):
      print(chunk.choices[0].delta.content or "", end="", flush=True)

Press Ctrl-C to stop."#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_config_builds() {
        let text = demo_config(&[("fast", 1), ("steady", 2), ("flaky", 3)]);
        let cfg = config::parse("demo", &text, &|_| None).unwrap_or_else(|e| panic!("{e}"));
        assert!(Runtime::build(&cfg, "demo").is_ok());
    }
}
