"""The official Anthropic SDK against /v1/messages, and the OpenAI SDK against an Anthropic upstream.

The mock answers deterministically from the request, whatever protocol it is asked in, so an
answer that crossed protocols must equal the one that did not: same text, same tool calls (ids,
names, arguments), same token counts.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import anthropic
import openai
import pytest
from conftest import MASTER_KEY

WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
}
TIME = {
    "name": "get_time",
    "description": "Local time in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def as_openai_tool(t: dict) -> dict:
    return {"type": "function", "function": {"name": t["name"], "description": t["description"], "parameters": t["input_schema"]}}


@pytest.mark.parametrize("model", ["chat", "claude-chat", "gemini-chat", "bedrock-chat"])
def test_messages_answer_like_the_openai_surface(claude: anthropic.Anthropic, client: openai.OpenAI, model: str) -> None:
    prompt = "tell me about gateways"
    msg = claude.messages.create(model=model, max_tokens=20, messages=[{"role": "user", "content": prompt}])
    ref = client.chat.completions.create(model="chat", max_tokens=20, messages=[{"role": "user", "content": prompt}])
    assert msg.type == "message" and msg.role == "assistant" and msg.id.startswith("msg_")
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == ref.choices[0].message.content
    assert msg.stop_reason == ("max_tokens" if ref.choices[0].finish_reason == "length" else "end_turn")
    assert msg.usage.input_tokens == ref.usage.prompt_tokens
    assert msg.usage.output_tokens == ref.usage.completion_tokens


@pytest.mark.parametrize("model", ["chat", "claude-chat", "gemini-chat", "bedrock-chat"])
def test_streamed_messages_reassemble_to_the_whole_answer(claude: anthropic.Anthropic, model: str) -> None:
    messages = [{"role": "user", "content": "stream a few words please"}]
    whole = claude.messages.create(model=model, max_tokens=12, messages=messages)
    with claude.messages.stream(model=model, max_tokens=12, messages=messages) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == whole.content[0].text
    assert final.content[0].text == whole.content[0].text
    assert final.stop_reason == whole.stop_reason
    assert final.usage.output_tokens == whole.usage.output_tokens
    assert final.usage.input_tokens == whole.usage.input_tokens


@pytest.mark.parametrize("model", ["chat", "claude-chat", "gemini-chat", "bedrock-chat"])
@pytest.mark.parametrize("stream", [False, True])
def test_parallel_tool_use_crosses_protocols_exactly(
    claude: anthropic.Anthropic, client: openai.OpenAI, model: str, stream: bool
) -> None:
    messages = [{"role": "user", "content": "weather and time in Paris"}]
    ref = client.chat.completions.create(model="chat", messages=messages, tools=[as_openai_tool(WEATHER), as_openai_tool(TIME)])
    want = [(c.id, c.function.name, json.loads(c.function.arguments)) for c in ref.choices[0].message.tool_calls]
    assert len(want) == 2
    if stream:
        with claude.messages.stream(model=model, max_tokens=100, messages=messages, tools=[WEATHER, TIME]) as s:
            msg = s.get_final_message()
    else:
        msg = claude.messages.create(model=model, max_tokens=100, messages=messages, tools=[WEATHER, TIME])
    got = [(b.id, b.name, b.input) for b in msg.content if b.type == "tool_use"]
    if model == "gemini-chat":
        # Gemini gives calls no ids: the gateway names them, one per call.
        assert len({i for i, _, _ in got}) == len(got) and all(got_id for got_id, _, _ in got)
        got = [(w[0], n, a) for w, (_, n, a) in zip(want, got)]
    assert got == want
    assert msg.stop_reason == "tool_use"
    # The tool results go back, and the conversation goes on.
    follow = messages + [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in msg.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": i, "content": "sunny"} for i, _, _ in got]},
    ]
    after = claude.messages.create(model=model, max_tokens=10, messages=follow, tools=[WEATHER, TIME])
    assert after.content[0].type == "text" and after.content[0].text


@pytest.mark.parametrize("model", ["claude-chat", "gemini-chat", "bedrock-chat"])
@pytest.mark.parametrize("stream", [False, True])
def test_openai_sdk_through_an_anthropic_gemini_or_bedrock_upstream(client: openai.OpenAI, model: str, stream: bool) -> None:
    messages = [{"role": "user", "content": "weather and time in Rome"}]
    tools = [as_openai_tool(WEATHER), as_openai_tool(TIME)]
    ref = client.chat.completions.create(model="chat", messages=messages, tools=tools)
    want = [(c.id, c.function.name, c.function.arguments) for c in ref.choices[0].message.tool_calls]
    if stream:
        calls: dict[int, list[str]] = {}
        usage = None
        finish = None
        for chunk in client.chat.completions.create(
            model=model, messages=messages, tools=tools, stream=True, stream_options={"include_usage": True}
        ):
            if chunk.usage:
                usage = chunk.usage
            for choice in chunk.choices:
                finish = choice.finish_reason or finish
                for tc in choice.delta.tool_calls or []:
                    entry = calls.setdefault(tc.index, ["", "", ""])
                    entry[0] += tc.id or ""
                    entry[1] += (tc.function.name or "") if tc.function else ""
                    entry[2] += (tc.function.arguments or "") if tc.function else ""
        got = [tuple(calls[i]) for i in sorted(calls)]
        assert usage is not None and usage.prompt_tokens == ref.usage.prompt_tokens
        assert finish == "tool_calls"
    else:
        resp = client.chat.completions.create(model=model, messages=messages, tools=tools)
        got = [(c.id, c.function.name, c.function.arguments) for c in resp.choices[0].message.tool_calls]
        assert resp.choices[0].finish_reason == "tool_calls"
        assert resp.usage.prompt_tokens == ref.usage.prompt_tokens
    if model == "gemini-chat":
        # Gemini gives calls no ids: the gateway names them, one per call.
        assert len({i for i, _, _ in got}) == len(got) and all(i for i, _, _ in got)
        got = [(w[0], n, a) for w, (_, n, a) in zip(want, got)]
    # Anthropic and Gemini carry arguments as objects: the JSON text may be re-serialised, the
    # value not.
    assert [(i, n, json.loads(a)) for i, n, a in got] == [(i, n, json.loads(a)) for i, n, a in want]


def test_errors_arrive_in_anthropic_shape(claude: anthropic.Anthropic, gateway_url: str) -> None:
    with pytest.raises(anthropic.NotFoundError) as nf:
        claude.messages.create(model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert nf.value.body["type"] == "error" and nf.value.body["error"]["type"] == "not_found_error"
    bad = anthropic.Anthropic(base_url=gateway_url, api_key="sk-wrong-key-123", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(model="chat", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    # Anthropic requires max_tokens (the SDK checks that itself, so the body goes raw).
    req = urllib.request.Request(
        f"{gateway_url}/v1/messages",
        data=json.dumps({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}).encode(),
        headers={"x-api-key": MASTER_KEY, "content-type": "application/json", "anthropic-version": "2023-06-01"},
    )
    with pytest.raises(urllib.error.HTTPError) as br:
        urllib.request.urlopen(req, timeout=10)
    assert br.value.code == 400
    body = json.loads(br.value.read())
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in body["error"]["message"]


def test_count_tokens(claude: anthropic.Anthropic) -> None:
    # An OpenAI-compatible server's model: the gateway's estimate.
    short = claude.messages.count_tokens(model="chat", messages=[{"role": "user", "content": "hi"}])
    long = claude.messages.count_tokens(model="chat", messages=[{"role": "user", "content": "hi " * 400}])
    assert 0 < short.input_tokens < long.input_tokens
    # An Anthropic model: its provider counts, exactly as its answers will report.
    messages = [{"role": "user", "content": "count these five words"}]
    counted = claude.messages.count_tokens(model="claude-chat", messages=messages)
    answered = claude.messages.create(model="claude-chat", max_tokens=5, messages=messages)
    assert counted.input_tokens == answered.usage.input_tokens == 4


@pytest.fixture(scope="session")
def claude_direct(mock_url: str):
    """The mock's own Anthropic endpoint, bypassing the gateway: the reference answers."""
    c = anthropic.Anthropic(base_url=mock_url, api_key="sk-ant-mock", max_retries=0, timeout=15.0)
    yield c
    c.close()


