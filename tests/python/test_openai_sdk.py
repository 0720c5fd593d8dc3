"""Switchyard through the official OpenAI Python SDK.

Every expected value is computed, not hard-coded: the reference is the mock provider answering
the same request directly (it is deterministic), or a property of the request itself.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
from typing import Any, Callable

import openai
import pytest

from conftest import MASTER_KEY, MAX_BODY_BYTES

CHAT = "chat"
EMBED = "embed"
UPSTREAM_CHAT = "mock-large"
UPSTREAM_EMBED = "mock-embed"


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def usage_dict(usage: Any) -> dict[str, Any]:
    """The provider's usage fields: the gateway adds `cost` for priced models, checked on its own."""
    assert usage is not None, "no usage reported"
    fields = usage.model_dump(exclude_none=True)
    fields.pop("cost", None)
    return fields


# --------------------------------------------------------------------------------------------
# Chat, non-streaming
# --------------------------------------------------------------------------------------------


def test_chat_matches_upstream_answer_and_usage(client: openai.OpenAI, mock_client: openai.OpenAI) -> None:
    messages = [
        {"role": "system", "content": "you are a terse assistant"},
        {"role": "user", "content": "what does a model gateway do for my app"},
    ]
    via_gateway = client.chat.completions.create(model=CHAT, messages=messages)
    direct = mock_client.chat.completions.create(model=UPSTREAM_CHAT, messages=messages)

    content = via_gateway.choices[0].message.content
    assert content, "empty answer"
    assert content == direct.choices[0].message.content
    assert via_gateway.choices[0].finish_reason == direct.choices[0].finish_reason == "stop"
    assert via_gateway.object == "chat.completion"
    assert len(via_gateway.choices) == 1

    # Usage: the same as the provider's, and consistent with what was actually sent/received.
    assert usage_dict(via_gateway.usage) == usage_dict(direct.usage)
    u = via_gateway.usage
    assert u is not None
    assert u.completion_tokens == len(content.split())
    assert u.prompt_tokens == sum(len(m["content"].split()) for m in messages)
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens


def test_chat_answer_depends_on_prompt(client: openai.OpenAI) -> None:
    a = client.chat.completions.create(model=CHAT, messages=user("first distinct prompt here"))
    b = client.chat.completions.create(model=CHAT, messages=user("an entirely different question"))
    a2 = client.chat.completions.create(model=CHAT, messages=user("first distinct prompt here"))
    assert a.choices[0].message.content == a2.choices[0].message.content
    assert a.choices[0].message.content != b.choices[0].message.content


def test_chat_max_tokens_truncates_with_length(client: openai.OpenAI, mock_client: openai.OpenAI) -> None:
    full = mock_client.chat.completions.create(model=UPSTREAM_CHAT, messages=user("tell me a long story"))
    full_words = (full.choices[0].message.content or "").split()
    assert len(full_words) > 3
    short = client.chat.completions.create(model=CHAT, messages=user("tell me a long story"), max_tokens=3)
    assert short.choices[0].finish_reason == "length"
    assert (short.choices[0].message.content or "").split() == full_words[:3]
    assert short.usage is not None and short.usage.completion_tokens == 3


def test_chat_routing_headers(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model=CHAT, messages=user("which route did you take"))
    assert raw.status_code == 200
    h = raw.headers
    request_id = h.get("x-request-id")
    assert request_id, f"no x-request-id in {dict(h)}"
    assert h.get("x-switchyard-provider") == "up"
    assert h.get("x-switchyard-model") == UPSTREAM_CHAT
    assert h.get("x-switchyard-attempts") == "1"
    completion = raw.parse()
    assert completion.choices[0].message.content
    # The public name is what the client asked for... or the upstream's; either way it is a model name.
    assert completion.model in (CHAT, UPSTREAM_CHAT)

    again = client.chat.completions.with_raw_response.create(model=CHAT, messages=user("which route did you take"))
    assert again.headers.get("x-request-id") not in (None, "", request_id), "request ids must be unique"


