//! Instruction data (`--task instruct=FILE.jsonl`): one example per line in
//! the common shapes, tokenized into a prompt and a response. Training and
//! evaluation score the response only (the prompt's targets are masked, as
//! transformers' `-100` labels do); each example is its own sequence,
//! padded to `--seq-len`.
//!
//! Shapes, by their keys:
//! - `{"prompt": …, "completion": …}` (TRL's prompt-completion);
//! - Alpaca's `{"instruction": …, "input": …, "output": …}`, rendered with
//!   Alpaca's own prompt text;
//! - `{"messages": [{"role": …, "content": …}, …]}` (chat): the last
//!   message is the response (it must be the assistant's) and the ones
//!   before it the prompt. With the tokenizer's chat template (see
//!   [`super::chat_template`]) the prompt is the earlier turns rendered
//!   with the generation prompt and the response what the whole
//!   conversation adds (its end-of-turn text included, so no EOS is
//!   appended); without one, each turn is `<|role|>\ncontent\n`, then
//!   `<|assistant|>\n` (the Zephyr layout).

use std::borrow::Borrow;
use std::path::Path;

use rand::SeedableRng;
use rand::seq::SliceRandom;

use super::chat_template::{ChatTemplate, Message};
use crate::train::error::{Result, TrainError};

/// Alpaca's prompt (tatsu-lab/stanford_alpaca, `PROMPT_DICT`).
const ALPACA_WITH_INPUT: &str = "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n";
const ALPACA_NO_INPUT: &str = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n";

/// End-of-sequence tokens of common tokenizers, in the order looked for: a
/// response ends with the first one the vocabulary has, so that the model
/// learns to stop.
const EOS_TOKENS: [&str; 6] = [
    "<|eot_id|>",
    "<|im_end|>",
    "<|endoftext|>",
    "</s>",
    "<eos>",
    "<|end|>",
];

/// The validation split's seed: the same examples in every run.
const SPLIT_SEED: u64 = 0x5eed_f1a5;

/// An example's text, before tokenizing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextExample {
    pub prompt: String,
    pub response: String,
}

/// A line of the file: text already split, or a conversation.
#[derive(Debug, Clone)]
pub enum Parsed {
    Text(TextExample),
    Chat(Vec<Message>),
}

impl Parsed {
    /// The prompt and response; `true` when a chat template made them
    /// (it ends the response itself).
    pub fn split(
        &self,
        template: Option<&ChatTemplate>,
    ) -> std::result::Result<(TextExample, bool), String> {
        match (self, template) {
            (Parsed::Text(t), _) => Ok((t.clone(), false)),
            (Parsed::Chat(messages), Some(template)) => {
                let (prompt, response) = template.split(messages)?;
                Ok((TextExample { prompt, response }, true))
            }
            (Parsed::Chat(messages), None) => {
                let (last, before) = messages.split_last().ok_or("no messages")?;
                let mut prompt = String::new();
                for m in before {
                    prompt.push_str(&format!("<|{}|>\n{}\n", m.role, m.content));
                }
                prompt.push_str("<|assistant|>\n");
                Ok((
                    TextExample {
                        prompt,
                        response: last.content.clone(),
                    },
                    false,
                ))
            }
        }
    }
}

/// A tokenized example: `ids[..prompt_len]` is the prompt, the rest the
/// response (its end-of-sequence token included when there is one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    pub ids: Vec<u32>,
    pub prompt_len: usize,
}

impl Example {
    pub fn prompt(&self) -> &[u32] {
        &self.ids[..self.prompt_len]
    }

    pub fn response(&self) -> &[u32] {
        &self.ids[self.prompt_len..]
    }
}

