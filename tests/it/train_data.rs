//! Data loaders: each format from tiny files made here, malformed files
//! rejected with the file named, and the fixed digits split.

use std::io::Write;
use std::path::Path;

use candle_core::Device;
use flate2::Compression;
use flate2::write::GzEncoder;
use lrtop::train::data::{Batch, DataKind, Dataset, EpochSampler, TaskSpec};

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn idx_images(n: u32, rows: u32, cols: u32, seed: u8) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [2051u32, n, rows, cols] {
        v.extend_from_slice(&x.to_be_bytes());
    }
    v.extend((0..n * rows * cols).map(|i| (i as u8).wrapping_mul(seed)));
    v
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&2049u32.to_be_bytes());
    v.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    v.extend_from_slice(labels);
    v
}

fn mnist_dir(gzipped: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        ("train-images-idx3-ubyte", idx_images(6, 4, 4, 3)),
        ("train-labels-idx1-ubyte", idx_labels(&[0, 1, 2, 3, 9, 5])),
        ("t10k-images-idx3-ubyte", idx_images(3, 4, 4, 7)),
        ("t10k-labels-idx1-ubyte", idx_labels(&[4, 5, 6])),
    ];
    for (name, bytes) in files {
        if gzipped {
            write(&dir.path().join(format!("{name}.gz")), &gz(&bytes));
        } else {
            write(&dir.path().join(name), &bytes);
        }
    }
    dir
}

fn load_err(task: &TaskSpec) -> String {
    Dataset::load(task, 8).expect_err("must fail").to_string()
}

#[test]
fn task_specs_parse_and_print() {
    for text in [
        "digits",
        "mnist=/data/mnist",
        "cifar10=/d/c",
        "tokens=/d/t",
        "tokens=/d/t,vocab=70",
        "tokens=/d/t,vocab=200000,dtype=u32",
        "text=/x.txt",
        "instruct=/a.jsonl",
        "instruct=/a.jsonl,val=/b.jsonl",
    ] {
        let spec: TaskSpec = text.parse().unwrap();
        assert_eq!(spec.to_string(), text);
    }
    assert_eq!(
        "MNIST=/a".parse::<TaskSpec>().unwrap(),
        TaskSpec::Mnist("/a".into())
    );
    for bad in [
        "",
        "digitz",
        "mnist",
        "mnist=",
        "tokens=/d,vocab=0",
        "tokens=/d,vocab=99999,dtype=u16",
        "tokens=/d,dtype=u8",
        "digits=/x",
    ] {
        let err = bad.parse::<TaskSpec>().expect_err(bad).to_string();
        assert!(err.contains("invalid task"), "{bad}: {err}");
    }
}

#[test]
fn digits_split_is_fixed_and_stratified() {
    let a = Dataset::load(&TaskSpec::Digits, 8).unwrap();
    let b = Dataset::load(&TaskSpec::Digits, 8).unwrap();
    assert_eq!(a.train_size() + a.test_size(), 1797);
    assert_eq!(
        a.kind(),
        &DataKind::Classification {
            input_shape: [1, 8, 8],
            classes: 10
        }
    );
    let (train, test) = a.images().unwrap();
    let (_, test_b) = b.images().unwrap();
    assert_eq!(test.labels(), test_b.labels());
    // 20% of every class (rounded) is held out.
    for class in 0..10u32 {
        let n_test = test.labels().iter().filter(|&&l| l == class).count();
        let n_all = n_test + train.labels().iter().filter(|&&l| l == class).count();
        assert_eq!(
            n_test,
            (n_all as f64 * 0.2).round() as usize,
            "class {class}"
        );
    }
    // Pinned: the split must not change between versions (it defines the benchmark).
    let mut features = Vec::new();
    test.features_into(&[0, 1, 2, 100], &mut features);
    let fingerprint: f64 = features
        .iter()
        .enumerate()
        .map(|(i, &v)| f64::from(v) * (i % 7 + 1) as f64)
        .sum();
    let labels: Vec<u32> = test.labels()[..12].to_vec();
    assert_eq!(a.test_size(), 359);
    assert_eq!(
        (labels, (fingerprint * 1e4).round()),
        (PINNED_LABELS.to_vec(), PINNED_FINGERPRINT)
    );
    // Pixels are scaled into [0, 1].
    assert!(features.iter().all(|&v| (0.0..=1.0).contains(&v)));
    assert!(features.contains(&1.0));
}

