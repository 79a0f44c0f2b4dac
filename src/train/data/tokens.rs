//! Token streams for language modelling: nanoGPT's `train.bin` / `val.bin`
//! (little-endian uint16 ids, or uint32 for vocabularies past 65,536) and
//! tokenized or byte-level text.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::train::error::{Result, TrainError};

/// Files above this size are read window by window instead of into memory.
const IN_MEMORY_LIMIT: u64 = 1 << 30;
const SCAN_CHUNK: usize = 1 << 22;

/// How a tokens folder stores its ids: nanoGPT's uint16, or uint32 (chosen
/// with `tokens=DIR,dtype=u32` or the folder's `tokens.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenDtype {
    U16,
    U32,
}

impl TokenDtype {
    pub fn bytes(self) -> usize {
        match self {
            TokenDtype::U16 => 2,
            TokenDtype::U32 => 4,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TokenDtype::U16 => "uint16",
            TokenDtype::U32 => "uint32",
        }
    }

    /// `u16`, `uint16`, `u32`, `uint32`.
    pub fn parse(text: &str) -> Option<TokenDtype> {
        match text.trim().to_ascii_lowercase().as_str() {
            "u16" | "uint16" => Some(TokenDtype::U16),
            "u32" | "uint32" => Some(TokenDtype::U32),
            _ => None,
        }
    }
}

/// The sidecar a tokens folder may hold, `tokens.json`:
/// `{"dtype": "uint32", "vocab_size": 128256}` (both optional).
pub const SIDECAR: &str = "tokens.json";

#[derive(Debug, serde::Deserialize)]
struct Sidecar {
    dtype: Option<String>,
    vocab_size: Option<usize>,
}

/// A sequence of token ids, in memory or read from disk on demand.
#[derive(Debug)]
pub enum TokenStream {
    Memory(Vec<u16>),
    /// Ids of a tokenizer whose vocabulary may pass 65,536 (Llama 3's).
    Wide(Vec<u32>),
    File {
        path: PathBuf,
        file: File,
        len: usize,
        dtype: TokenDtype,
    },
}

impl TokenStream {
    pub fn len(&self) -> usize {
        match self {
            TokenStream::Memory(t) => t.len(),
            TokenStream::Wide(t) => t.len(),
            TokenStream::File { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends tokens `start..start + count` to `out`.
    pub fn read_into(&self, start: usize, count: usize, out: &mut Vec<u32>) -> Result<()> {
        match self {
            TokenStream::Memory(t) => {
                out.extend(t[start..start + count].iter().map(|&v| u32::from(v)));
                Ok(())
            }
            TokenStream::Wide(t) => {
                out.extend_from_slice(&t[start..start + count]);
                Ok(())
            }
            TokenStream::File {
                path, file, dtype, ..
            } => {
                let width = dtype.bytes();
                let mut buf = vec![0u8; count * width];
                read_exact_at(file, &mut buf, (start * width) as u64)
                    .map_err(|e| TrainError::io(path, e))?;
                decode_into(&buf, *dtype, out);
                Ok(())
            }
        }
    }
}

/// Little-endian ids of `dtype` in `bytes` (a partial id at the end is ignored).
fn decode_into(bytes: &[u8], dtype: TokenDtype, out: &mut Vec<u32>) {
    match dtype {
        TokenDtype::U16 => out.extend(
            bytes
                .chunks_exact(2)
                .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]]))),
        ),
        TokenDtype::U32 => out.extend(
            bytes
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        ),
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_read(file, buf, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
        offset += n as u64;
    }
    Ok(())
}

/// A train and a validation stream with the vocabulary size.
#[derive(Debug)]
pub struct TokenData {
    pub train: TokenStream,
    pub val: TokenStream,
    pub vocab: usize,
    /// The tokenizer that made the ids (text tasks with `tokenizer.json`).
    pub tokenizer: Option<Box<tokenizers::Tokenizer>>,
}

impl TokenData {
    /// Text for ids: the tokenizer's decoding, bytes for byte-level text;
    /// None for pre-tokenized data (ids without a known tokenizer).
    pub fn decode(&self, ids: &[u32], byte_level: bool) -> Option<String> {
        match &self.tokenizer {
            Some(t) => t.decode(ids, true).ok(),
            None if byte_level => {
                let bytes: Vec<u8> = ids.iter().map(|&t| t as u8).collect();
                Some(String::from_utf8_lossy(&bytes).into_owned())
            }
            None => None,
        }
    }
}