#[derive(Debug)]
pub struct InstructData {
    pub train: Vec<Example>,
    pub val: Vec<Example>,
    pub vocab: usize,
    pub tokenizer: Option<Box<tokenizers::Tokenizer>>,
    /// Examples dropped because their prompt leaves no room for a response
    /// token in `seq_len`.
    pub dropped: usize,
    /// Examples whose response was cut at `seq_len`.
    pub truncated: usize,
    /// The end-of-sequence id appended to responses, if any.
    pub eos: Option<u32>,
    /// Whether chat examples went through the tokenizer's chat template.
    pub chat_template: bool,
}

impl InstructData {
    /// One line on what was read, for the run's notices: the split, what
    /// was dropped or cut, and how chat turns and ends were rendered.
    pub fn summary(&self, seq_len: usize) -> String {
        let mut parts = vec![format!(
            "instruct: {} examples to train on, {} to validate",
            self.train.len(),
            self.val.len()
        )];
        if self.dropped > 0 {
            parts.push(format!(
                "{} dropped (prompt of {seq_len} tokens or more)",
                self.dropped
            ));
        }
        if self.truncated > 0 {
            parts.push(format!(
                "{} responses cut at --seq-len {seq_len}",
                self.truncated
            ));
        }
        if self.chat_template {
            parts.push("chat turns rendered with the tokenizer's chat template".into());
        }
        parts.push(
            match (&self.tokenizer, self.eos) {
                (None, _) => "byte-level (no --tokenizer), no EOS",
                (Some(_), Some(_)) => "EOS appended to untemplated responses",
                (Some(_), None) => "no EOS token (the tokenizer has none)",
            }
            .into(),
        );
        parts.join("; ")
    }

    /// Text for `ids`: the tokenizer's decoding, or bytes.
    pub fn decode(&self, ids: &[u32]) -> String {
        match &self.tokenizer {
            Some(t) => t.decode(ids, true).unwrap_or_default(),
            None => {
                let bytes: Vec<u8> = ids.iter().map(|&t| t as u8).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            }
        }
    }
}

/// Reads `path` and tokenizes it (bytes without a tokenizer); a tenth of
/// the examples (at least one), chosen by a fixed seed, are validation.
pub fn load(path: &Path, tokenizer_file: Option<&Path>, seq_len: usize) -> Result<InstructData> {
    load_with_val(path, None, tokenizer_file, seq_len)
}