# --------------------------------------------------------------------------------------------
# Streaming
# --------------------------------------------------------------------------------------------


def test_stream_with_usage_matches_non_streamed(client: openai.OpenAI) -> None:
    messages = user("stream the answer to me word by word")
    whole = client.chat.completions.create(model=CHAT, messages=messages)
    chunks = list(
        client.chat.completions.create(
            model=CHAT, messages=messages, stream=True, stream_options={"include_usage": True}
        )
    )
    assert len(chunks) >= 3, f"expected several chunks, got {len(chunks)}"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]

    with_usage = [i for i, c in enumerate(chunks) if c.usage is not None]
    assert with_usage == [len(chunks) - 1], f"usage must be on exactly the final chunk, found at {with_usage}"
    final = chunks[-1]
    assert final.choices == []
    assert usage_dict(final.usage) == usage_dict(whole.usage)
    # Content deltas actually arrive in pieces, not as one blob.
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 1


def test_stream_without_include_usage_has_no_usage(client: openai.OpenAI) -> None:
    messages = user("stream without usage please")
    whole = client.chat.completions.create(model=CHAT, messages=messages)
    for extra in ({}, {"stream_options": {"include_usage": False}}):
        chunks = list(client.chat.completions.create(model=CHAT, messages=messages, stream=True, **extra))
        assert chunks, "empty stream"
        assert [c for c in chunks if c.usage is not None] == [], f"usage sent although not asked for ({extra})"
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == whole.choices[0].message.content


def test_stream_matches_upstream_stream(client: openai.OpenAI, mock_client: openai.OpenAI) -> None:
    messages = user("compare the streams")
    knobs = {"mock": {"chunks": 4}}
    gw = list(client.chat.completions.create(model=CHAT, messages=messages, stream=True, extra_body=knobs))
    up = list(mock_client.chat.completions.create(model=UPSTREAM_CHAT, messages=messages, stream=True, extra_body=knobs))
    pieces = lambda cs: [c.choices[0].delta.content for c in cs if c.choices and c.choices[0].delta.content]  # noqa: E731
    assert "".join(pieces(gw)) == "".join(pieces(up))
    assert len(pieces(up)) == 4


# --------------------------------------------------------------------------------------------
# Tool calls
# --------------------------------------------------------------------------------------------

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "days": {"type": "integer"},
                    "metric": {"type": "boolean"},
                },
                "required": ["city", "days", "metric"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "search_docs",
            "description": "Search the docs",
            "parameters": {
                "type": "object",
                "properties": {
                    "query": {"type": "string"},
                    "limit": {"type": "integer"},
                },
                "required": ["query", "limit"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "set_alarm",
            "description": "Set an alarm",
            "parameters": {
                "type": "object",
                "properties": {
                    "label": {"type": "string"},
                    "hour": {"type": "integer"},
                    "repeat": {"type": "boolean"},
                },
                "required": ["label", "hour", "repeat"],
            },
        },
    },
]

PY_TYPES = {"string": str, "integer": int, "boolean": bool}


def check_arguments(name: str, arguments: str) -> None:
    schema = next(t["function"]["parameters"] for t in TOOLS if t["function"]["name"] == name)
    args = json.loads(arguments)
    assert isinstance(args, dict)
    assert set(args) == set(schema["properties"]), f"{name}: {args}"
    for prop, spec in schema["properties"].items():
        value = args[prop]
        expected = PY_TYPES[spec["type"]]
        assert isinstance(value, expected), f"{name}.{prop}={value!r} is not {spec['type']}"
        if expected is int:
            assert not isinstance(value, bool), f"{name}.{prop}={value!r} is a boolean, not an integer"


def tool_calls_as_tuples(calls: Any) -> list[tuple[str, str, str, str]]:
    return [(c.id, c.type, c.function.name, c.function.arguments) for c in calls]


