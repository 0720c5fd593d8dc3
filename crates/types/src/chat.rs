use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{JsonMap, Usage};

/// A chat request, whatever protocol it arrived in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The model name the client asked for (a public name, or `provider/model`).
    pub model: String,
    /// System (and developer) instructions, kept apart from the turns because Anthropic, Gemini
    /// and Bedrock carry them outside the message list.
    pub system: Vec<SystemPrompt>,
    pub messages: Vec<Message>,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    pub parallel_tool_calls: Option<bool>,
    pub response_format: Option<ResponseFormat>,
    pub sampling: Sampling,
    pub reasoning: Option<ReasoningConfig>,
    pub stream: bool,
    /// The client wants token usage at the end of a stream (`stream_options.include_usage`).
    pub stream_usage: bool,
    /// The end user on whose behalf the call is made, for the provider's abuse tracking.
    pub user: Option<String>,
    /// Provider-side metadata and storage flags (OpenAI `metadata`, `store`).
    pub metadata: Option<JsonMap>,
    /// Request fields no IR field models, with the protocol they came from.
    pub extra: Extra,
}

impl ChatRequest {
    /// A quick estimate of the prompt's tokens, for context-window checks and cost routing before
    /// the provider counts them: about four characters a token for text (close for English with
    /// every OpenAI and Anthropic tokenizer), a flat 765 per image (OpenAI's high-detail 1024²
    /// tile cost), and four tokens of framing per message. It is an estimate, used only to choose
    /// a target; accounting uses the usage the provider reports.
    pub fn estimated_input_tokens(&self) -> u64 {
        let parts = |content: &[ContentPart]| -> u64 {
            content
                .iter()
                .map(|p| match p {
                    ContentPart::Text(t) => t.text.len() as u64 / 4,
                    ContentPart::Image(_) => 765,
                    ContentPart::Audio(a) => a.data.len() as u64 / 1000,
                    ContentPart::File(_) => 1000,
                })
                .sum()
        };
        let system: u64 = self.system.iter().map(|s| 4 + parts(&s.content)).sum();
        let messages: u64 = self
            .messages
            .iter()
            .map(|m| 4 + parts(&m.content) + m.tool_calls.iter().map(|c| 4 + c.arguments.len() as u64 / 4).sum::<u64>())
            .sum();
        let tools: u64 =
            self.tools.iter().map(|t| 8 + t.parameters.as_ref().map_or(0, |p| p.to_string().len() as u64 / 4)).sum();
        system + messages + tools
    }
}

/// Fields of a wire message that the IR does not model, kept so that a same-protocol hop can
/// restore them and a cross-protocol hop can say what it dropped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Extra {
    pub protocol: Option<crate::Protocol>,
    pub fields: JsonMap,
}

impl Extra {
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemPrompt {
    /// OpenAI distinguishes `developer` from `system` instructions; both are system prompts to
    /// every other protocol.
    pub developer: bool,
    pub content: Vec<ContentPart>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
    /// The result of one tool call; `Message::tool_call_id` names the call.
    Tool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: Vec<ContentPart>,
    /// Tool calls made by an assistant turn, in order.
    pub tool_calls: Vec<ToolCall>,
    /// For `Role::Tool`: the call this message answers.
    pub tool_call_id: Option<String>,
    /// Reasoning the assistant produced before its answer, kept so that a later turn can send it
    /// back (Anthropic and Gemini require the signature byte-exact).
    pub reasoning: Vec<Reasoning>,
    /// A participant name (OpenAI `name`).
    pub name: Option<String>,
    /// An assistant's refusal text (OpenAI `refusal`).
    pub refusal: Option<String>,
    pub extra: JsonMap,
}

impl Message {
    pub fn new(role: Role, content: Vec<ContentPart>) -> Self {
        Message {
            role,
            content,
            tool_calls: Vec::new(),
            tool_call_id: None,
            reasoning: Vec::new(),
            name: None,
            refusal: None,
            extra: JsonMap::new(),
        }
    }