/// [`load`], with the validation examples from `val` when given (all of
/// `path` is then trained on) instead of a seeded tenth of `path`.
pub fn load_with_val(
    path: &Path,
    val_path: Option<&Path>,
    tokenizer_file: Option<&Path>,
    seq_len: usize,
) -> Result<InstructData> {
    let tokenizer = match tokenizer_file {
        Some(file) => Some(Box::new(tokenizers::Tokenizer::from_file(file).map_err(
            |e| TrainError::file(file, format!("not a tokenizer.json lrtop can read: {e}")),
        )?)),
        None => None,
    };
    let eos = tokenizer
        .as_ref()
        .and_then(|t| EOS_TOKENS.iter().find_map(|name| t.token_to_id(name)));
    let template = match tokenizer_file.and_then(Path::parent) {
        Some(dir) => ChatTemplate::find(dir).map_err(|e| TrainError::file(path, e))?,
        None => None,
    };
    let mut dropped = 0;
    let mut truncated = 0;
    // One file's examples, tokenized; those that leave no room for a
    // response are counted, not kept.
    let mut read = |path: &Path| -> Result<Vec<Example>> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        let examples = parse(&text).map_err(|e| TrainError::file(path, e))?;
        let encode = |text: &str| -> Result<Vec<u32>> {
            match &tokenizer {
                Some(t) => Ok(t
                    .encode(text, false)
                    .map_err(|e| TrainError::file(path, format!("cannot tokenize: {e}")))?
                    .get_ids()
                    .to_vec()),
                None => Ok(text.bytes().map(u32::from).collect()),
            }
        };
        let mut tokenized = Vec::with_capacity(examples.len());
        for (line, parsed) in &examples {
            let (example, templated) = parsed
                .split(template.as_ref())
                .map_err(|e| TrainError::file(path, format!("line {line}: {e}")))?;
            let mut ids = encode(&example.prompt)?;
            let prompt_len = ids.len();
            ids.extend(encode(&example.response)?);
            if !templated {
                ids.extend(eos);
            }
            // A window of seq_len inputs predicts seq_len targets: at least
            // one of them must be a response token.
            if prompt_len >= seq_len || ids.len() == prompt_len {
                dropped += 1;
                continue;
            }
            if ids.len() > seq_len + 1 {
                truncated += 1;
                ids.truncate(seq_len + 1);
            }
            tokenized.push(Example { ids, prompt_len });
        }
        Ok(tokenized)
    };
    let tokenized = read(path)?;
    let (train, val) = match val_path {
        Some(val_path) => {
            let val = read(val_path)?;
            for (file, examples) in [(path, &tokenized), (val_path, &val)] {
                if examples.is_empty() {
                    return Err(TrainError::file(
                        file,
                        format!(
                            "no usable examples; {dropped} had a prompt of seq-len ({seq_len}) tokens or more"
                        ),
                    ));
                }
            }
            (tokenized, val)
        }
        None => {
            if tokenized.len() < 2 {
                return Err(TrainError::file(
                    path,
                    format!(
                        "{} usable examples, need at least 2 (one to train on, one to validate); {dropped} had a prompt of seq-len ({seq_len}) tokens or more",
                        tokenized.len()
                    ),
                ));
            }
            split(tokenized)
        }
    };
    let vocab = match &tokenizer {
        Some(t) => t.get_vocab_size(true),
        None => 256,
    };
    Ok(InstructData {
        train,
        val,
        vocab,
        tokenizer,
        dropped,
        truncated,
        eos,
        chat_template: template.is_some(),
    })
}

/// The fixed seeded validation tenth (at least one) and the rest.
fn split(examples: Vec<Example>) -> (Vec<Example>, Vec<Example>) {
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(SPLIT_SEED));
    let val_count = (examples.len() / 10).max(1);
    let mut val_idx = order[..val_count].to_vec();
    val_idx.sort_unstable();
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for (i, example) in examples.into_iter().enumerate() {
        if val_idx.binary_search(&i).is_ok() {
            val.push(example);
        } else {
            train.push(example);
        }
    }
    (train, val)
}

/// The examples of a JSONL file with their line numbers; an error names
/// the line.
pub fn parse(text: &str) -> std::result::Result<Vec<(usize, Parsed)>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: not JSON: {e}", i + 1))?;
        out.push((
            i + 1,
            example(&value).map_err(|e| format!("line {}: {e}", i + 1))?,
        ));
    }
    if out.is_empty() {
        return Err("no examples (one JSON object per line)".into());
    }
    Ok(out)
}

fn example(value: &serde_json::Value) -> std::result::Result<Parsed, String> {
    let text = |key: &str| -> std::result::Result<Option<String>, String> {
        match value.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("\"{key}\" must be a string")),
        }
    };
    if let Some(messages) = value.get("messages") {
        return chat(messages);
    }
    if let (Some(prompt), Some(completion)) = (text("prompt")?, text("completion")?) {
        return Ok(Parsed::Text(TextExample {
            prompt,
            response: completion,
        }));
    }
    if let (Some(instruction), Some(output)) = (text("instruction")?, text("output")?) {
        let input = text("input")?.unwrap_or_default();
        let prompt = if input.trim().is_empty() {
            ALPACA_NO_INPUT.replace("{instruction}", &instruction)
        } else {
            ALPACA_WITH_INPUT
                .replace("{instruction}", &instruction)
                .replace("{input}", &input)
        };
        return Ok(Parsed::Text(TextExample {
            prompt,
            response: output,
        }));
    }
    Err("expected {\"prompt\",\"completion\"}, Alpaca's {\"instruction\",\"input\",\"output\"} or {\"messages\":[{\"role\",\"content\"}…]}".into())
}

