//! A checkpoint's chat template: the Jinja text transformers'
//! `apply_chat_template` renders conversations with, read from the
//! tokenizer's folder (`chat_template.jinja`, or `chat_template` in
//! `tokenizer_config.json`) and rendered with MiniJinja plus its Python
//! string methods (`.strip()`, `.startswith()`, … as the templates use).

use std::path::Path;

use serde_json::Value;

/// A template and the special tokens it may name.
#[derive(Debug)]
pub struct ChatTemplate {
    source: String,
    bos_token: String,
    eos_token: String,
}

/// One turn of a conversation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl ChatTemplate {
    /// The template in `dir`, if it has one; an unreadable or malformed
    /// file is an error, a missing one is not.
    pub fn find(dir: &Path) -> Result<Option<ChatTemplate>, String> {
        let config_path = dir.join("tokenizer_config.json");
        let config: Option<Value> = match std::fs::read_to_string(&config_path) {
            Ok(text) => Some(
                serde_json::from_str(&text)
                    .map_err(|e| format!("{}: not JSON: {e}", config_path.display()))?,
            ),
            Err(_) => None,
        };
        let token = |key: &str| -> String {
            let value = config.as_ref().and_then(|c| c.get(key));
            match value {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Object(o)) => o
                    .get("content")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                _ => String::new(),
            }
        };
        let jinja = dir.join("chat_template.jinja");
        let source = if jinja.is_file() {
            Some(std::fs::read_to_string(&jinja).map_err(|e| format!("{}: {e}", jinja.display()))?)
        } else {
            match config.as_ref().and_then(|c| c.get("chat_template")) {
                Some(Value::String(s)) => Some(s.clone()),
                // Several named templates: the "default" one.
                Some(Value::Array(list)) => list
                    .iter()
                    .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
                    .and_then(|t| t.get("template"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
                _ => None,
            }
        };
        let Some(source) = source else {
            return Ok(None);
        };
        let template = ChatTemplate {
            source,
            bos_token: token("bos_token"),
            eos_token: token("eos_token"),
        };
        // Fail at load, not at the first example.
        template.environment()?;
        Ok(Some(template))
    }

    fn environment(&self) -> Result<minijinja::Environment<'_>, String> {
        let mut env = minijinja::Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    message,
                ))
            },
        );
        // transformers renders with trim_blocks and lstrip_blocks.
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.add_template("chat", &self.source)
            .map_err(|e| format!("the chat template does not parse: {e}"))?;
        Ok(env)
    }

    /// The conversation as the model reads it; `add_generation_prompt`
    /// ends it with the assistant's turn opening.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String, String> {
        let env = self.environment()?;
        let template = env.get_template("chat").map_err(|e| e.to_string())?;
        template
            .render(minijinja::context! {
                messages => messages,
                add_generation_prompt => add_generation_prompt,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
            })
            .map_err(|e| format!("the chat template failed: {e:#}"))
    }

    /// Prompt (every turn but the last, and the assistant's opening) and
    /// response (what the full conversation adds to it: the last turn
    /// with the template's own end-of-turn text).
    pub fn split(&self, messages: &[Message]) -> Result<(String, String), String> {
        let Some((_, before)) = messages.split_last() else {
            return Err("no messages".into());
        };
        let prompt = self.render(before, true)?;
        let full = self.render(messages, false)?;
        match full.strip_prefix(&prompt) {
            Some(response) => Ok((prompt, response.to_string())),
            None => Err(
                "the chat template renders the conversation so that it does not begin with its prompt; the response cannot be told from the prompt".into(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made by scripts/make_chat_template_fixture.py with transformers.
    const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/chat-templates");

    #[test]
    fn templates_render_as_transformers_renders_them() {
        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(Path::new(FIXTURE).join("expected.json")).unwrap(),
        )
        .unwrap();
        let cases = expected["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 12);
        for case in cases {
            let name = case["template"].as_str().unwrap();
            let template = ChatTemplate::find(&Path::new(FIXTURE).join(name))
                .unwrap()
                .unwrap();
            let messages: Vec<Message> = case["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| Message {
                    role: m["role"].as_str().unwrap().into(),
                    content: m["content"].as_str().unwrap().into(),
                })
                .collect();
            let what = format!("{name} #{}", case["conversation"]);
            if let Some(error) = case["error"].as_str() {
                let err = template.split(&messages).unwrap_err();
                assert!(err.contains(error), "{what}: {err}");
                continue;
            }
            let before = &messages[..messages.len() - 1];
            assert_eq!(
                template.render(before, true).unwrap(),
                case["prompt"].as_str().unwrap(),
                "{what}"
            );
            assert_eq!(
                template.render(&messages, false).unwrap(),
                case["full"].as_str().unwrap(),
                "{what}"
            );
            let (prompt, response) = template.split(&messages).unwrap();
            assert_eq!(
                format!("{prompt}{response}"),
                case["full"].as_str().unwrap(),
                "{what}"
            );
        }
    }

    #[test]
    fn a_folder_without_a_template_has_none_and_a_bad_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(ChatTemplate::find(dir.path()).unwrap().is_none());
        std::fs::write(
            dir.path().join("tokenizer_config.json"),
            r#"{"chat_template": "{% for %}"}"#,
        )
        .unwrap();
        let err = ChatTemplate::find(dir.path()).unwrap_err();
        assert!(err.contains("does not parse"), "{err}");
        std::fs::write(dir.path().join("tokenizer_config.json"), "{nope").unwrap();
        assert!(
            ChatTemplate::find(dir.path())
                .unwrap_err()
                .contains("not JSON")
        );
    }
}
