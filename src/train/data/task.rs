//! The `--task` spec: which data set to train on.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::tokens::TokenDtype;
use crate::train::error::TrainError;

/// A data set named on the command line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TaskSpec {
    /// The embedded UCI optical-recognition digits (8x8, 10 classes).
    #[default]
    Digits,
    /// MNIST or Fashion-MNIST IDX files in a folder.
    Mnist(PathBuf),
    /// The CIFAR-10 binary batches in a folder.
    Cifar10(PathBuf),
    /// nanoGPT's `train.bin` / `val.bin` (little-endian token ids, uint16
    /// unless `dtype` or the folder's `tokens.json` says uint32) in a
    /// folder; `vocab` overrides max id + 1.
    Tokens {
        dir: PathBuf,
        vocab: Option<usize>,
        dtype: Option<TokenDtype>,
    },
    /// Byte-level language modelling over a file (vocab 256, last 10% validation).
    Text(PathBuf),
    /// Instruction examples in JSONL (prompt/completion, Alpaca, chat
    /// messages): loss on the responses only; validated on `val`'s
    /// examples when given, else on a seeded tenth of `file`'s.
    Instruct { file: PathBuf, val: Option<PathBuf> },
}

impl TaskSpec {
    pub fn is_language_model(&self) -> bool {
        matches!(
            self,
            TaskSpec::Tokens { .. } | TaskSpec::Text(_) | TaskSpec::Instruct { .. }
        )
    }
}

const EXPECTED: &str = "expected digits, mnist=DIR, cifar10=DIR, tokens=DIR[,vocab=N][,dtype=u32], text=FILE or instruct=FILE.jsonl[,val=FILE.jsonl]";

impl FromStr for TaskSpec {
    type Err = TrainError;

    fn from_str(text: &str) -> Result<TaskSpec, TrainError> {
        let err = |message: String| TrainError::TaskSpec {
            spec: text.to_string(),
            message,
        };
        let trimmed = text.trim();
        let (name, arg) = match trimmed.split_once('=') {
            Some((name, arg)) => (name.trim().to_ascii_lowercase(), Some(arg)),
            None => (trimmed.to_ascii_lowercase(), None),
        };
        let path = |what: &str| -> Result<PathBuf, TrainError> {
            match arg {
                Some(a) if !a.trim().is_empty() => Ok(PathBuf::from(a.trim())),
                _ => Err(err(format!(
                    "'{name}' needs a {what}: {name}={}",
                    what.to_uppercase()
                ))),
            }
        };
        match name.as_str() {
            "digits" => match arg {
                None => Ok(TaskSpec::Digits),
                Some(_) => Err(err("'digits' is embedded and takes no argument".into())),
            },
            "mnist" | "fashion-mnist" | "fashion_mnist" => Ok(TaskSpec::Mnist(path("dir")?)),
            "cifar10" | "cifar-10" => Ok(TaskSpec::Cifar10(path("dir")?)),
            "text" => Ok(TaskSpec::Text(path("file")?)),
            "instruct" => {
                let raw = path("file")?.to_string_lossy().into_owned();
                match raw.rsplit_once(",val=") {
                    Some((_, val)) if val.trim().is_empty() => {
                        Err(err("val= needs a file: instruct=FILE,val=FILE".into()))
                    }
                    Some((file, val)) => Ok(TaskSpec::Instruct {
                        file: PathBuf::from(file),
                        val: Some(PathBuf::from(val.trim())),
                    }),
                    None => Ok(TaskSpec::Instruct {
                        file: PathBuf::from(raw),
                        val: None,
                    }),
                }
            }
            "tokens" => {
                let mut dir = path("dir")?.to_string_lossy().into_owned();
                let (mut vocab, mut dtype) = (None, None);
                // Options after the folder: `,vocab=N`, `,dtype=u32`, in any order.
                while let Some((head, option)) = dir.rsplit_once(',') {
                    let Some((key, value)) = option.split_once('=') else {
                        break;
                    };
                    match key.trim() {
                        "vocab" => {
                            let v = value.trim().parse::<usize>().ok().filter(|v| *v > 0);
                            vocab = Some(v.ok_or_else(|| {
                                err(format!("vocab must be a positive integer, found '{value}'"))
                            })?);
                        }
                        "dtype" => {
                            dtype = Some(TokenDtype::parse(value).ok_or_else(|| {
                                err(format!("dtype must be u16 or u32, found '{value}'"))
                            })?);
                        }
                        _ => break,
                    }
                    dir = head.to_string();
                }
                if let (Some(v), Some(TokenDtype::U16)) = (vocab, dtype)
                    && v > usize::from(u16::MAX) + 1
                {
                    return Err(err(format!(
                        "vocab {v} does not fit uint16 token ids (at most 65536)"
                    )));
                }
                Ok(TaskSpec::Tokens {
                    dir: PathBuf::from(dir),
                    vocab,
                    dtype,
                })
            }
            "" => Err(err(format!("empty task; {EXPECTED}"))),
            other => Err(err(format!("unknown task '{other}'; {EXPECTED}"))),
        }
    }
}

impl fmt::Display for TaskSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskSpec::Digits => f.write_str("digits"),
            TaskSpec::Mnist(dir) => write!(f, "mnist={}", dir.display()),
            TaskSpec::Cifar10(dir) => write!(f, "cifar10={}", dir.display()),
            TaskSpec::Tokens { dir, vocab, dtype } => {
                write!(f, "tokens={}", dir.display())?;
                if let Some(v) = vocab {
                    write!(f, ",vocab={v}")?;
                }
                if let Some(d) = dtype {
                    write!(
                        f,
                        ",dtype={}",
                        if *d == TokenDtype::U32 { "u32" } else { "u16" }
                    )?;
                }
                Ok(())
            }
            TaskSpec::Text(file) => write!(f, "text={}", file.display()),
            TaskSpec::Instruct { file, val: None } => write!(f, "instruct={}", file.display()),
            TaskSpec::Instruct {
                file,
                val: Some(val),
            } => write!(f, "instruct={},val={}", file.display(), val.display()),
        }
    }
}
