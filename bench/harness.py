"""Switchyard's performance harness (see bench/run). Standard library only."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

KEY = "sk-bench-app-key-1"
TARGETS = {  # DESIGN.md section 8
    "added_p50_ms_at_1000": 0.1,
    "added_p99_ms_at_1000": 0.5,
    "saturation_ratio": 0.40,
    "stream_ttfb_added_ms": 0.2,
    "idle_streams_10k_mb": 200.0,
    "rss_at_rest_mb": 30.0,
}


def start(bin_path: str, args: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """Starts a switchyard process and returns it with the address it prints."""
    proc = subprocess.Popen(
        [bin_path, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "SWITCHYARD_LOG": "error", **(env or {})},
    )
    deadline = time.time() + 20
    assert proc.stdout is not None
    while time.time() < deadline:
        line = proc.stdout.readline()
        if "http://" in line:
            return proc, line[line.index("http://") :].strip()
    proc.kill()
    sys.exit(f"error: {args} did not start")


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def body(extra: dict | None = None, model: str = "chat") -> str:
    # About 1 KB, as the budget says.
    return json.dumps({"model": model, "messages": [{"role": "user", "content": "x " * 450}], **(extra or {})})


def oha(url: str, seconds: float, connections: int, rate: int | None = None) -> dict:
    paced = ["-q", str(rate)] if rate else []
    cmd = ["oha", "--no-tui", "--output-format", "json", "-z", f"{seconds}s", "-c", str(connections), *paced,
           "-m", "POST", "-H", f"authorization: Bearer {KEY}", "-H", "content-type: application/json", "-d", body(),
           f"{url}/v1/chat/completions"]
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    p = out["latencyPercentiles"]
    codes = out.get("statusCodeDistribution", {})
    return {
        "rps": out["summary"]["requestsPerSec"],
        "p50_ms": (p["p50"] or 0) * 1000,
        "p99_ms": (p["p99"] or 0) * 1000,
        "p999_ms": (p["p99.9"] or 0) * 1000,
        "requests": sum(codes.values()),
        "non_200": sum(v for k, v in codes.items() if k != "200"),
    }


# A chunk that carries generated text (the mock's role chunk has "content":"").
FIRST_TOKEN = re.compile(rb'"content":"[^"]')


async def stream_once(host: str, port: int, payload: str) -> tuple[float, float, float]:
    """One streamed request over a fresh connection: (time to first body byte, to the first
    chunk with text, total), in ms."""
    reader, writer = await asyncio.open_connection(host, port)
    req = (f"POST /v1/chat/completions HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer {KEY}\r\n"
           f"content-type: application/json\r\ncontent-length: {len(payload)}\r\nconnection: close\r\n\r\n{payload}")
    t0 = time.perf_counter()
    writer.write(req.encode())
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    seen = await reader.read(1)
    ttfb = time.perf_counter() - t0
    ttft = None
    while chunk := await reader.read(65536):
        if ttft is None:
            seen += chunk
            if FIRST_TOKEN.search(seen):
                ttft = time.perf_counter() - t0
    total = time.perf_counter() - t0
    writer.close()
    return ttfb * 1000, (ttft or total) * 1000, total * 1000


async def streaming(url: str, n: int, model: str = "chat") -> dict:
    host, port = url.removeprefix("http://").split(":")
    payload = body({"stream": True, "mock": {"chunks": 10, "chunk_delay_ms": 5}}, model)
    samples = [await stream_once(host, int(port), payload) for _ in range(n)]
    p50 = lambda i: sorted(s[i] for s in samples)[len(samples) // 2]
    return {"ttfb_p50_ms": p50(0), "ttft_p50_ms": p50(1), "total_p50_ms": p50(2)}


async def idle_streams(url: str, n: int) -> int:
    """Opens n streams that stay open (the mock stalls after the first chunk); returns how many."""
    host, port = url.removeprefix("http://").split(":")
    payload = body({"stream": True, "mock": {"stall_after": 2}})
    req = (f"POST /v1/chat/completions HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer {KEY}\r\n"
           f"content-type: application/json\r\ncontent-length: {len(payload)}\r\n\r\n{payload}").encode()
    held = []

    async def one():
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(req)
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        await reader.read(1)
        held.append(writer)

    sem = asyncio.Semaphore(256)

    async def gated():
        async with sem:
            try:
                await asyncio.wait_for(one(), 30)
            except (OSError, asyncio.TimeoutError):
                pass

    await asyncio.gather(*(gated() for _ in range(n)))
    return len(held), held


def overhead_from_metrics(url: str) -> dict:
    """p50 and p99 of switchyard_gateway_overhead_seconds, from its buckets (upper bounds)."""
    text = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
    buckets = []
    for line in text.splitlines():
        if line.startswith("switchyard_gateway_overhead_seconds_bucket"):
            le = line.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
    total = max((c for _, c in buckets), default=0)

    def q(p):
        for le, c in sorted(buckets):
            if total and c >= p * total:
                return le * 1000
        return None

    return {"overhead_p50_ms_le": q(0.5), "overhead_p99_ms_le": q(0.99), "overhead_samples": total}


def record_counts(url: str) -> dict:
    """Request records written and dropped, from /metrics (0 when not yet counted)."""
    text = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
    counts = {"written": 0.0, "dropped": 0.0}
    for line in text.splitlines():
        if line.startswith("switchyard_records_written_total"):
            counts["written"] += float(line.rsplit(" ", 1)[1])
        elif line.startswith("switchyard_records_dropped_total"):
            counts["dropped"] += float(line.rsplit(" ", 1)[1])
    return counts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("bench.db*"):
        old.unlink()
    secs = 1 if args.smoke else 10
    rates = [200] if args.smoke else [500, 1000, 2000]
    n_streams = 20 if args.smoke else 200
    # Each idle stream costs the gateway two file descriptors (client and upstream).
    fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    n_idle = 100 if args.smoke else min(10_000, (fd_limit - 500) // 2)

    mock, mock_url = start(args.bin, ["mock", "--listen", "127.0.0.1:0"])
    config = out / "bench.yaml"
    config.write_text(f"""\