def test_parallel_tool_calls_non_streamed(client: openai.OpenAI, mock_client: openai.OpenAI) -> None:
    messages = user("check the weather, search the docs and set an alarm")
    resp = client.chat.completions.create(model=CHAT, messages=messages, tools=TOOLS)
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls is not None
    assert [c.function.name for c in calls] == [t["function"]["name"] for t in TOOLS]
    assert len({c.id for c in calls}) == len(TOOLS), "tool call ids must be distinct"
    for c in calls:
        assert c.type == "function"
        assert c.id
        check_arguments(c.function.name, c.function.arguments)

    direct = mock_client.chat.completions.create(model=UPSTREAM_CHAT, messages=messages, tools=TOOLS)
    assert tool_calls_as_tuples(calls) == tool_calls_as_tuples(direct.choices[0].message.tool_calls)
    assert usage_dict(resp.usage) == usage_dict(direct.usage)


def test_parallel_tool_calls_streamed_reassemble_to_non_streamed(client: openai.OpenAI) -> None:
    messages = user("weather, docs and alarm, all at once")
    whole = client.chat.completions.create(model=CHAT, messages=messages, tools=TOOLS)
    expected = tool_calls_as_tuples(whole.choices[0].message.tool_calls)
    assert len(expected) == len(TOOLS)

    chunks = list(
        client.chat.completions.create(
            model=CHAT, messages=messages, tools=TOOLS, stream=True, stream_options={"include_usage": True}
        )
    )
    parts: dict[int, dict[str, Any]] = {}
    deltas_per_index: dict[int, int] = {}
    finish: list[str] = []
    for chunk in chunks:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        if choice.finish_reason:
            finish.append(choice.finish_reason)
        for d in choice.delta.tool_calls or []:
            slot = parts.setdefault(d.index, {"id": None, "type": None, "name": None, "arguments": ""})
            deltas_per_index[d.index] = deltas_per_index.get(d.index, 0) + 1
            if d.id:
                assert slot["id"] in (None, d.id), "a tool call's id changed mid-stream"
                slot["id"] = d.id
            if d.type:
                slot["type"] = d.type
            if d.function is not None:
                if d.function.name:
                    assert slot["name"] in (None, d.function.name)
                    slot["name"] = d.function.name
                if d.function.arguments:
                    slot["arguments"] += d.function.arguments

    assert sorted(parts) == list(range(len(TOOLS)))
    streamed = [(p["id"], p["type"], p["name"], p["arguments"]) for _, p in sorted(parts.items())]
    assert streamed == expected
    for _, _, name, arguments in streamed:
        check_arguments(name, arguments)
    # Arguments really were streamed in pieces.
    assert all(n > 2 for n in deltas_per_index.values()), deltas_per_index
    assert finish == ["tool_calls"]
    assert usage_dict(chunks[-1].usage) == usage_dict(whole.usage)


def test_parallel_tool_calls_false_and_named_tool_choice(client: openai.OpenAI) -> None:
    messages = user("only one tool please")
    one = client.chat.completions.create(model=CHAT, messages=messages, tools=TOOLS, parallel_tool_calls=False)
    calls = one.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == [TOOLS[0]["function"]["name"]]

    named = client.chat.completions.create(
        model=CHAT,
        messages=messages,
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "set_alarm"}},
    )
    calls = named.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["set_alarm"]
    check_arguments("set_alarm", calls[0].function.arguments)


# --------------------------------------------------------------------------------------------
# Embeddings
# --------------------------------------------------------------------------------------------


def assert_vectors_close(a: list[float], b: list[float], tol: float = 1e-6) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert math.isclose(x, y, rel_tol=tol, abs_tol=tol), (x, y)