const PINNED_LABELS: [u32; 12] = [0, 1, 6, 5, 8, 5, 5, 9, 2, 3, 6, 1];
const PINNED_FINGERPRINT: f64 = 3_343_750.0;

#[test]
fn mnist_plain_and_gzipped() {
    for gzipped in [false, true] {
        let dir = mnist_dir(gzipped);
        let data = Dataset::load(&TaskSpec::Mnist(dir.path().into()), 8).unwrap();
        assert_eq!(
            data.kind(),
            &DataKind::Classification {
                input_shape: [1, 4, 4],
                classes: 10
            }
        );
        assert_eq!((data.train_size(), data.test_size()), (6, 3));
        let Batch::Images { x, y } = data.train_batch(&[1, 4], &Device::Cpu).unwrap() else {
            panic!()
        };
        assert_eq!(x.dims(), &[2, 1, 4, 4]);
        assert_eq!(y.to_vec1::<u32>().unwrap(), vec![1, 9]);
        let first: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
        // Image 1 starts at pixel 16: (16 * 3) / 255.
        assert!((first[0] - 48.0 / 255.0).abs() < 1e-6);
    }
}

#[test]
fn mnist_dotted_names_are_found() {
    let dir = mnist_dir(false);
    std::fs::rename(
        dir.path().join("train-images-idx3-ubyte"),
        dir.path().join("train-images.idx3-ubyte"),
    )
    .unwrap();
    assert!(Dataset::load(&TaskSpec::Mnist(dir.path().into()), 8).is_ok());
}

#[test]
fn mnist_errors_name_the_file_and_the_problem() {
    let dir = mnist_dir(true);
    let task = TaskSpec::Mnist(dir.path().into());
    // Images where labels belong.
    write(
        &dir.path().join("t10k-labels-idx1-ubyte.gz"),
        &gz(&idx_images(3, 4, 4, 1)),
    );
    let err = load_err(&task);
    assert!(
        err.contains("t10k-labels-idx1-ubyte.gz: magic number 2051, expected 2049 (labels)"),
        "{err}"
    );

    let dir = mnist_dir(false);
    let task = TaskSpec::Mnist(dir.path().into());
    let mut truncated = idx_images(6, 4, 4, 3);
    truncated.truncate(40);
    write(&dir.path().join("train-images-idx3-ubyte"), &truncated);
    let err = load_err(&task);
    assert!(
        err.contains(
            "train-images-idx3-ubyte: header says 6x4x4 (96 bytes of data) but the file has 24"
        ),
        "{err}"
    );

    write(
        &dir.path().join("train-images-idx3-ubyte"),
        &idx_images(5, 4, 4, 3),
    );
    let err = load_err(&task);
    assert!(
        err.contains("train-labels-idx1-ubyte: 6 labels but") && err.contains("has 5 images"),
        "{err}"
    );

    write(&dir.path().join("train-images-idx3-ubyte"), &[0, 0]);
    assert!(load_err(&task).contains("too short"));

    std::fs::remove_file(dir.path().join("train-images-idx3-ubyte")).unwrap();
    let err = load_err(&task);
    assert!(
        err.contains("train-images-idx3-ubyte") && err.contains("missing"),
        "{err}"
    );

    let dir = mnist_dir(true);
    write(
        &dir.path().join("train-labels-idx1-ubyte.gz"),
        &[0x1f, 0x8b, 1, 2, 3],
    );
    let err = load_err(&TaskSpec::Mnist(dir.path().into()));
    assert!(
        err.contains("train-labels-idx1-ubyte.gz: not a valid gzip file"),
        "{err}"
    );

    let err = load_err(&TaskSpec::Mnist("/nonexistent/mnist".into()));
    assert!(
        err.contains("/nonexistent/mnist") && err.contains("not a folder"),
        "{err}"
    );
}

fn cifar_batch(labels: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for (i, &l) in labels.iter().enumerate() {
        v.push(l);
        v.extend((0..3072).map(|p| ((p + i) % 256) as u8));
    }
    v
}

fn cifar_dir(nested: bool) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let dir = if nested {
        root.path().join("cifar-10-batches-bin")
    } else {
        root.path().to_path_buf()
    };
    std::fs::create_dir_all(&dir).unwrap();
    for i in 1..=5 {
        write(
            &dir.join(format!("data_batch_{i}.bin")),
            &cifar_batch(&[i as u8, 9]),
        );
    }
    write(&dir.join("test_batch.bin"), &cifar_batch(&[3, 4, 5]));
    root
}

