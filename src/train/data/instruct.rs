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
//!   before it the prompt, each rendered as `<|role|>\ncontent\n` followed
//!   by `<|assistant|>\n` (the Zephyr-style layout; checkpoints' own Jinja
//!   chat templates are not applied yet).

use std::borrow::Borrow;
use std::path::Path;

use rand::SeedableRng;
use rand::seq::SliceRandom;

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
    /// The end-of-sequence id appended to responses, if any.
    pub eos: Option<u32>,
}

impl InstructData {
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
pub fn load(path: &Path, tokenizer: Option<&Path>, seq_len: usize) -> Result<InstructData> {
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
    let examples = parse(&text).map_err(|e| TrainError::file(path, e))?;
    let tokenizer = match tokenizer {
        Some(file) => Some(Box::new(tokenizers::Tokenizer::from_file(file).map_err(
            |e| TrainError::file(file, format!("not a tokenizer.json lrtop can read: {e}")),
        )?)),
        None => None,
    };
    let eos = tokenizer
        .as_ref()
        .and_then(|t| EOS_TOKENS.iter().find_map(|name| t.token_to_id(name)));
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
    let mut dropped = 0;
    for example in &examples {
        let mut ids = encode(&example.prompt)?;
        let prompt_len = ids.len();
        ids.extend(encode(&example.response)?);
        ids.extend(eos);
        // A window of seq_len inputs predicts seq_len targets: at least
        // one of them must be a response token.
        if prompt_len >= seq_len || ids.len() == prompt_len {
            dropped += 1;
            continue;
        }
        ids.truncate(seq_len + 1);
        tokenized.push(Example { ids, prompt_len });
    }
    if tokenized.len() < 2 {
        return Err(TrainError::file(
            path,
            format!(
                "{} usable examples, need at least 2 (one to train on, one to validate); {dropped} had a prompt of seq-len ({seq_len}) tokens or more",
                tokenized.len()
            ),
        ));
    }
    let mut order: Vec<usize> = (0..tokenized.len()).collect();
    order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(SPLIT_SEED));
    let val_count = (tokenized.len() / 10).max(1);
    let mut val_idx = order[..val_count].to_vec();
    val_idx.sort_unstable();
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for (i, example) in tokenized.into_iter().enumerate() {
        if val_idx.binary_search(&i).is_ok() {
            val.push(example);
        } else {
            train.push(example);
        }
    }
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
        eos,
    })
}

/// The examples of a JSONL file; an error names the line.
pub fn parse(text: &str) -> std::result::Result<Vec<TextExample>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: not JSON: {e}", i + 1))?;
        out.push(example(&value).map_err(|e| format!("line {}: {e}", i + 1))?);
    }
    if out.is_empty() {
        return Err("no examples (one JSON object per line)".into());
    }
    Ok(out)
}

fn example(value: &serde_json::Value) -> std::result::Result<TextExample, String> {
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
        return Ok(TextExample {
            prompt,
            response: completion,
        });
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
        return Ok(TextExample {
            prompt,
            response: output,
        });
    }
    Err("expected {\"prompt\",\"completion\"}, Alpaca's {\"instruction\",\"input\",\"output\"} or {\"messages\":[{\"role\",\"content\"}…]}".into())
}

fn chat(messages: &serde_json::Value) -> std::result::Result<TextExample, String> {
    let list = messages
        .as_array()
        .filter(|l| !l.is_empty())
        .ok_or("\"messages\" must be a non-empty list")?;
    let mut turns = Vec::with_capacity(list.len());
    for m in list {
        let field = |key: &str| {
            m.get(key)
                .and_then(|v| v.as_str())
                .ok_or_else(|| format!("each message needs a string \"{key}\""))
        };
        turns.push((field("role")?, field("content")?));
    }
    let Some(((role, response), before)) = turns.split_last() else {
        return Err("\"messages\" must be a non-empty list".into());
    };
    if *role != "assistant" {
        return Err(format!(
            "the last message is the response and must be the assistant's, found \"{role}\""
        ));
    }
    let mut prompt = String::new();
    for (role, content) in before {
        prompt.push_str(&format!("<|{role}|>\n{content}\n"));
    }
    prompt.push_str("<|assistant|>\n");
    Ok(TextExample {
        prompt,
        response: response.to_string(),
    })
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
        let got = parse(text).unwrap();
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
    }
}