server:
  master_key: sk-bench-master-key
# Production-like: every request is logged to SQLite, priced, rate-limited and budgeted.
storage: "sqlite://{out / 'bench.db'}"
providers:
  mock: {{ type: openai-compatible, base_url: "{mock_url}/v1" }}
models:
  - name: chat
    targets: [{{ provider: mock, model: mock-model, price: {{ input_per_mtok: 2, output_per_mtok: 8 }} }}]
    timeout: {{ stall: 600s }}
  # The same target, its streams begun at the upstream's first event instead of its first token.
  - name: chat-early
    targets: [{{ provider: mock, model: mock-model, price: {{ input_per_mtok: 2, output_per_mtok: 8 }} }}]
    stream_start: immediately
keys:
  - name: app
    key: {KEY}
    models: [chat, chat-early]
    # High enough never to refuse the load: the point is to pay for the checks.
    limits: {{ rpm: 100000000, tpm: 100000000000, concurrency: 100000 }}
    budget: {{ usd: 1000000000, period: monthly }}
""")
    gateway, gw_url = start(args.bin, ["serve", "--config", str(config), "--listen", "127.0.0.1:0"])
    results: dict = {"smoke": args.smoke, "machine": {"cpus": os.cpu_count(), "fd_limit": fd_limit}}
    try:
        time.sleep(0.5)
        results["rss_at_rest_mb"] = rss_mb(gateway.pid)

        sat_direct = oha(mock_url, secs, 64)
        cpu0 = cpu_seconds(gateway.pid)
        sat_gw = oha(gw_url, secs, 64)
        cpu1 = cpu_seconds(gateway.pid)
        results["saturation"] = {"direct": sat_direct, "gateway": sat_gw,
                                 "ratio": sat_gw["rps"] / sat_direct["rps"] if sat_direct["rps"] else 0}
        results["cpu_us_per_request"] = (cpu1 - cpu0) / max(sat_gw["requests"], 1) * 1e6

        results["rates"] = {}
        for rate in rates:
            d, g = oha(mock_url, secs, 32, rate), oha(gw_url, secs, 32, rate)
            results["rates"][rate] = {"direct": d, "gateway": g,
                                      "added_p50_ms": g["p50_ms"] - d["p50_ms"],
                                      "added_p99_ms": g["p99_ms"] - d["p99_ms"],
                                      "added_p999_ms": g["p999_ms"] - d["p999_ms"]}
        s_direct = asyncio.run(streaming(mock_url, n_streams))
        s_gw = asyncio.run(streaming(gw_url, n_streams))
        s_early = asyncio.run(streaming(gw_url, n_streams, "chat-early"))
        results["streaming"] = {"direct": s_direct, "gateway": s_gw, "gateway_immediately": s_early,
                                "ttfb_added_ms": s_gw["ttfb_p50_ms"] - s_direct["ttfb_p50_ms"],
                                "ttft_added_ms": s_gw["ttft_p50_ms"] - s_direct["ttft_p50_ms"],
                                "immediately_ttfb_added_ms": s_early["ttfb_p50_ms"] - s_direct["ttfb_p50_ms"],
                                "immediately_ttft_added_ms": s_early["ttft_p50_ms"] - s_direct["ttft_p50_ms"]}
        results["overhead_metric"] = overhead_from_metrics(gw_url)
        time.sleep(0.5)  # the writer stores the last records just after their answers
        results["records"] = record_counts(gw_url)
        results["rss_peak_mb"] = rss_mb(gateway.pid, "VmHWM")

        before = rss_mb(gateway.pid)

        async def hold():
            held, writers = await idle_streams(gw_url, n_idle)
            await asyncio.sleep(1)
            after = rss_mb(gateway.pid)
            for w in writers:
                w.close()
            return held, after

        held, after = asyncio.run(hold())
        per_stream_kb = (after - before) * 1024 / max(held, 1)
        results["idle_streams"] = {"held": held, "rss_before_mb": before, "rss_with_mb": after,
                                   "per_stream_kb": per_stream_kb,
                                   "extrapolated_10k_mb": before + per_stream_kb * 10_000 / 1024}
    finally:
        gateway.kill()
        mock.kill()

    (out / "results.json").write_text(json.dumps(results, indent=2))
    print_table(results)


def print_table(r: dict) -> None:
    rate = r["rates"].get(1000) or next(iter(r["rates"].values()))
    idle = r["idle_streams"]
    rows = [
        ("added latency p50 @ 1000 rps (ms)" if 1000 in r["rates"] else "added latency p50 (ms)", rate["added_p50_ms"], f"≤ {TARGETS['added_p50_ms_at_1000']}"),
        ("added latency p99 @ 1000 rps (ms)" if 1000 in r["rates"] else "added latency p99 (ms)", rate["added_p99_ms"], f"≤ {TARGETS['added_p99_ms_at_1000']}"),
        ("saturation, gateway / direct", r["saturation"]["ratio"], f"≥ {TARGETS['saturation_ratio']}"),
        ("stream time to first byte, added (ms), `stream_start: immediately`", r["streaming"]["immediately_ttfb_added_ms"],
         f"≤ {TARGETS['stream_ttfb_added_ms']}"),
        ("stream time to first byte, added (ms), default (held to the first token)", r["streaming"]["ttfb_added_ms"],
         f"≤ {TARGETS['stream_ttfb_added_ms']}"),
        (f"idle streams: 10k extrapolated from {idle['held']} (MB)", idle["extrapolated_10k_mb"], f"≤ {TARGETS['idle_streams_10k_mb']}"),
        ("resident memory at rest (MB)", r["rss_at_rest_mb"], f"≤ {TARGETS['rss_at_rest_mb']}"),
    ]
    print(("SMOKE RUN: numbers are not meaningful\n" if r["smoke"] else "") + "| figure | measured | target |")
    print("|---|---|---|")
    for name, value, target in rows:
        print(f"| {name} | {value:.3f} | {target} |")
    print()
    print("| load | direct rps | gateway rps | direct p50/p99/p99.9 ms | gateway p50/p99/p99.9 ms |")
    print("|---|---|---|---|---|")
    s = r["saturation"]
    fmt = lambda x: f"{x['p50_ms']:.3f} / {x['p99_ms']:.3f} / {x['p999_ms']:.3f}"
    print(f"| saturation, 64 connections | {s['direct']['rps']:.0f} | {s['gateway']['rps']:.0f} | {fmt(s['direct'])} | {fmt(s['gateway'])} |")
    for q, v in r["rates"].items():
        print(f"| {q} rps | {v['direct']['rps']:.0f} | {v['gateway']['rps']:.0f} | {fmt(v['direct'])} | {fmt(v['gateway'])} |")
    st = r["streaming"]
    print()
    print(f"streaming (10 chunks, 5 ms apart): time to first byte p50 direct {st['direct']['ttfb_p50_ms']:.3f} ms, "
          f"gateway {st['gateway']['ttfb_p50_ms']:.3f} ms; to the first text p50 direct {st['direct']['ttft_p50_ms']:.3f} "
          f"ms, gateway {st['gateway']['ttft_p50_ms']:.3f} ms (added {st['ttft_added_ms']:.3f}); total p50 direct "
          f"{st['direct']['total_p50_ms']:.1f} ms, gateway {st['gateway']['total_p50_ms']:.1f} ms")
    early = st["gateway_immediately"]
    print(f"with `stream_start: immediately`: time to first byte p50 {early['ttfb_p50_ms']:.3f} ms "
          f"(added {st['immediately_ttfb_added_ms']:.3f}), to the first text {early['ttft_p50_ms']:.3f} ms "
          f"(added {st['immediately_ttft_added_ms']:.3f}), total {early['total_p50_ms']:.1f} ms")
    o = r["overhead_metric"]
    print(f"gateway CPU per request at saturation: {r['cpu_us_per_request']:.0f} µs; peak RSS {r['rss_peak_mb']:.1f} MB; "
          f"in-process overhead histogram: p50 ≤ {o['overhead_p50_ms_le']} ms, p99 ≤ {o['overhead_p99_ms_le']} ms "
          f"over {o['overhead_samples']:.0f} requests")
    print(f"idle streams: {idle['held']} held, {idle['per_stream_kb']:.1f} KB each "
          f"(RSS {idle['rss_before_mb']:.1f} → {idle['rss_with_mb']:.1f} MB)")
    rec = r["records"]
    print(f"request log (SQLite): {rec['written']:.0f} records written, {rec['dropped']:.0f} dropped")


if __name__ == "__main__":
    main()
