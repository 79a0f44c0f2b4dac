//! Token streams for language modelling: nanoGPT's `train.bin` / `val.bin`
//! (little-endian uint16 ids) and byte-level text.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::train::error::{Result, TrainError};

/// Files above this size are read window by window instead of into memory.
const IN_MEMORY_LIMIT: u64 = 1 << 30;
const SCAN_CHUNK: usize = 1 << 22;

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
            TokenStream::File { path, file, .. } => {
                let mut buf = vec![0u8; count * 2];
                read_exact_at(file, &mut buf, start as u64 * 2)
                    .map_err(|e| TrainError::io(path, e))?;
                out.extend(
                    buf.chunks_exact(2)
                        .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]]))),
                );
                Ok(())
            }
        }
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

/// nanoGPT's `train.bin` and `val.bin` in `dir`; vocab = max id + 1 unless given.
pub fn load_bins(dir: &Path, vocab: Option<usize>) -> Result<TokenData> {
    if !dir.is_dir() {
        return Err(TrainError::file(dir, "not a folder (or does not exist)"));
    }
    let (train, train_max) = open_bin(&dir.join("train.bin"))?;
    let (val, val_max) = open_bin(&dir.join("val.bin"))?;
    let max_id = usize::from(train_max.max(val_max));
    let vocab = match vocab {
        Some(v) if v <= max_id => {
            let file = if usize::from(train_max) == max_id {
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

/// A uint16 token file and its largest id.
fn open_bin(path: &Path) -> Result<(TokenStream, u16)> {
    let meta = std::fs::metadata(path).map_err(|e| TrainError::io(path, e))?;
    let bytes = meta.len();
    if bytes % 2 != 0 {
        return Err(TrainError::file(
            path,
            format!("odd number of bytes ({bytes}), expected uint16 tokens"),
        ));
    }
    if bytes == 0 {
        return Err(TrainError::file(path, "empty, expected uint16 tokens"));
    }
    let mut file = File::open(path).map_err(|e| TrainError::io(path, e))?;
    if bytes <= IN_MEMORY_LIMIT {
        let mut raw = Vec::with_capacity(bytes as usize);
        file.read_to_end(&mut raw)
            .map_err(|e| TrainError::io(path, e))?;
        let tokens: Vec<u16> = raw
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect();
        let max = tokens.iter().copied().max().unwrap_or(0);
        return Ok((TokenStream::Memory(tokens), max));
    }
    let mut max = 0u16;
    let mut chunk = vec![0u8; SCAN_CHUNK];
    loop {
        let n = read_full(&mut file, &mut chunk).map_err(|e| TrainError::io(path, e))?;
        if n == 0 {
            break;
        }
        max = chunk[..n - n % 2]
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .fold(max, u16::max);
    }
    let stream = TokenStream::File {
        path: path.to_path_buf(),
        file,
        len: (bytes / 2) as usize,
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
