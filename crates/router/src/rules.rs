//! Conditional routing: rules that send a request to another model, or split traffic between
//! models by percentage, based on who asks and what they ask.
//!
//! Rules route; they do not grant. The key's model allow-list is checked against the model the
//! client named, before any rule runs, so a header can never widen what a key may use.

use std::collections::BTreeMap;

use regex_lite::Regex;
use serde_json::Value;

/// What a rule can look at.
pub struct RequestView<'a> {
    pub model: &'a str,
    pub key: &'a str,
    pub user: Option<&'a str>,
    pub session: Option<&'a str>,
    pub tags: &'a [String],
    pub headers: &'a http::HeaderMap,
    /// The request's JSON body.
    pub params: &'a serde_json::Map<String, Value>,
    pub prompt_tokens: u64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("rule '{rule}': {message}")]
pub struct RuleError {
    pub rule: String,
    pub message: String,
}

#[derive(Debug)]
pub struct Rule {
    pub name: String,
    when: Condition,
    action: Action,
}

#[derive(Debug)]
enum Action {
    Model(String),
    /// Models with their percentages (summing to 100).
    Split(Vec<(String, u32)>),
}

#[derive(Debug)]
enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    Test(Field, Op),
}

#[derive(Debug)]
enum Field {
    Model,
    Key,
    User,
    Session,
    Tags,
    Header(String),
    Metadata(String),
    /// A body parameter; dots walk into objects (`stream_options.include_usage`).
    Param(Vec<String>),
    PromptTokens,
}

#[derive(Debug)]
enum Op {
    Eq(Value),
    Ne(Value),
    In(Vec<Value>),
    NotIn(Vec<Value>),
    Regex(Regex),
    Gt(f64),
    Gte(f64),
    Lt(f64),
    Lte(f64),
    Exists(bool),
    Contains(Value),
}

impl Rule {
    /// Compiles a rule from the config: `when` (absent = always), and either `model` or `split`.
    pub fn compile(
        name: &str,
        when: Option<&Value>,
        model: Option<&str>,
        split: Option<&BTreeMap<String, u32>>,
    ) -> Result<Rule, RuleError> {
        let err = |message: String| RuleError { rule: name.to_string(), message };
        let action = match (model, split) {
            (Some(m), None) => Action::Model(m.to_string()),
            (None, Some(s)) => {
                let total: u32 = s.values().sum();
                if total != 100 {
                    return Err(err(format!("split percentages add up to {total}, not 100")));
                }
                Action::Split(s.iter().map(|(k, v)| (k.clone(), *v)).collect())
            }
            _ => return Err(err("give exactly one of `model` or `split`".into())),
        };
        let when = match when {
            None => Condition::All(Vec::new()),
            Some(v) => condition(v).map_err(err)?,
        };
        Ok(Rule { name: name.to_string(), when, action })
    }

    /// The models this rule can send requests to, for validation.
    pub fn models(&self) -> Vec<&str> {
        match &self.action {
            Action::Model(m) => vec![m.as_str()],
            Action::Split(s) => s.iter().map(|(m, _)| m.as_str()).collect(),
        }
    }
}

/// The model the first matching rule chooses, with the rule's name.
pub fn apply_rules<'r>(rules: &'r [Rule], view: &RequestView) -> Option<(&'r str, &'r str)> {
    let rule = rules.iter().find(|r| r.when.holds(view))?;
    let model = match &rule.action {
        Action::Model(m) => m.as_str(),
        Action::Split(split) => {
            let mut roll = fastrand::u32(0..100);
            split
                .iter()
                .find(|(_, pct)| {
                    let hit = roll < *pct;
                    roll = roll.saturating_sub(*pct);
                    hit
                })?
                .0
                .as_str()
        }
    };
    Some((rule.name.as_str(), model))
}

fn condition(v: &Value) -> Result<Condition, String> {
    let obj = v.as_object().ok_or("a condition must be a map")?;
    let mut all = Vec::new();
    for (key, arg) in obj {
        all.push(match key.as_str() {
            "all" | "any" => {
                let list = arg.as_array().ok_or(format!("`{key}` takes a list of conditions"))?;
                let parts = list.iter().map(condition).collect::<Result<Vec<_>, _>>()?;
                if key == "all" { Condition::All(parts) } else { Condition::Any(parts) }
            }
            "not" => Condition::Not(Box::new(condition(arg)?)),
            field => {
                let field = parse_field(field)?;
                let ops = arg.as_object().ok_or(format!("`{key}` takes a map of operators, e.g. {{ eq: value }}"))?;
                let mut tests = Vec::new();
                for (op, operand) in ops {
                    tests.push(Condition::Test(clone_field(&field), parse_op(op, operand)?));
                }
                Condition::All(tests)
            }
        });
    }
    Ok(if all.len() == 1 { all.remove(0) } else { Condition::All(all) })
}

