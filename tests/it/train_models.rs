//! Model shapes, seeded initialisation, the every-variable-gets-a-gradient
//! check for each model, a finite-difference check, batch norm statistics,
//! and the fused CPU MLP against Candle's autograd.

use candle_core::{DType, Device, Tensor};
use lrtop::train::data::{DataKind, Dataset, TaskSpec};
use lrtop::train::models::fused_mlp::FusedMlp;
use lrtop::train::models::{LlamaSpec, LoraSpec, Model, ModelSpec};
use lrtop::train::optim::OptimizerConfig;

fn images(shape: [usize; 3], classes: usize) -> DataKind {
    DataKind::Classification {
        input_shape: shape,
        classes,
    }
}

fn random_input(dims: &[usize], seed: u64) -> Tensor {
    let n: usize = dims.iter().product();
    let values: Vec<f32> = (0..n)
        .map(|i| (((i as u64 * 2654435761 + seed * 97) % 1000) as f32 / 500.0) - 1.0)
        .collect();
    Tensor::from_vec(values, dims, &Device::Cpu).unwrap()
}

fn labels(n: usize, classes: usize) -> Tensor {
    Tensor::from_vec(
        (0..n as u32)
            .map(|i| i % classes as u32)
            .collect::<Vec<_>>(),
        n,
        &Device::Cpu,
    )
    .unwrap()
}

fn build(spec: &str, data: &DataKind, seed: u64) -> Model {
    Model::build(&spec.parse().unwrap(), data, None, seed, &Device::Cpu).unwrap()
}

fn tiny_llama() -> ModelSpec {
    ModelSpec::Llama(LlamaSpec {
        dim: 32,
        layers: 2,
        heads: 4,
        kv_heads: 2,
        intermediate: Some(48),
        ..LlamaSpec::default()
    })
}

fn loss_of(model: &Model, input: &Tensor, target: &Tensor) -> Tensor {
    let logits = model.forward(input, true).unwrap();
    if logits.rank() == 3 {
        let (n, l, v) = logits.dims3().unwrap();
        candle_nn::loss::cross_entropy(
            &logits.reshape((n * l, v)).unwrap(),
            &target.reshape(n * l).unwrap(),
        )
        .unwrap()
    } else {
        candle_nn::loss::cross_entropy(&logits, target).unwrap()
    }
}

/// Every trainable variable must get a gradient with non-zero entries:
/// Candle's fused ops (rms_norm, softmax_last_dim, rotary_emb) silently cut
/// the graph, and then only the last layers learn.
fn assert_every_variable_learns(model: &Model, input: &Tensor, target: &Tensor) {
    let loss = loss_of(model, input, target);
    let grads = loss.backward().unwrap();
    assert!(!model.params().params().is_empty());
    for (name, var) in model.params().params() {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name}: no gradient"));
        let max = g
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(
            max > 0.0 && max.is_finite(),
            "{name}: gradient max |g| = {max}"
        );
    }
}