#[test]
fn cifar10_batches() {
    for nested in [false, true] {
        let dir = cifar_dir(nested);
        let data = Dataset::load(&TaskSpec::Cifar10(dir.path().into()), 8).unwrap();
        assert_eq!(
            data.kind(),
            &DataKind::Classification {
                input_shape: [3, 32, 32],
                classes: 10
            }
        );
        assert_eq!((data.train_size(), data.test_size()), (10, 3));
        let (train, _) = data.images().unwrap();
        assert_eq!(train.labels(), &[1, 9, 2, 9, 3, 9, 4, 9, 5, 9]);
        let Batch::Images { x, .. } = data.test_batch(0..2, &Device::Cpu).unwrap() else {
            panic!()
        };
        assert_eq!(x.dims(), &[2, 3, 32, 32]);
        // Standardised per channel: red pixel 0 of test image 0 is 0.
        let v: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
        assert!((v[0] - (0.0 - 0.4914) / 0.2470).abs() < 1e-5);
    }
}

#[test]
fn cifar10_errors() {
    let dir = cifar_dir(false);
    let task = TaskSpec::Cifar10(dir.path().into());
    let mut bad = cifar_batch(&[1, 2]);
    bad.pop();
    write(&dir.path().join("data_batch_3.bin"), &bad);
    let err = load_err(&task);
    assert!(
        err.contains("data_batch_3.bin: 6145 bytes is not a whole number of 3073-byte records"),
        "{err}"
    );

    write(&dir.path().join("data_batch_3.bin"), &cifar_batch(&[1, 57]));
    let err = load_err(&task);
    assert!(
        err.contains("data_batch_3.bin: record 1: label 57, expected 0..9"),
        "{err}"
    );

    std::fs::remove_file(dir.path().join("data_batch_5.bin")).unwrap();
    write(&dir.path().join("data_batch_3.bin"), &cifar_batch(&[1, 2]));
    let err = load_err(&task);
    assert!(err.contains("data_batch_5.bin: missing"), "{err}");

    let empty = tempfile::tempdir().unwrap();
    let err = load_err(&TaskSpec::Cifar10(empty.path().into()));
    assert!(
        err.contains("test_batch.bin") && err.contains("missing"),
        "{err}"
    );
}

fn write_tokens(path: &Path, tokens: &[u16]) {
    let bytes: Vec<u8> = tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
    write(path, &bytes);
}

#[test]
fn token_bins_windows_and_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let train: Vec<u16> = (0..100).map(|i| i % 50).collect();
    let val: Vec<u16> = (0..30).map(|i| 60 + i % 5).collect();
    write_tokens(&dir.path().join("train.bin"), &train);
    write_tokens(&dir.path().join("val.bin"), &val);
    let task = TaskSpec::Tokens {
        dir: dir.path().into(),
        vocab: None,
        dtype: None,
    };
    let data = Dataset::load(&task, 8).unwrap();
    assert_eq!(
        data.kind(),
        &DataKind::LanguageModel {
            vocab: 65,
            seq_len: 8
        }
    );
    // Windows of 9 tokens at offsets 0, 8, ...: (100 - 1) / 8 = 12.
    assert_eq!(data.train_size(), 12);
    // Validation blocks of 8 tokens from offset 0, last partial dropped.
    assert_eq!(data.test_size(), 3);
    let Batch::Tokens { input, target, .. } = data.train_batch(&[2], &Device::Cpu).unwrap() else {
        panic!()
    };
    assert_eq!(
        input.to_vec2::<u32>().unwrap(),
        vec![(16..24).collect::<Vec<u32>>()]
    );
    assert_eq!(
        target.to_vec2::<u32>().unwrap(),
        vec![(17..25).collect::<Vec<u32>>()]
    );
    let Batch::Tokens { input, target, .. } = data.test_batch(1..3, &Device::Cpu).unwrap() else {
        panic!()
    };
    // Block 1 is val[8..16]: tokens 0..7 predict 1..8.
    assert_eq!(input.dims(), &[2, 7]);
    let expect: Vec<u32> = val[8..15].iter().map(|&t| u32::from(t)).collect();
    assert_eq!(input.to_vec2::<u32>().unwrap()[0], expect);
    let expect: Vec<u32> = val[9..16].iter().map(|&t| u32::from(t)).collect();
    assert_eq!(target.to_vec2::<u32>().unwrap()[0], expect);

    let with_vocab = TaskSpec::Tokens {
        dir: dir.path().into(),
        vocab: Some(100),
        dtype: None,
    };
    assert_eq!(
        Dataset::load(&with_vocab, 8).unwrap().kind(),
        &DataKind::LanguageModel {
            vocab: 100,
            seq_len: 8
        }
    );
    let too_small = TaskSpec::Tokens {
        dir: dir.path().into(),
        vocab: Some(64),
        dtype: None,
    };
    let err = load_err(&too_small);
    assert!(
        err.contains("val.bin: holds token id 64, not below the given vocab 64"),
        "{err}"
    );
}