fn parse_field(name: &str) -> Result<Field, String> {
    Ok(match name {
        "model" => Field::Model,
        "key" => Field::Key,
        "user" => Field::User,
        "session" => Field::Session,
        "tags" => Field::Tags,
        "prompt_tokens" => Field::PromptTokens,
        other => match other.split_once('.') {
            Some(("header", h)) => Field::Header(h.to_ascii_lowercase()),
            Some(("metadata", m)) => Field::Metadata(m.to_ascii_lowercase()),
            Some(("param", p)) => Field::Param(p.split('.').map(str::to_string).collect()),
            _ => {
                return Err(format!(
                    "unknown field `{other}`: use model, key, user, session, tags, prompt_tokens, header.NAME, metadata.NAME or param.NAME"
                ));
            }
        },
    })
}

fn clone_field(f: &Field) -> Field {
    match f {
        Field::Model => Field::Model,
        Field::Key => Field::Key,
        Field::User => Field::User,
        Field::Session => Field::Session,
        Field::Tags => Field::Tags,
        Field::PromptTokens => Field::PromptTokens,
        Field::Header(h) => Field::Header(h.clone()),
        Field::Metadata(m) => Field::Metadata(m.clone()),
        Field::Param(p) => Field::Param(p.clone()),
    }
}

fn parse_op(op: &str, v: &Value) -> Result<Op, String> {
    let number = || v.as_f64().ok_or(format!("`{op}` takes a number"));
    let list = || v.as_array().cloned().ok_or(format!("`{op}` takes a list"));
    Ok(match op {
        "eq" => Op::Eq(v.clone()),
        "ne" => Op::Ne(v.clone()),
        "in" => Op::In(list()?),
        "not_in" => Op::NotIn(list()?),
        "regex" => {
            let pattern = v.as_str().ok_or("`regex` takes a string")?;
            Op::Regex(Regex::new(pattern).map_err(|e| format!("bad regex: {e}"))?)
        }
        "gt" => Op::Gt(number()?),
        "gte" => Op::Gte(number()?),
        "lt" => Op::Lt(number()?),
        "lte" => Op::Lte(number()?),
        "exists" => Op::Exists(v.as_bool().ok_or("`exists` takes true or false")?),
        "contains" => Op::Contains(v.clone()),
        other => {
            return Err(format!(
                "unknown operator `{other}`: use eq, ne, in, not_in, regex, gt, gte, lt, lte, exists or contains"
            ));
        }
    })
}

impl Condition {
    fn holds(&self, view: &RequestView) -> bool {
        match self {
            Condition::All(list) => list.iter().all(|c| c.holds(view)),
            Condition::Any(list) => list.iter().any(|c| c.holds(view)),
            Condition::Not(c) => !c.holds(view),
            Condition::Test(field, op) => op.holds(field_value(field, view).as_ref()),
        }
    }
}

fn field_value(field: &Field, view: &RequestView) -> Option<Value> {
    let header =
        |name: &str| view.headers.get(name).and_then(|v| v.to_str().ok()).map(|s| Value::String(s.to_string()));
    match field {
        Field::Model => Some(view.model.into()),
        Field::Key => Some(view.key.into()),
        Field::User => view.user.map(Into::into),
        Field::Session => view.session.map(Into::into),
        Field::Tags => Some(Value::Array(view.tags.iter().map(|t| Value::String(t.clone())).collect())),
        Field::PromptTokens => Some(view.prompt_tokens.into()),
        Field::Header(h) => header(h),
        Field::Metadata(m) => header(&format!("x-switchyard-metadata-{m}")),
        Field::Param(path) => {
            let mut v = view.params.get(path.first()?)?;
            for part in &path[1..] {
                v = v.get(part)?;
            }
            Some(v.clone())
        }
    }
}