fn chat(messages: &serde_json::Value) -> std::result::Result<Parsed, String> {
    let list = messages
        .as_array()
        .filter(|l| !l.is_empty())
        .ok_or("\"messages\" must be a non-empty list")?;
    let mut turns = Vec::with_capacity(list.len());
    for m in list {
        let field = |key: &str| {
            m.get(key)
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .ok_or_else(|| format!("each message needs a string \"{key}\""))
        };
        turns.push(Message {
            role: field("role")?,
            content: field("content")?,
        });
    }
    match turns.last() {
        Some(last) if last.role == "assistant" => Ok(Parsed::Chat(turns)),
        Some(last) => Err(format!(
            "the last message is the response and must be the assistant's, found \"{}\"",
            last.role
        )),
        None => Err("\"messages\" must be a non-empty list".into()),
    }
}

/// Inputs, targets and target weights `(n, seq_len)` for `examples`: the
/// inputs are the example's tokens padded with 0; a target scores 1 where
/// it is a response token, 0 on the prompt and the padding.
pub fn batch_vectors(
    examples: impl ExactSizeIterator<Item = impl Borrow<Example>>,
    seq_len: usize,
) -> (Vec<u32>, Vec<u32>, Vec<f32>) {
    let n = examples.len();
    let mut input = vec![0u32; n * seq_len];
    let mut target = vec![0u32; n * seq_len];
    let mut weight = vec![0f32; n * seq_len];
    for (row, example) in examples.enumerate() {
        let ex: &Example = example.borrow();
        let offset = row * seq_len;
        for i in 0..seq_len.min(ex.ids.len().saturating_sub(1)) {
            input[offset + i] = ex.ids[i];
            target[offset + i] = ex.ids[i + 1];
            if i + 1 >= ex.prompt_len {
                weight[offset + i] = 1.0;
            }
        }
    }
    (input, target, weight)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_shapes_parse_into_prompt_and_response() {
        let text = r#"{"prompt": "2+2=", "completion": "4"}

{"instruction": "Add.", "input": "2 and 2", "output": "4"}
{"instruction": "Say hi.", "output": "hi"}
{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}
"#;
        let got: Vec<TextExample> = parse(text)
            .unwrap()
            .into_iter()
            .map(|(_, p)| p.split(None).unwrap().0)
            .collect();
        assert_eq!(got.len(), 4);
        assert_eq!(got[0].prompt, "2+2=");
        assert!(
            got[1]
                .prompt
                .contains("### Instruction:\nAdd.\n\n### Input:\n2 and 2\n\n### Response:\n")
        );
        assert!(!got[2].prompt.contains("### Input:"));
        assert_eq!(
            got[3].prompt,
            "<|system|>\nBe brief.\n<|user|>\n2+2?\n<|assistant|>\n"
        );
        assert!(got.iter().all(|e| e.response == "4" || e.response == "hi"));
    }

    #[test]
    fn bad_lines_are_named() {
        for (text, says) in [
            ("{\"prompt\": \"a\"}", "line 1: expected"),
            ("\n{nope", "line 2: not JSON"),
            ("{\"messages\": []}", "non-empty list"),
            (
                r#"{"messages": [{"role": "user", "content": "hi"}]}"#,
                "must be the assistant's",
            ),
            (r#"{"prompt": 1, "completion": "x"}"#, "must be a string"),
            ("", "no examples"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn only_response_targets_are_scored() {
        // Prompt [10, 11], response [12, 13]: targets 11 (prompt), 12, 13.
        let ex = Example {
            ids: vec![10, 11, 12, 13],
            prompt_len: 2,
        };
        let (input, target, weight) = batch_vectors([ex.clone()].into_iter(), 5);
        assert_eq!(input, [10, 11, 12, 0, 0]);
        assert_eq!(target, [11, 12, 13, 0, 0]);
        assert_eq!(weight, [0.0, 1.0, 1.0, 0.0, 0.0]);
        // Cut to the window: 3 inputs, the last target is 13.
        let (input, target, weight) = batch_vectors([ex].into_iter(), 3);
        assert_eq!(
            (input, target, weight),
            (vec![10, 11, 12], vec![11, 12, 13], vec![0.0, 1.0, 1.0])
        );
    }

    #[test]
    fn the_validation_split_is_fixed_and_prompts_that_fill_the_window_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("d.jsonl");
        let mut text = String::new();
        for i in 0..40 {
            text.push_str(&format!(
                "{{\"prompt\": \"q{i}=\", \"completion\": \"a{i}\"}}\n"
            ));
        }
        text.push_str(&format!(
            "{{\"prompt\": \"{}\", \"completion\": \"x\"}}\n",
            "p".repeat(64)
        ));
        std::fs::write(&file, text).unwrap();
        let a = load(&file, None, 16).unwrap();
        let b = load(&file, None, 16).unwrap();
        assert_eq!((a.train.len(), a.val.len(), a.dropped), (36, 4, 1));
        assert_eq!(a.val, b.val);
        assert_eq!(a.vocab, 256);
        assert_eq!(a.decode(a.val[0].prompt()).chars().next(), Some('q'));
        assert_eq!(a.truncated, 0);
        assert_eq!(
            a.summary(16),
            "instruct: 36 examples to train on, 4 to validate; 1 dropped (prompt of 16 tokens or more); byte-level (no --tokenizer), no EOS"
        );
    }

    #[test]
    fn responses_longer_than_the_window_are_cut_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("d.jsonl");
        let long = format!(
            "{{\"prompt\": \"q=\", \"completion\": \"{}\"}}\n",
            "z".repeat(40)
        );
        std::fs::write(&file, format!("{long}{long}{long}")).unwrap();
        let data = load(&file, None, 16).unwrap();
        assert_eq!(data.truncated, 3);
        assert!(
            data.train
                .iter()
                .chain(&data.val)
                .all(|e| e.ids.len() == 17)
        );
        assert!(data.summary(16).contains("3 responses cut at --seq-len 16"));
    }

    #[test]
    fn chat_examples_go_through_the_tokenizers_chat_template() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            fixtures.join("tokenizer/tokenizer.json"),
            dir.path().join("tokenizer.json"),
        )
        .unwrap();
        std::fs::copy(
            fixtures.join("chat-templates/chatml/tokenizer_config.json"),
            dir.path().join("tokenizer_config.json"),
        )
        .unwrap();
        let file = dir.path().join("chat.jsonl");
        let mut text = String::new();
        for i in 0..10 {
            text.push_str(&format!(
                "{{\"messages\": [{{\"role\": \"user\", \"content\": \"{i}+1?\"}}, {{\"role\": \"assistant\", \"content\": \"{}\"}}]}}\n",
                i + 1
            ));
        }
        std::fs::write(&file, text).unwrap();
        let data = load(&file, Some(&dir.path().join("tokenizer.json")), 128).unwrap();
        assert!(data.chat_template);
        assert!(
            data.summary(64).contains("chat template"),
            "{}",
            data.summary(64)
        );
        let ex = &data.train[0];
        let prompt = data.decode(ex.prompt());
        assert!(
            prompt.starts_with("<|im_start|>system\nYou are a helpful assistant.<|im_end|>"),
            "{prompt}"
        );
        assert!(prompt.ends_with("<|im_start|>assistant\n"), "{prompt}");
        // The template ends the turn; no EOS id is added after it.
        let response = data.decode(ex.response());
        assert!(response.ends_with("<|im_end|>\n"), "{response:?}");
        assert_ne!(ex.response().last().copied(), data.eos);
    }
}