#[test]
fn every_variable_gets_a_gradient() {
    let digits = images([1, 8, 8], 10);
    let x = random_input(&[6, 1, 8, 8], 1);
    let y = labels(6, 10);
    for spec in ["mlp", "mlp(hidden=32)", "lenet5", "resnet20"] {
        assert_every_variable_learns(&build(spec, &digits, 3), &x, &y);
    }
    let cifar = images([3, 32, 32], 10);
    let x = random_input(&[2, 3, 32, 32], 2);
    assert_every_variable_learns(&build("lenet5", &cifar, 3), &x, &labels(2, 10));

    let tokens = DataKind::LanguageModel {
        vocab: 40,
        seq_len: 12,
    };
    let ids = Tensor::from_vec(
        (0..24u32).map(|i| (i * 7) % 40).collect::<Vec<_>>(),
        (2, 12),
        &Device::Cpu,
    )
    .unwrap();
    let next = Tensor::from_vec(
        (0..24u32).map(|i| (i * 5 + 1) % 40).collect::<Vec<_>>(),
        (2, 12),
        &Device::Cpu,
    )
    .unwrap();
    for tied in [false, true] {
        let spec = match tiny_llama() {
            ModelSpec::Llama(l) => ModelSpec::Llama(LlamaSpec {
                tie_embeddings: tied,
                ..l
            }),
            _ => unreachable!(),
        };
        let model = Model::build(&spec, &tokens, None, 5, &Device::Cpu).unwrap();
        // 2 layers x (4 attention + 3 mlp + 2 norms) + embedding + final norm (+ lm_head).
        assert_eq!(model.params().params().len(), 20 + usize::from(!tied));
        assert_every_variable_learns(&model, &ids, &next);
    }
    // LoRA on every module: the adapters are the only variables and each
    // gets a gradient (A's is zero while B is, so B is set first).
    let spec = match tiny_llama() {
        ModelSpec::Llama(l) => ModelSpec::Llama(LlamaSpec {
            lora: Some(
                LoraSpec::parse(
                    "r=2,targets=q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
                )
                .unwrap(),
            ),
            ..l
        }),
        _ => unreachable!(),
    };
    let model = Model::build(&spec, &tokens, None, 5, &Device::Cpu).unwrap();
    assert_eq!(model.params().params().len(), 2 * 7 * 2);
    let mut values: std::collections::HashMap<_, _> =
        model.params().values().unwrap().into_iter().collect();
    for (name, value) in values.iter_mut() {
        if name.ends_with("lora_B.weight") {
            *value = (value.ones_like().unwrap() * 0.1).unwrap();
        }
    }
    model.params().set_values(&values, "test").unwrap();
    assert_every_variable_learns(&model, &ids, &next);
}

#[test]
fn output_shapes_and_parameter_counts() {
    let mnist = images([1, 28, 28], 10);
    let lenet = build("lenet5", &mnist, 0);
    assert_eq!(lenet.params().count(), 61_706); // LeCun's LeNet-5 with 10 outputs
    let x = random_input(&[3, 1, 28, 28], 0);
    assert_eq!(lenet.forward(&x, false).unwrap().dims(), &[3, 10]);

    let cifar = images([3, 32, 32], 10);
    let r20 = build("resnet20", &cifar, 0);
    let r32 = build("resnet32", &cifar, 0);
    // He et al. report 0.27M and 0.46M parameters.
    assert!(
        (268_000..274_000).contains(&r20.params().count()),
        "{}",
        r20.params().count()
    );
    assert!(
        (460_000..468_000).contains(&r32.params().count()),
        "{}",
        r32.params().count()
    );
    let x = random_input(&[2, 3, 32, 32], 0);
    assert_eq!(r20.forward(&x, true).unwrap().dims(), &[2, 10]);
    assert_eq!(
        build("lenet5", &cifar, 0)
            .forward(&x, false)
            .unwrap()
            .dims(),
        &[2, 10]
    );

    let mlp = build("mlp(hidden=128,128)", &images([1, 8, 8], 10), 0);
    assert_eq!(
        mlp.params().count(),
        64 * 128 + 128 + 128 * 128 + 128 + 128 * 10 + 10
    );

    let tokens = DataKind::LanguageModel {
        vocab: 50,
        seq_len: 16,
    };
    let llama = Model::build(&tiny_llama(), &tokens, None, 0, &Device::Cpu).unwrap();
    let ids = Tensor::zeros((3, 16), DType::U32, &Device::Cpu).unwrap();
    assert_eq!(llama.forward(&ids, false).unwrap().dims(), &[3, 16, 50]);
    let longer = Tensor::zeros((1, 17), DType::U32, &Device::Cpu).unwrap();
    assert!(
        llama.forward(&longer, false).is_err(),
        "longer than the context"
    );
}

