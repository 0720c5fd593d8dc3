#!/usr/bin/env bash
# Measures how hedging cuts the latency tail.
#
# Two simulated targets each answer 1 request in 20 slowly (+500 ms; TAIL_RATE sets the share).
# The same load goes to a model over both targets without hedging and to one that hedges after
# 50 ms: a slow first attempt is raced by a second one on the other target; the first answer wins.
#
#   bench/hedging.sh            # 2,000 requests per model, 16 at a time
#   REQUESTS=500 bench/hedging.sh
#
# Prints a Markdown table and writes bench/out/hedging.json. Timings are measurements, never
# pass/fail.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/switchyard/target}"
REQUESTS="${REQUESTS:-2000}"
CONCURRENCY="${CONCURRENCY:-16}"
TAIL_RATE="${TAIL_RATE:-0.05}"
OUT=bench/out
mkdir -p "$OUT"

command -v oha >/dev/null || cargo install oha --locked
cargo build --release -p switchyard >/dev/null
BIN="$CARGO_TARGET_DIR/release/switchyard"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# Starts a process and echoes the address it prints ("... listening on http://ADDR").
start() {
  local log; log=$(mktemp)
  "$BIN" "$@" >"$log" 2>/dev/null &
  pids+=($!)
  for _ in $(seq 1 100); do
    if grep -q "http://" "$log"; then grep -o "http://[0-9.:]*" "$log" | head -1; return; fi
    sleep 0.1
  done
  echo "error: $* did not start" >&2; exit 1
}

A=$(start mock --listen 127.0.0.1:0 --latency-ms 5 --tail-rate "$TAIL_RATE" --tail-ms 500)
B=$(start mock --listen 127.0.0.1:0 --latency-ms 5 --tail-rate "$TAIL_RATE" --tail-ms 500)
CONFIG="$OUT/hedging.yaml"
cat >"$CONFIG" <<YAML
providers:
  a: { type: openai-compatible, base_url: "$A/v1" }
  b: { type: openai-compatible, base_url: "$B/v1" }
models:
  - name: plain
    targets: [{ provider: a, model: m }, { provider: b, model: m }]
  - name: hedged
    targets: [{ provider: a, model: m }, { provider: b, model: m }]
    hedge: { after: 50ms }
YAML
GW=$(SWITCHYARD_LOG=error start serve --config "$CONFIG" --listen 127.0.0.1:0)

run() {
  oha --no-tui --output-format json -n "$REQUESTS" -c "$CONCURRENCY" -m POST \
    -H "content-type: application/json" \
    -d "{\"model\": \"$1\", \"messages\": [{\"role\": \"user\", \"content\": \"hello\"}]}" \
    "$GW/v1/chat/completions"
}

run plain >"$OUT/hedging-plain.json"
run hedged >"$OUT/hedging-hedged.json"

python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
rows = {}
for name in ("plain", "hedged"):
    d = json.load(open(f"{out}/hedging-{name}.json"))
    p = d["latencyPercentiles"]
    codes = d.get("statusCodeDistribution", {})
    rows[name] = {
        "p50_ms": p["p50"] * 1000, "p90_ms": p["p90"] * 1000, "p99_ms": p["p99"] * 1000,
        "p99.9_ms": p["p99.9"] * 1000, "rps": d["summary"]["requestsPerSec"], "status": codes,
    }
print("| model | p50 ms | p90 ms | p99 ms | p99.9 ms | req/s | statuses |")
print("|---|---|---|---|---|---|---|")
for name, r in rows.items():
    print(f"| {name} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} | {r['p99_ms']:.1f} | {r['p99.9_ms']:.1f} | {r['rps']:.0f} | {r['status']} |")
json.dump(rows, open(f"{out}/hedging.json", "w"), indent=2)
PY
