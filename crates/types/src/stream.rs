use serde::{Deserialize, Serialize};

use crate::{FinishReason, GatewayError, Usage};

/// One typed event of a streamed chat answer. Any protocol's stream decodes into a sequence of
/// these and any protocol's stream can be encoded from them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// The answer begins.
    Start {
        id: String,
        model: String,
        created: u64,
    },
    /// The role of a choice (OpenAI's first delta), once per choice.
    Role {
        choice: u32,
    },
    Text {
        choice: u32,
        text: String,
    },
    Refusal {
        choice: u32,
        text: String,
    },
    /// Reasoning text, or the signature that closes a reasoning block.
    Reasoning {
        choice: u32,
        text: String,
        signature: Option<String>,
    },
    /// A reasoning block the provider returns only encrypted (Anthropic's `redacted_thinking`),
    /// whole, to be sent back as it is on the next turn.
    RedactedReasoning {
        choice: u32,
        data: String,
    },
    /// A piece of a tool call. The first piece of a call carries its id and name; later pieces
    /// add argument text. `index` orders the calls within the choice.
    ToolCall {
        choice: u32,
        index: u32,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
    },
    Finish {
        choice: u32,
        reason: FinishReason,
    },
    Usage(Usage),
    /// The upstream failed after the stream began.
    Error(GatewayError),
}

impl StreamEvent {
    /// Whether the event is part of the answer itself (text, a tool call, reasoning, a refusal,
    /// the finish), not its framing (start, role, usage) or an error: the first one is the
    /// stream's first token.
    pub fn is_content(&self) -> bool {
        matches!(
            self,
            StreamEvent::Text { .. }
                | StreamEvent::ToolCall { .. }
                | StreamEvent::Reasoning { .. }
                | StreamEvent::RedactedReasoning { .. }
                | StreamEvent::Refusal { .. }
                | StreamEvent::Finish { .. }
        )
    }
}

/// Builds the whole answer from a stream's events: what a non-streamed call would have returned.
/// Used to keep a streamed answer in the request log, and to answer a non-streamed request from a
/// streamed upstream.
#[derive(Debug, Default)]
pub struct StreamAssembler {
    response: crate::ChatResponse,
}

impl StreamAssembler {
    pub fn push(&mut self, event: &StreamEvent) {
        use crate::{ContentPart, Reasoning, ToolCall};
        let r = &mut self.response;
        match event {
            StreamEvent::Start { id, model, created } => {
                r.id.clone_from(id);
                r.model.clone_from(model);
                r.created = *created;
            }
            StreamEvent::Role { choice } => drop(self.choice(*choice)),
            StreamEvent::Text { choice, text } => {
                let m = &mut self.choice(*choice).message;
                match m.content.last_mut() {
                    Some(ContentPart::Text(part)) => part.text.push_str(text),
                    _ => m.content.push(ContentPart::text(text.clone())),
                }
            }
            StreamEvent::Refusal { choice, text } => {
                self.choice(*choice).message.refusal.get_or_insert_with(String::new).push_str(text)
            }
            StreamEvent::Reasoning { choice, text, signature } => {
                let m = &mut self.choice(*choice).message;
                // A signature closes a block; text after it starts the next one.
                if m.reasoning.last().is_none_or(|b| b.signature.is_some()) {
                    m.reasoning.push(Reasoning::default());
                }
                if let Some(block) = m.reasoning.last_mut() {
                    block.text.push_str(text);
                    if signature.is_some() {
                        block.signature.clone_from(signature);
                    }
                }
            }
            StreamEvent::RedactedReasoning { choice, data } => self
                .choice(*choice)
                .message
                .reasoning
                .push(Reasoning { redacted: Some(data.clone()), ..Reasoning::default() }),
            StreamEvent::ToolCall { choice, index, id, name, arguments } => {
                let calls = &mut self.choice(*choice).message.tool_calls;
                let i = *index as usize;
                while calls.len() <= i {
                    calls.push(ToolCall {
                        id: String::new(),
                        name: String::new(),
                        arguments: String::new(),
                        signature: None,
                    });
                }
                let call = &mut calls[i];
                if let Some(id) = id {
                    call.id.clone_from(id);
                }
                if let Some(name) = name {
                    call.name.push_str(name);
                }
                call.arguments.push_str(arguments);
            }
            StreamEvent::Finish { choice, reason } => self.choice(*choice).finish_reason = Some(reason.clone()),
            StreamEvent::Usage(u) => r.usage = Some(*u),
            StreamEvent::Error(_) => {}
        }
    }

    fn choice(&mut self, index: u32) -> &mut crate::Choice {
        let choices = &mut self.response.choices;
        let at = match choices.iter().position(|c| c.index == index) {
            Some(at) => at,
            None => {
                choices.push(crate::Choice {
                    index,
                    message: crate::Message::new(crate::Role::Assistant, Vec::new()),
                    finish_reason: None,
                });
                choices.len() - 1
            }
        };
        &mut choices[at]
    }

    pub fn finish(mut self) -> crate::ChatResponse {
        self.response.choices.sort_by_key(|c| c.index);
        self.response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assembles_text_tool_calls_reasoning_and_usage() {
        let mut a = StreamAssembler::default();
        let events = [
            StreamEvent::Start { id: "x".into(), model: "m".into(), created: 1 },
            StreamEvent::Role { choice: 0 },
            StreamEvent::Reasoning { choice: 0, text: "think".into(), signature: None },
            StreamEvent::Reasoning { choice: 0, text: String::new(), signature: Some("sig".into()) },
            StreamEvent::Text { choice: 0, text: "Hel".into() },
            StreamEvent::Text { choice: 0, text: "lo".into() },
            StreamEvent::ToolCall {
                choice: 0,
                index: 1,
                id: Some("b".into()),
                name: Some("g".into()),
                arguments: "{".into(),
            },
            StreamEvent::ToolCall {
                choice: 0,
                index: 0,
                id: Some("a".into()),
                name: Some("f".into()),
                arguments: "{}".into(),
            },
            StreamEvent::ToolCall { choice: 0, index: 1, id: None, name: None, arguments: "}".into() },
            StreamEvent::Finish { choice: 0, reason: FinishReason::ToolCalls },
            StreamEvent::Usage(Usage { input_tokens: 3, output_tokens: 4, ..Default::default() }),
        ];
        events.iter().for_each(|e| a.push(e));
        let r = a.finish();
        assert_eq!((r.id.as_str(), r.model.as_str()), ("x", "m"));
        let m = &r.choices[0].message;
        assert_eq!(m.content, vec![crate::ContentPart::text("Hello")]);
        assert_eq!(m.reasoning.len(), 1);
        assert_eq!(m.reasoning[0].signature.as_deref(), Some("sig"));
        let calls: Vec<_> =
            m.tool_calls.iter().map(|c| (c.id.as_str(), c.name.as_str(), c.arguments.as_str())).collect();
        assert_eq!(calls, [("a", "f", "{}"), ("b", "g", "{}")]);
        assert_eq!(r.choices[0].finish_reason, Some(FinishReason::ToolCalls));
        assert_eq!(r.usage.map(|u| u.total_tokens()), Some(7));
    }
}