#[test]
fn seeds_decide_initial_weights() {
    let data = images([1, 8, 8], 10);
    let values = |seed| -> Vec<Vec<f32>> {
        build("lenet5", &data, seed)
            .params()
            .values()
            .unwrap()
            .iter()
            .map(|(_, t)| t.flatten_all().unwrap().to_vec1().unwrap())
            .collect()
    };
    assert_eq!(values(7), values(7));
    assert_ne!(values(7), values(8));
}

#[test]
fn model_specs_parse_and_print() {
    for text in [
        "mlp(hidden=128,128)",
        "lenet5",
        "resnet20",
        "resnet32",
        "resnet56",
    ] {
        let spec: ModelSpec = text.parse().unwrap();
        assert_eq!(spec.to_string(), text);
    }
    let llama: ModelSpec = "llama(dim=64,layers=2,heads=4,kv_heads=1,tied=true)"
        .parse()
        .unwrap();
    assert_eq!(
        llama.to_string().parse::<ModelSpec>().unwrap().to_string(),
        llama.to_string()
    );
    assert_eq!(
        "mlp".parse::<ModelSpec>().unwrap(),
        ModelSpec::Mlp {
            hidden: vec![128, 128]
        }
    );
    for bad in [
        "resnet21",
        "vgg",
        "mlp(hidden=0)",
        "mlp(dim=3)",
        "llama(dim=x)",
        "llama(foo=1)",
        "mlp(hidden=4",
    ] {
        assert!(bad.parse::<ModelSpec>().is_err(), "{bad}");
    }
    let tokens = DataKind::LanguageModel {
        vocab: 10,
        seq_len: 4,
    };
    let err = Model::build(&ModelSpec::LeNet5, &tokens, None, 0, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(err.contains("lenet5 is an image classifier"), "{err}");
    let err = Model::build(&tiny_llama(), &images([1, 8, 8], 10), None, 0, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(err.contains("llama is a language model"), "{err}");
    let odd: ModelSpec = "llama(dim=30,heads=4)".parse().unwrap();
    assert!(Model::build(&odd, &tokens, None, 0, &Device::Cpu).is_err());
}

#[test]
fn batch_norm_running_statistics() {
    let data = images([1, 8, 8], 10);
    let model = build("resnet20", &data, 1);
    let buffers = model.params().buffers();
    assert_eq!(
        buffers.len(),
        2 * 19,
        "running mean and variance of 19 batch norms"
    );
    assert!(
        model
            .params()
            .params()
            .iter()
            .all(|(n, _)| !n.contains("running"))
    );
    let stats =
        |m: &Model| -> Vec<f32> { m.params().buffers()[0].1.as_tensor().to_vec1().unwrap() };
    let before = stats(&model);
    let x = random_input(&[4, 1, 8, 8], 3);
    model.forward(&x, false).unwrap();
    assert_eq!(stats(&model), before, "evaluation leaves them alone");
    model.forward(&x, true).unwrap();
    let after = stats(&model);
    assert_ne!(after, before, "training moves them");
    // The running mean moves 10% of the way to the batch mean (of conv1's output).
    assert!(after.iter().all(|v| v.is_finite()));
}

fn lcg_tensor(dims: &[usize], seed: u64, dtype: DType) -> Tensor {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let n: usize = dims.iter().product();
    let values: Vec<f64> = (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect();
    Tensor::from_vec(values, dims, &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

/// Per parameter tensor, the directional derivative of the loss (central
/// difference in f64, small enough that no ReLU flips) against autograd:
/// through convolutions, max pooling, batch norm and option-A shortcuts.
#[test]
fn gradients_match_finite_differences() {
    let data = images([1, 8, 8], 10);
    for spec in ["lenet5", "resnet8", "mlp(hidden=16)"] {
        let model = Model::build_with_dtype(
            &spec.parse().unwrap(),
            &data,
            None,
            4,
            &Device::Cpu,
            DType::F64,
        )
        .unwrap();
        // Digit-like inputs: flat zero background (ties in max pooling) and strokes.
        let x = lcg_tensor(&[4, 1, 8, 8], 5, DType::F64).relu().unwrap();
        let y = labels(4, 10);
        let loss_at = |m: &Model| loss_of(m, &x, &y).to_scalar::<f64>().unwrap();
        let grads = loss_of(&model, &x, &y).backward().unwrap();
        for (i, (name, var)) in model.params().params().iter().enumerate() {
            let d = lcg_tensor(var.dims(), i as u64 + 11, DType::F64);
            let analytic = (grads.get(var.as_tensor()).unwrap() * &d)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap();
            let original = var.as_tensor().copy().unwrap();
            let eps = 1e-6;
            var.set(&(&original + (&d * eps).unwrap()).unwrap())
                .unwrap();
            let plus = loss_at(&model);
            var.set(&(&original - (&d * eps).unwrap()).unwrap())
                .unwrap();
            let minus = loss_at(&model);
            var.set(&original).unwrap();
            let numeric = (plus - minus) / (2.0 * eps);
            assert!(
                (numeric - analytic).abs() <= 1e-5 * analytic.abs().max(1e-2),
                "{spec} {name}: numeric {numeric} vs analytic {analytic}"
            );
        }
    }
}

/// The digits, a 64-32-16-10 graph MLP and the fused engine on its weights.
fn digits_mlp_and_its_fused_engine() -> (Dataset, Model, FusedMlp) {
    let data = Dataset::load(&TaskSpec::Digits, 8).unwrap();
    let model = Model::build(
        &"mlp(hidden=32,16)".parse().unwrap(),
        data.kind(),
        None,
        9,
        &Device::Cpu,
    )
    .unwrap();
    let fused = FusedMlp::from_store(
        model.params(),
        &[64, 32, 16, 10],
        OptimizerConfig::default(),
    )
    .unwrap();
    (data, model, fused)
}

#[test]
fn fused_mlp_gradients_equal_autograd() {
    let (data, model, fused) = digits_mlp_and_its_fused_engine();
    let (train, _) = data.images().unwrap();
    let idx: Vec<usize> = (0..40).map(|i| i * 7).collect();
    let (x, y) = train.batch(&idx, &Device::Cpu).unwrap();
    let mut features = Vec::new();
    train.features_into(&idx, &mut features);
    let labels: Vec<u32> = y.to_vec1().unwrap();
    let manual = fused.gradients(&features, &labels).unwrap();

    let loss = loss_of(&model, &x, &y);
    let auto_loss = f64::from(loss.to_scalar::<f32>().unwrap());
    assert!(
        (manual.loss - auto_loss).abs() < 1e-5,
        "{} vs {auto_loss}",
        manual.loss
    );
    let grads = loss.backward().unwrap();
    let params = model.params().params();
    for (l, (w, b)) in manual.weights.iter().zip(&manual.biases).enumerate() {
        for (name, got) in [
            (format!("layers.{l}.weight"), w),
            (format!("layers.{l}.bias"), b),
        ] {
            let var = &params.iter().find(|(n, _)| *n == name).unwrap().1;
            let want: Vec<f32> = grads
                .get(var.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() <= 1e-5 * scale.max(1e-3),
                    "{name}: {g} vs {w}"
                );
            }
        }
    }
    let logits: Vec<f32> = model
        .forward(&x, false)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let fused_logits = fused.logits(&features, idx.len()).unwrap();
    for (a, b) in logits.iter().zip(&fused_logits) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
}

/// A NaN input stays NaN through the fused MLP's ReLUs (a divergence must
/// show in the loss, not be clipped to zero on the way).
#[test]
fn fused_mlp_relu_passes_nan_through() {
    let (_, _, fused) = digits_mlp_and_its_fused_engine();
    let features = vec![f32::NAN; 64];
    let logits = fused.logits(&features, 1).unwrap();
    assert!(logits.iter().all(|v| v.is_nan()), "{logits:?}");
}