#[test]
fn token_bin_errors() {
    let dir = tempfile::tempdir().unwrap();
    let task = TaskSpec::Tokens {
        dir: dir.path().into(),
        vocab: None,
        dtype: None,
    };
    write(&dir.path().join("train.bin"), &vec![1u8; 1235]);
    write_tokens(&dir.path().join("val.bin"), &[1; 40]);
    let err = load_err(&task);
    assert!(
        err.contains("train.bin: 1235 bytes is not a whole number of uint16 tokens"),
        "{err}"
    );

    write_tokens(&dir.path().join("train.bin"), &[1; 5]);
    let err = Dataset::load(&task, 8).unwrap_err().to_string();
    assert!(
        err.contains("train.bin: 5 training tokens, need at least seq-len + 1 = 9"),
        "{err}"
    );

    write_tokens(&dir.path().join("train.bin"), &[1; 50]);
    write_tokens(&dir.path().join("val.bin"), &[1; 3]);
    let err = Dataset::load(&task, 8).unwrap_err().to_string();
    assert!(err.contains("val.bin: 3 validation tokens"), "{err}");

    std::fs::remove_file(dir.path().join("val.bin")).unwrap();
    let err = load_err(&task);
    assert!(err.contains("val.bin"), "{err}");

    write(&dir.path().join("val.bin"), &[]);
    assert!(load_err(&task).contains("val.bin: empty"));
}