THINK = {"type": "enabled", "budget_tokens": 1024}


@pytest.mark.parametrize("stream", [False, True])
def test_thinking_signatures_come_back_byte_exact(claude: anthropic.Anthropic, claude_direct, stream: bool) -> None:
    messages = [{"role": "user", "content": "ponder this"}]
    ref = claude_direct.messages.create(model="mock-claude", max_tokens=2000, thinking=THINK, messages=messages)
    if stream:
        with claude.messages.stream(model="claude-chat", max_tokens=2000, thinking=THINK, messages=messages) as s:
            msg = s.get_final_message()
    else:
        msg = claude.messages.create(model="claude-chat", max_tokens=2000, thinking=THINK, messages=messages)
    assert [b.type for b in msg.content] == ["thinking", "text"]
    assert msg.content[0].thinking == ref.content[0].thinking
    assert msg.content[0].signature == ref.content[0].signature and ref.content[0].signature.startswith("mocksig")
    # The signed turn goes back as it came.
    follow = messages + [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in msg.content]},
        {"role": "user", "content": "and then?"},
    ]
    claude.messages.create(model="claude-chat", max_tokens=2000, thinking=THINK, messages=follow)


@pytest.mark.parametrize("stream", [False, True])
def test_thinking_from_an_openai_upstream(claude: anthropic.Anthropic, client: openai.OpenAI, stream: bool) -> None:
    messages = [{"role": "user", "content": "ponder this"}]
    if stream:
        with claude.messages.stream(model="chat", max_tokens=2000, thinking=THINK, messages=messages) as s:
            msg = s.get_final_message()
    else:
        msg = claude.messages.create(model="chat", max_tokens=2000, thinking=THINK, messages=messages)
    ref = client.chat.completions.create(model="chat", messages=messages, reasoning_effort="low")
    assert [b.type for b in msg.content] == ["thinking", "text"]
    # OpenAI-protocol reasoning text arrives; it has no signature to carry (a documented loss).
    assert msg.content[0].thinking == ref.choices[0].message.model_extra["reasoning_content"]
    assert msg.content[1].text == ref.choices[0].message.content


def test_openai_reasoning_through_an_anthropic_upstream(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(
        model="claude-chat", messages=[{"role": "user", "content": "ponder this"}], reasoning_effort="low"
    )
    assert resp.choices[0].message.model_extra.get("reasoning_content", "").startswith("The user wrote")


def test_gemini_embeddings_through_the_openai_sdk(client: openai.OpenAI) -> None:
    resp = client.embeddings.create(model="gemini-embed", input=["one", "two words"], dimensions=16)
    assert [d.index for d in resp.data] == [0, 1]
    assert all(len(d.embedding) == 16 for d in resp.data)
    assert resp.data[0].embedding != resp.data[1].embedding