def test_embeddings_base64_default_equals_float(client: openai.OpenAI) -> None:
    text = "the quick brown fox"
    # The SDK's default asks for base64 and decodes it; on the wire the gateway must answer base64.
    raw = client.embeddings.with_raw_response.create(model=EMBED, input=text)
    wire = raw.http_response.json()["data"][0]["embedding"]
    assert isinstance(wire, str), f"expected a base64 string on the wire, got {type(wire).__name__}"
    default = raw.parse()
    floats_raw = client.embeddings.with_raw_response.create(model=EMBED, input=text, encoding_format="float")
    assert isinstance(floats_raw.http_response.json()["data"][0]["embedding"], list)
    floats = floats_raw.parse()

    a, b = default.data[0].embedding, floats.data[0].embedding
    assert isinstance(a, list) and all(isinstance(x, float) for x in a)
    assert len(a) > 0
    assert len(wire) == 4 * math.ceil(4 * len(a) / 3), "base64 of little-endian f32s"
    assert_vectors_close(a, b)
    assert any(abs(x) > 1e-3 for x in a), "vector is all zeros"
    assert default.object == "list" and default.data[0].object == "embedding"
    assert default.usage.prompt_tokens == len(text.split())


def test_embeddings_match_upstream(client: openai.OpenAI, mock_client: openai.OpenAI) -> None:
    text = "compare me with the provider"
    via = client.embeddings.create(model=EMBED, input=text, encoding_format="float")
    direct = mock_client.embeddings.create(model=UPSTREAM_EMBED, input=text, encoding_format="float")
    assert_vectors_close(via.data[0].embedding, direct.data[0].embedding)
    assert via.usage.model_dump() == direct.usage.model_dump()


@pytest.mark.parametrize("encoding_format", ["float", "base64"])
def test_embeddings_dimensions(client: openai.OpenAI, encoding_format: str) -> None:
    kwargs: dict[str, Any] = {} if encoding_format == "base64" else {"encoding_format": "float"}
    for dims in (3, 16, 64):
        resp = client.embeddings.create(model=EMBED, input="size me", dimensions=dims, **kwargs)
        assert len(resp.data[0].embedding) == dims, (encoding_format, dims)


def test_embeddings_batch_in_order(client: openai.OpenAI) -> None:
    inputs = ["alpha one", "beta two three", "gamma", "delta four five six"]
    batch = client.embeddings.create(model=EMBED, input=inputs, encoding_format="float")
    assert len(batch.data) == len(inputs)
    assert [d.index for d in batch.data] == list(range(len(inputs)))
    singles = [client.embeddings.create(model=EMBED, input=t, encoding_format="float") for t in inputs]
    for i, single in enumerate(singles):
        assert_vectors_close(batch.data[i].embedding, single.data[0].embedding)
    # Different inputs really give different vectors, so the order check above means something.
    assert batch.data[0].embedding != batch.data[1].embedding
    assert batch.usage.prompt_tokens == sum(len(t.split()) for t in inputs)

    b64 = client.embeddings.create(model=EMBED, input=inputs)
    for i in range(len(inputs)):
        assert_vectors_close(b64.data[i].embedding, batch.data[i].embedding)


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def test_models_master_key_lists_all(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert set(ids) == {CHAT, EMBED, "claude-chat", "gemini-chat", "gemini-embed", "bedrock-chat", "fault-429", "fault-5xx"}, ids
    assert len(ids) == len(set(ids))


def test_models_limited_key_lists_only_allowed(limited_client: openai.OpenAI) -> None:
    ids = [m.id for m in limited_client.models.list()]
    assert ids == [EMBED]


def test_limited_key_may_use_allowed_model(limited_client: openai.OpenAI) -> None:
    resp = limited_client.embeddings.create(model=EMBED, input="allowed", encoding_format="float")
    assert len(resp.data) == 1 and resp.data[0].embedding


# --------------------------------------------------------------------------------------------
# Errors, as the SDK's own exception classes
# --------------------------------------------------------------------------------------------


def test_wrong_key_is_authentication_error(gateway_url: str) -> None:
    bad = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key="sk-not-a-real-key", max_retries=0, timeout=10)
    with pytest.raises(openai.AuthenticationError) as e:
        bad.chat.completions.create(model=CHAT, messages=user("hi"))
    assert e.value.status_code == 401
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    with pytest.raises(openai.AuthenticationError):
        bad.embeddings.create(model=EMBED, input="hi")
    bad.close()