/// uint32 ids (a vocabulary past 65,536, Llama 3's 128,256): chosen with
/// `dtype=u32` or the folder's `tokens.json`.
#[test]
fn token_bins_of_uint32_ids() {
    let dir = tempfile::tempdir().unwrap();
    let wide = |path: &Path, ids: &[u32]| {
        let bytes: Vec<u8> = ids.iter().flat_map(|t| t.to_le_bytes()).collect();
        write(path, &bytes);
    };
    let train: Vec<u32> = (0..100).map(|i| 128_000 + i % 50).collect();
    let val: Vec<u32> = (0..30).map(|i| 70_000 + i).collect();
    wide(&dir.path().join("train.bin"), &train);
    wide(&dir.path().join("val.bin"), &val);
    let spec = |text: &str| -> TaskSpec {
        format!("tokens={}{text}", dir.path().display())
            .parse()
            .unwrap()
    };
    let data = Dataset::load(&spec(",dtype=u32"), 8).unwrap();
    assert_eq!(
        data.kind(),
        &DataKind::LanguageModel {
            vocab: 128_050,
            seq_len: 8
        }
    );
    let Batch::Tokens { input, .. } = data.train_batch(&[1], &Device::Cpu).unwrap() else {
        panic!()
    };
    assert_eq!(input.to_vec2::<u32>().unwrap()[0], train[8..16]);
    // Options in either order, and shown back as given.
    let both = spec(",dtype=u32,vocab=128256");
    assert_eq!(both, spec(",vocab=128256,dtype=u32"));
    assert!(
        both.to_string().ends_with(",vocab=128256,dtype=u32"),
        "{both}"
    );
    assert_eq!(
        Dataset::load(&both, 8).unwrap().kind(),
        &DataKind::LanguageModel {
            vocab: 128_256,
            seq_len: 8
        }
    );
    // Read as uint16 they would be garbage: the sizes still fit, so only
    // the folder's word can tell. Without it: vocab too large for uint16.
    let err = load_err(&spec(",vocab=128256"));
    assert!(err.contains("does not fit uint16 token ids"), "{err}");
    write(
        &dir.path().join("tokens.json"),
        br#"{"dtype": "uint32", "vocab_size": 128256}"#,
    );
    let detected = Dataset::load(&spec(""), 8).unwrap();
    assert_eq!(
        detected.kind(),
        &DataKind::LanguageModel {
            vocab: 128_256,
            seq_len: 8
        }
    );
    let err = load_err(&spec(",dtype=u16"));
    assert!(
        err.contains("says uint32 but the task says dtype=uint16"),
        "{err}"
    );
    write(&dir.path().join("tokens.json"), br#"{"dtype": "int8"}"#);
    assert!(load_err(&spec("")).contains("dtype 'int8'"));
    std::fs::remove_file(dir.path().join("tokens.json")).unwrap();
    write(&dir.path().join("val.bin"), &[0u8; 6]);
    let err = load_err(&spec(",dtype=u32"));
    assert!(
        err.contains("6 bytes is not a whole number of uint32 tokens"),
        "{err}"
    );
    assert!(
        format!("tokens={},dtype=u8", dir.path().display())
            .parse::<TaskSpec>()
            .unwrap_err()
            .to_string()
            .contains("dtype must be u16 or u32")
    );
}

#[test]
fn text_is_bytes_with_the_last_tenth_for_validation() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("corpus.txt");
    let text: Vec<u8> = (0..200u32).map(|i| b'a' + (i % 26) as u8).collect();
    write(&file, &text);
    let data = Dataset::load(&TaskSpec::Text(file.clone()), 10).unwrap();
    assert_eq!(
        data.kind(),
        &DataKind::LanguageModel {
            vocab: 256,
            seq_len: 10
        }
    );
    let tokens = data.tokens().unwrap();
    assert_eq!((tokens.train.len(), tokens.val.len()), (180, 20));
    assert_eq!(data.test_size(), 2);
    let Batch::Tokens { input, .. } = data.test_batch(0..1, &Device::Cpu).unwrap() else {
        panic!()
    };
    let expect: Vec<u32> = text[180..189].iter().map(|&b| u32::from(b)).collect();
    assert_eq!(input.to_vec2::<u32>().unwrap()[0], expect);

    let err = Dataset::load(&TaskSpec::Text(dir.path().join("nope.txt")), 10)
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope.txt"), "{err}");
    write(&file, b"tiny");
    let err = Dataset::load(&TaskSpec::Text(file), 10)
        .unwrap_err()
        .to_string();
    assert!(err.contains("corpus.txt"), "{err}");
}

#[test]
fn sampler_shuffles_whole_epochs() {
    let mut sampler = EpochSampler::new(10, 7);
    let mut batch = Vec::new();
    let mut seen = Vec::new();
    for _ in 0..5 {
        sampler.next_batch(4, &mut batch);
        seen.extend_from_slice(&batch);
    }
    assert_eq!(sampler.epoch(), 2.0);
    for epoch in seen.chunks(10) {
        let mut sorted = epoch.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
    }
    assert_ne!(seen[..10], seen[10..20], "each epoch is reshuffled");
    let mut again = EpochSampler::new(10, 7);
    again.next_batch(4, &mut batch);
    assert_eq!(batch, seen[..4]);
}

#[test]
fn text_is_tokenized_as_hugging_face_tokenizers_does() {
    // The fixture's ids come from the `tokenizers` Python library
    // (scripts/make_tokenizer_fixture.py).
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let ids: Vec<u32> = expected["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    let task = TaskSpec::Text(dir.join("text.txt"));
    let data = Dataset::load_with(&task, 8, Some(&dir.join("tokenizer.json"))).unwrap();
    assert_eq!(
        data.kind(),
        &lrtop::train::DataKind::LanguageModel {
            vocab: 320,
            seq_len: 8
        }
    );
    let tokens = data.tokens().unwrap();
    let mut got = Vec::new();
    tokens
        .train
        .read_into(0, tokens.train.len(), &mut got)
        .unwrap();
    tokens.val.read_into(0, tokens.val.len(), &mut got).unwrap();
    assert_eq!(got, ids);
    assert_eq!(
        tokens.decode(&ids[..40], true).unwrap(),
        expected["decoded_first_40"].as_str().unwrap()
    );
    // Without a tokenizer, the same file is bytes.
    let bytes = Dataset::load(&task, 8).unwrap();
    assert_eq!(
        bytes.kind(),
        &lrtop::train::DataKind::LanguageModel {
            vocab: 256,
            seq_len: 8
        }
    );
}