/// nanoGPT's `train.bin` and `val.bin` in `dir`; vocab = max id + 1 unless
/// given. The ids are uint16 unless `dtype` or the folder's `tokens.json`
/// says uint32 (which also may give the vocabulary).
pub fn load_bins(dir: &Path, vocab: Option<usize>, dtype: Option<TokenDtype>) -> Result<TokenData> {
    if !dir.is_dir() {
        return Err(TrainError::file(dir, "not a folder (or does not exist)"));
    }
    let sidecar_path = dir.join(SIDECAR);
    let sidecar = match std::fs::read_to_string(&sidecar_path) {
        Ok(text) => Some(
            serde_json::from_str::<Sidecar>(&text)
                .map_err(|e| TrainError::file(&sidecar_path, format!("not valid: {e}")))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(TrainError::io(&sidecar_path, e)),
    };
    let side_dtype = match sidecar.as_ref().and_then(|s| s.dtype.as_deref()) {
        Some(name) => Some(TokenDtype::parse(name).ok_or_else(|| {
            TrainError::file(
                &sidecar_path,
                format!("dtype '{name}': expected uint16 or uint32"),
            )
        })?),
        None => None,
    };
    let dtype = match (dtype, side_dtype) {
        (Some(a), Some(b)) if a != b => {
            return Err(TrainError::file(
                &sidecar_path,
                format!("says {} but the task says dtype={}", b.name(), a.name()),
            ));
        }
        (Some(d), _) | (None, Some(d)) => d,
        (None, None) => TokenDtype::U16,
    };
    let vocab = vocab.or(sidecar.as_ref().and_then(|s| s.vocab_size));
    if let Some(v) = vocab
        && dtype == TokenDtype::U16
        && v > usize::from(u16::MAX) + 1
    {
        return Err(TrainError::file(
            dir,
            format!(
                "vocab {v} does not fit uint16 token ids (at most 65536): store uint32 ids and add dtype=u32 (or {SIDECAR})"
            ),
        ));
    }
    let (train, train_max) = open_bin(&dir.join("train.bin"), dtype)?;
    let (val, val_max) = open_bin(&dir.join("val.bin"), dtype)?;
    let max_id = train_max.max(val_max) as usize;
    let vocab = match vocab {
        Some(v) if v <= max_id => {
            let file = if train_max as usize == max_id {
                "train.bin"
            } else {
                "val.bin"
            };
            return Err(TrainError::file(
                dir.join(file),
                format!("holds token id {max_id}, not below the given vocab {v}"),
            ));
        }
        Some(v) => v,
        None => max_id + 1,
    };
    Ok(TokenData {
        train,
        val,
        vocab,
        tokenizer: None,
    })
}

/// A token file of `dtype` and its largest id.
fn open_bin(path: &Path, dtype: TokenDtype) -> Result<(TokenStream, u32)> {
    let meta = std::fs::metadata(path).map_err(|e| TrainError::io(path, e))?;
    let bytes = meta.len();
    let (width, name) = (dtype.bytes() as u64, dtype.name());
    if bytes % width != 0 {
        return Err(TrainError::file(
            path,
            format!("{bytes} bytes is not a whole number of {name} tokens"),
        ));
    }
    if bytes == 0 {
        return Err(TrainError::file(
            path,
            format!("empty, expected {name} tokens"),
        ));
    }
    let mut file = File::open(path).map_err(|e| TrainError::io(path, e))?;
    if bytes <= IN_MEMORY_LIMIT {
        let mut raw = Vec::with_capacity(bytes as usize);
        file.read_to_end(&mut raw)
            .map_err(|e| TrainError::io(path, e))?;
        return Ok(match dtype {
            TokenDtype::U16 => {
                let tokens: Vec<u16> = raw
                    .chunks_exact(2)
                    .map(|b| u16::from_le_bytes([b[0], b[1]]))
                    .collect();
                let max = tokens.iter().copied().max().unwrap_or(0);
                (TokenStream::Memory(tokens), u32::from(max))
            }
            TokenDtype::U32 => {
                let mut tokens = Vec::with_capacity(raw.len() / 4);
                decode_into(&raw, dtype, &mut tokens);
                let max = tokens.iter().copied().max().unwrap_or(0);
                (TokenStream::Wide(tokens), max)
            }
        });
    }
    let mut max = 0u32;
    let mut chunk = vec![0u8; SCAN_CHUNK];
    let mut ids = Vec::new();
    loop {
        let n = read_full(&mut file, &mut chunk).map_err(|e| TrainError::io(path, e))?;
        if n == 0 {
            break;
        }
        ids.clear();
        // SCAN_CHUNK is a multiple of 4: no id straddles two chunks.
        decode_into(&chunk[..n], dtype, &mut ids);
        max = ids.iter().copied().fold(max, u32::max);
    }
    let stream = TokenStream::File {
        path: path.to_path_buf(),
        file,
        len: (bytes / width) as usize,
        dtype,
    };
    Ok((stream, max))
}

fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Text tokenized with Hugging Face's `tokenizer.json` at `tokenizer`
/// (the vocabulary is the tokenizer's, added tokens included), or without
/// one byte-level (vocab 256); the last 10% of the ids for validation.
pub fn load_text(path: &Path, tokenizer: Option<&Path>) -> Result<TokenData> {
    let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
    if let Some(file) = tokenizer {
        let tok = tokenizers::Tokenizer::from_file(file).map_err(|e| {
            TrainError::file(file, format!("not a tokenizer.json lrtop can read: {e}"))
        })?;
        let text = String::from_utf8_lossy(&bytes);
        let ids = tok
            .encode(text.as_ref(), false)
            .map_err(|e| TrainError::file(path, format!("cannot tokenize: {e}")))?
            .get_ids()
            .to_vec();
        let split = ids.len() - ids.len() / 10;
        return Ok(TokenData {
            train: TokenStream::Wide(ids[..split].to_vec()),
            val: TokenStream::Wide(ids[split..].to_vec()),
            vocab: tok.get_vocab_size(true),
            tokenizer: Some(Box::new(tok)),
        });
    }
    let val_len = bytes.len() / 10;
    let split = bytes.len() - val_len;
    let to_tokens = |b: &[u8]| b.iter().map(|&v| u16::from(v)).collect::<Vec<_>>();
    Ok(TokenData {
        train: TokenStream::Memory(to_tokens(&bytes[..split])),
        val: TokenStream::Memory(to_tokens(&bytes[split..])),
        vocab: 256,
        tokenizer: None,
    })
}