def test_missing_key_is_401(gateway_url: str) -> None:
    req = urllib.request.Request(
        f"{gateway_url}/v1/chat/completions",
        data=json.dumps({"model": CHAT, "messages": user("hi")}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 401
    body = json.loads(e.value.read())
    assert isinstance(body.get("error", {}).get("message"), str) and body["error"]["message"]


def test_limited_key_forbidden_model_is_permission_denied(limited_client: openai.OpenAI, mock_stats: Any) -> None:
    before = mock_stats()["requests"]
    with pytest.raises(openai.PermissionDeniedError) as e:
        limited_client.chat.completions.create(model=CHAT, messages=user("may I"))
    assert e.value.status_code == 403
    assert mock_stats()["requests"] == before, "a forbidden request must not reach the provider"


def test_unknown_model_is_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="no-such-model", messages=user("hi"))
    assert e.value.status_code == 404
    assert e.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="no-such-embedder", input="hi")


def test_messages_as_string_is_bad_request(client: openai.OpenAI, mock_stats: Any) -> None:
    before = mock_stats()["requests"]
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=CHAT, messages=[], extra_body={"messages": "hello"})
    assert e.value.status_code == 400
    assert e.value.param == "messages" or "messages" in e.value.message, (e.value.param, e.value.message)
    assert mock_stats()["requests"] == before, "an invalid request must not reach the provider"


def test_wrong_type_temperature_is_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=CHAT, messages=user("hi"), temperature="hot")  # type: ignore[arg-type]
    assert e.value.status_code == 400
    assert e.value.param == "temperature" or "temperature" in e.value.message, (e.value.param, e.value.message)


def test_missing_model_is_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=CHAT, messages=user("hi"), extra_body={"model": None})
    assert e.value.status_code == 400


def test_upstream_429_is_rate_limit_error_with_retry_after(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(
            model="fault-429", messages=user("slow down"), extra_body={"mock": {"status": 429, "retry_after": 7}}
        )
    assert e.value.status_code == 429
    assert e.value.response.headers.get("retry-after") == "7"
    assert "mock fault" in e.value.message


@pytest.mark.parametrize("status", [500, 503])
def test_upstream_5xx_is_internal_server_error(client: openai.OpenAI, status: int) -> None:
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model="fault-5xx", messages=user("break"), extra_body={"mock": {"status": status}})
    assert e.value.status_code == status
    assert "mock fault" in e.value.message