    /// The concatenated text parts of this message.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for part in &self.content {
            if let ContentPart::Text(t) = part {
                out.push_str(&t.text);
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    Text(TextPart),
    Image(ImagePart),
    Audio(AudioPart),
    File(FilePart),
}

impl ContentPart {
    pub fn text(text: impl Into<String>) -> Self {
        ContentPart::Text(TextPart { text: text.into(), cache: None, extra: JsonMap::new() })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextPart {
    pub text: String,
    /// A prompt-cache breakpoint after this part (Anthropic `cache_control`, Bedrock `cachePoint`).
    pub cache: Option<CacheMarker>,
    pub extra: JsonMap,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheMarker {
    /// Time to live as the provider spells it (`5m`, `1h`); `None` is the provider's default.
    pub ttl: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImagePart {
    pub source: MediaSource,
    /// OpenAI's `detail`: `auto`, `low` or `high`.
    pub detail: Option<String>,
    pub extra: JsonMap,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioPart {
    /// Base64 audio.
    pub data: String,
    /// `wav`, `mp3`, …
    pub format: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilePart {
    pub source: MediaSource,
    pub filename: Option<String>,
}

/// Where the bytes of an image, document or file are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MediaSource {
    Url {
        url: String,
    },
    /// Inline bytes, base64-encoded, with their media type when known.
    Base64 {
        media_type: Option<String>,
        data: String,
    },
    /// A file uploaded to the provider beforehand.
    FileId {
        id: String,
    },
}

impl MediaSource {
    /// Parses a `data:` URL into inline bytes; any other URL stays a URL.
    pub fn from_url(url: &str) -> MediaSource {
        if let Some(rest) = url.strip_prefix("data:")
            && let Some((meta, data)) = rest.split_once(',')
            && let Some(media_type) = meta.strip_suffix(";base64")
        {
            let media_type = (!media_type.is_empty()).then(|| media_type.to_string());
            return MediaSource::Base64 { media_type, data: data.to_string() };
        }
        MediaSource::Url { url: url.to_string() }
    }

    /// The source as a URL, with inline bytes as a `data:` URL.
    pub fn to_url(&self) -> String {
        match self {
            MediaSource::Url { url } => url.clone(),
            MediaSource::Base64 { media_type, data } => {
                format!("data:{};base64,{data}", media_type.as_deref().unwrap_or("application/octet-stream"))
            }
            MediaSource::FileId { id } => id.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// The JSON schema of the arguments.
    pub parameters: Option<Value>,
    /// Ask the provider to enforce the schema exactly (OpenAI `strict`).
    pub strict: Option<bool>,
    pub cache: Option<CacheMarker>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "name", rename_all = "snake_case")]
pub enum ToolChoice {
    Auto,
    None,
    /// The model must call some tool.
    Required,
    /// The model must call this tool.
    Tool(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as the model wrote them: a JSON text, kept as text because models
    /// sometimes write invalid JSON and the client should see exactly that.
    pub arguments: String,
    /// Gemini's `thoughtSignature` on a function call, returned with it on the next turn.
    pub signature: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema { name: String, description: Option<String>, schema: Option<Value>, strict: Option<bool> },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// The most output tokens to generate (OpenAI `max_completion_tokens` or `max_tokens`).
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u64>,
    pub stop: Vec<String>,
    pub seed: Option<i64>,
    pub frequency_penalty: Option<f64>,
    pub presence_penalty: Option<f64>,
    /// How many choices to generate.
    pub n: Option<u32>,
    pub logprobs: Option<bool>,
    pub top_logprobs: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReasoningConfig {
    /// OpenAI-style effort: `minimal`, `low`, `medium`, `high`.
    pub effort: Option<String>,
    /// Anthropic/Gemini-style thinking budget in tokens.
    pub budget_tokens: Option<u64>,
}

/// One block of model reasoning.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reasoning {
    pub text: String,
    /// The provider's signature over the reasoning, byte-exact.
    pub signature: Option<String>,
    /// Reasoning the provider returns only in encrypted form.
    pub redacted: Option<String>,
}

/// A chat answer, whatever protocol it came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    pub id: String,
    /// The model that answered, as the provider named it.
    pub model: String,
    /// Unix seconds.
    pub created: u64,
    pub choices: Vec<Choice>,
    pub usage: Option<Usage>,
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub index: u32,
    pub message: Message,
    pub finish_reason: Option<FinishReason>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// A natural end or a stop sequence.
    Stop,
    /// The output token limit.
    Length,
    ToolCalls,
    ContentFilter,
    /// A reason the IR does not name, as the provider spelled it.
    Other(String),
}

impl FinishReason {
    pub fn as_openai(&self) -> &str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::Other(s) => s,
        }
    }

    pub fn from_openai(s: &str) -> FinishReason {
        match s {
            "stop" => FinishReason::Stop,
            "length" => FinishReason::Length,
            "tool_calls" | "function_call" => FinishReason::ToolCalls,
            "content_filter" => FinishReason::ContentFilter,
            other => FinishReason::Other(other.to_string()),
        }
    }
}