impl Op {
    fn holds(&self, value: Option<&Value>) -> bool {
        match (self, value) {
            (Op::Exists(want), v) => v.is_some_and(|v| !v.is_null()) == *want,
            (Op::Ne(x), v) => !v.is_some_and(|v| same(v, x)),
            (Op::NotIn(xs), v) => !v.is_some_and(|v| xs.iter().any(|x| same(v, x))),
            (_, None) => false,
            (Op::Eq(x), Some(v)) => same(v, x),
            (Op::In(xs), Some(v)) => xs.iter().any(|x| same(v, x)),
            (Op::Regex(re), Some(v)) => v.as_str().is_some_and(|s| re.is_match(s)),
            (Op::Gt(n), Some(v)) => magnitude(v).is_some_and(|m| m > *n),
            (Op::Gte(n), Some(v)) => magnitude(v).is_some_and(|m| m >= *n),
            (Op::Lt(n), Some(v)) => magnitude(v).is_some_and(|m| m < *n),
            (Op::Lte(n), Some(v)) => magnitude(v).is_some_and(|m| m <= *n),
            (Op::Contains(x), Some(Value::Array(items))) => items.iter().any(|i| same(i, x)),
            (Op::Contains(x), Some(Value::String(s))) => x.as_str().is_some_and(|x| s.contains(x)),
            (Op::Contains(_), Some(_)) => false,
        }
    }
}

/// Equal as JSON, with numbers compared by value and a string equal to the number it spells
/// (header values are strings).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::String(s), Value::Number(n)) | (Value::Number(n), Value::String(s)) => {
            s.parse::<f64>().ok() == n.as_f64()
        }
        _ => a == b,
    }
}

/// A number, a numeric string, or the length of a list.
fn magnitude(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        Value::Array(a) => Some(a.len() as f64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn view<'a>(
        params: &'a serde_json::Map<String, Value>,
        headers: &'a http::HeaderMap,
        tags: &'a [String],
    ) -> RequestView<'a> {
        RequestView {
            model: "smart",
            key: "web",
            user: Some("u1"),
            session: None,
            tags,
            headers,
            params,
            prompt_tokens: 900,
        }
    }

    fn rule(when: Value, model: &str) -> Rule {
        Rule::compile("r", Some(&when), Some(model), None).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn conditions_over_every_field_kind() {
        let params = json!({"max_tokens": 2000, "tools": [{}, {}], "stream_options": {"include_usage": true}});
        let params = params.as_object().cloned().unwrap_or_default();
        let mut headers = http::HeaderMap::new();
        headers.insert("x-team", http::HeaderValue::from_static("research"));
        headers.insert("x-switchyard-metadata-tier", http::HeaderValue::from_static("3"));
        let tags = vec!["batch".to_string()];
        let v = view(&params, &headers, &tags);
        let holds = |when: Value| apply_rules(&[rule(when, "x")], &v).is_some();
        assert!(holds(json!({"param.max_tokens": {"gt": 1000}})));
        assert!(!holds(json!({"param.max_tokens": {"lte": 1000}})));
        assert!(holds(json!({"param.tools": {"gte": 2}})), "lists compare by length");
        assert!(holds(json!({"param.stream_options.include_usage": {"eq": true}})));
        assert!(holds(json!({"header.X-Team": {"in": ["research", "lab"]}})));
        assert!(holds(json!({"metadata.tier": {"eq": 3}})), "header strings equal numbers they spell");
        assert!(holds(json!({"tags": {"contains": "batch"}})));
        assert!(holds(json!({"model": {"regex": "^sm"}, "key": {"ne": "other"}})));
        assert!(holds(json!({"any": [{"user": {"eq": "nobody"}}, {"prompt_tokens": {"gt": 500}}]})));
        assert!(holds(json!({"not": {"session": {"exists": true}}})));
        assert!(!holds(json!({"all": [{"user": {"eq": "u1"}}, {"param.temperature": {"exists": true}}]})));
        assert!(holds(json!({"param.temperature": {"not_in": [0.5]}})), "absent is not in any list");
    }

    #[test]
    fn splits_follow_percentages_and_bad_rules_are_refused() {
        let split: BTreeMap<String, u32> = [("a".to_string(), 80), ("b".to_string(), 20)].into();
        let r = Rule::compile("s", None, None, Some(&split)).unwrap_or_else(|e| panic!("{e}"));
        let (params, headers) = (serde_json::Map::new(), http::HeaderMap::new());
        let v = view(&params, &headers, &[]);
        let a = (0..5000).filter(|_| apply_rules(std::slice::from_ref(&r), &v).map(|x| x.1) == Some("a")).count();
        assert!((3800..4200).contains(&a), "a got {a} of 5000");
        let bad: BTreeMap<String, u32> = [("a".to_string(), 50)].into();
        assert!(Rule::compile("s", None, None, Some(&bad)).is_err());
        assert!(Rule::compile("s", Some(&json!({"param.x": {"gtx": 1}})), Some("m"), None).is_err());
        assert!(Rule::compile("s", Some(&json!({"planet": {"eq": 1}})), Some("m"), None).is_err());
        assert!(Rule::compile("s", Some(&json!({"model": {"regex": "("}})), Some("m"), None).is_err());
    }
}