def test_body_over_limit_is_413(client: openai.OpenAI, mock_stats: Any) -> None:
    before = mock_stats()["requests"]
    big = "x " * (MAX_BODY_BYTES // 2 + 1000)
    with pytest.raises(openai.APIStatusError) as e:
        client.chat.completions.create(model=CHAT, messages=user(big))
    assert e.value.status_code == 413
    assert mock_stats()["requests"] == before, "an oversized request must not reach the provider"
    # Just under the limit still works.
    ok = client.chat.completions.create(model=CHAT, messages=user("y " * (MAX_BODY_BYTES // 4)))
    assert ok.choices[0].message.content


# --------------------------------------------------------------------------------------------
# Pass-through and mid-stream failures
# --------------------------------------------------------------------------------------------


def test_unknown_fields_pass_through(client: openai.OpenAI, mock_stats: Any) -> None:
    knob = {"a": [1, 2, {"b": None}]}
    resp = client.chat.completions.create(model=CHAT, messages=user("pass this along"), extra_body={"vendor_knob": knob})
    assert resp.choices[0].message.content
    last = mock_stats()["last_request"]
    assert last["path"] == "/v1/chat/completions"
    assert last["body"]["vendor_knob"] == knob
    assert last["body"]["model"] == UPSTREAM_CHAT
    assert last["body"]["messages"] == user("pass this along")


def test_mid_stream_cut_raises(client: openai.OpenAI) -> None:
    """The provider drops the connection after the stream has started (status 200 already sent):
    the client must get an error, not a silently truncated answer."""
    messages = user("this stream will be cut short")
    whole = client.chat.completions.create(model=CHAT, messages=messages)
    full = whole.choices[0].message.content or ""
    # Paced chunks, so the gateway has committed to the stream before the cut.
    stream = client.chat.completions.create(
        model=CHAT,
        messages=messages,
        stream=True,
        extra_body={"mock": {"cut_after": 3, "chunk_delay_ms": 30}},
        timeout=10,
    )
    assert stream.response.status_code == 200
    received: list[str] = []
    finishes: list[str] = []
    with pytest.raises(openai.APIError) as e:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
            if chunk.choices and chunk.choices[0].finish_reason:
                finishes.append(chunk.choices[0].finish_reason)
    assert e.value.message, "the error must say what went wrong"
    text = "".join(received)
    assert received, "the deltas before the cut should have been forwarded"
    assert text != full, "the cut stream must not look complete"
    assert full.startswith(text), (text, full)
    assert finishes == [], "a cut stream must not carry a finish_reason"


def test_cut_before_stream_starts_is_5xx(client: openai.OpenAI) -> None:
    """The provider drops the connection before sending anything: an error status, not a 200."""
    with pytest.raises(openai.InternalServerError) as e:
        stream = client.chat.completions.create(
            model="fault-5xx", messages=user("cut at once"), stream=True, extra_body={"mock": {"cut_after": 0}}, timeout=10
        )
        for _ in stream:
            pass
    assert e.value.status_code in (502, 503, 504), e.value.status_code


def test_abandoned_stream_closes_upstream(client: openai.OpenAI, mock_stats: Any) -> None:
    """A client that goes away mid-stream must not leave the gateway reading from the provider."""
    assert wait_for(lambda: mock_stats()["open_streams"] == 0), "streams left open by earlier tests"
    started = mock_stats()["streams_started"]
    stream = client.chat.completions.create(
        model=CHAT,
        messages=user("a long slow answer"),
        stream=True,
        # ~6 s if nobody cancels it; the check below waits at most 3 s.
        extra_body={"mock": {"words": 60, "chunk_delay_ms": 100}},
        timeout=10,
    )
    it = iter(stream)
    first = [next(it), next(it)]
    assert first[1].choices and first[1].choices[0].delta.content
    stats = mock_stats()
    assert stats["streams_started"] == started + 1
    assert stats["open_streams"] == 1
    stream.close()
    assert wait_for(lambda: mock_stats()["open_streams"] == 0, timeout=3.0), (
        f"upstream stream still open after the client left: {mock_stats()}"
    )


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def _scrape(gateway_url: str) -> dict[str, Any]:
    """Parses /metrics with the official Prometheus text parser."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{gateway_url}/metrics", timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["content-type"].startswith("text/plain")
        text = resp.read().decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def _value(families: dict[str, Any], family: str, sample: str, **labels: str) -> float:
    """A sample's value; 0 when nothing was counted yet (an empty family is not exposed)."""
    if family not in families:
        return 0.0
    return sum(
        s.value
        for s in families[family].samples
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_metrics_parse_and_count_what_the_sdk_did(client: openai.OpenAI, gateway_url: str) -> None:
    before = _scrape(gateway_url)
    ok_before = _value(before, "switchyard_requests", "switchyard_requests_total", gen_ai_request_model=CHAT, status_class="2xx")
    out_before = _value(before, "switchyard_tokens", "switchyard_tokens_total", gen_ai_request_model=CHAT, gen_ai_token_type="output")
    replies = [client.chat.completions.create(model=CHAT, messages=user(f"count me {i}")) for i in range(3)]
    after = _scrape(gateway_url)
    ok_after = _value(after, "switchyard_requests", "switchyard_requests_total", gen_ai_request_model=CHAT, status_class="2xx")
    out_after = _value(after, "switchyard_tokens", "switchyard_tokens_total", gen_ai_request_model=CHAT, gen_ai_token_type="output")
    assert ok_after - ok_before == 3
    assert out_after - out_before == sum(r.usage.completion_tokens for r in replies)
    # The GenAI duration histogram and the overhead histogram are there, with seconds as the unit.
    assert "gen_ai_server_request_duration_seconds" in after
    assert _value(after, "switchyard_gateway_overhead_seconds", "switchyard_gateway_overhead_seconds_count") >= 3
    assert MASTER_KEY not in json.dumps([str(f.samples) for f in after.values()])


# --------------------------------------------------------------------------------------------
# The request log, as an SDK user's calls leave it
# --------------------------------------------------------------------------------------------


def _record(gateway_url: str, request_id: str) -> dict[str, Any] | None:
    req = urllib.request.Request(
        f"{gateway_url}/admin/logs/{request_id}", headers={"Authorization": f"Bearer {MASTER_KEY}"}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise


def test_sdk_calls_leave_records_with_their_usage_cost_and_bodies(client: openai.OpenAI, gateway_url: str) -> None:
    raw = client.chat.completions.with_raw_response.create(model=CHAT, messages=user("log this plain call"))
    plain_id, plain = raw.headers["x-request-id"], raw.parse()
    stream_raw = client.chat.completions.with_raw_response.create(
        model=CHAT, messages=user("log this stream"), stream=True, stream_options={"include_usage": True}
    )
    stream_id = stream_raw.headers["x-request-id"]
    chunks = list(stream_raw.parse())
    streamed_usage = next(c.usage for c in reversed(chunks) if c.usage)
    streamed_text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    assert wait_for(lambda: _record(gateway_url, plain_id) is not None and _record(gateway_url, stream_id) is not None)
    for request_id, usage, streamed in [(plain_id, plain.usage, False), (stream_id, streamed_usage, True)]:
        record = _record(gateway_url, request_id)
        assert record is not None
        assert record["id"] == request_id
        assert record["stream"] is streamed
        assert record["usage"]["input_tokens"] == usage.prompt_tokens
        assert record["usage"]["output_tokens"] == usage.completion_tokens
        want = (usage.prompt_tokens * 2 + usage.completion_tokens * 8) / 1e6
        assert math.isclose(record["cost"]["total"], want, rel_tol=1e-9)
        assert record["provider"] == "up" and record["upstream_model"] == UPSTREAM_CHAT
        assert record["key"] == "master"
        assert "log this" in record["request_body"]
    # The cost reaches the client too: a header and `usage.cost` on the plain call, `usage.cost`
    # on the stream's usage chunk, equal to what the log recorded.
    plain_record = _record(gateway_url, plain_id)
    assert plain_record is not None
    assert math.isclose(float(raw.headers["x-switchyard-cost-usd"]), plain_record["cost"]["total"], rel_tol=1e-6)
    assert math.isclose(getattr(plain.usage, "cost"), plain_record["cost"]["total"], rel_tol=1e-9)
    assert math.isclose(getattr(streamed_usage, "cost"), _record(gateway_url, stream_id)["cost"]["total"], rel_tol=1e-9)
    # The stream's record keeps the whole answer the SDK reassembled.
    stream_record = _record(gateway_url, stream_id)
    assert stream_record is not None
    kept = json.loads(stream_record["response_body"])
    assert kept["choices"][0]["message"]["content"] == streamed_text
    assert stream_record["ttft_ms"] is not None


def test_cost_metrics_parse_and_match_the_log(client: openai.OpenAI, gateway_url: str) -> None:
    before = _scrape(gateway_url)
    cost_before = _value(before, "switchyard_cost_usd", "switchyard_cost_usd_total", gen_ai_request_model=CHAT)
    reply = client.chat.completions.create(model=CHAT, messages=user("price me"))
    after = _scrape(gateway_url)
    cost_after = _value(after, "switchyard_cost_usd", "switchyard_cost_usd_total", gen_ai_request_model=CHAT)
    assert reply.usage is not None
    want = (reply.usage.prompt_tokens * 2 + reply.usage.completion_tokens * 8) / 1e6
    assert math.isclose(cost_after - cost_before, want, rel_tol=1e-6)
    assert wait_for(lambda: _value(_scrape(gateway_url), "switchyard_records_written", "switchyard_records_written_total") > 0)
    assert _value(after, "switchyard_records_dropped", "switchyard_records_dropped_total") == 0
