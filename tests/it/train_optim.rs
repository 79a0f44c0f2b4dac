//! Optimizer updates against PyTorch: two steps of each optimizer on a tiny
//! parameter with a different LR each step. Expected values printed by
//! `scripts/train_optim_reference.py` (PyTorch 2.15, float64).

use candle_core::{Device, Tensor, Var};
use lrtop::train::optim::{
    Optimizer, OptimizerConfig, OptimizerKind, SliceState, clip_scale, update_slice,
};

const P0: [f32; 4] = [1.0, -2.0, 0.5, 3.0];
const G: [[f32; 4]; 2] = [[0.3, -0.1, 0.8, -1.2], [-0.4, 0.25, 0.1, 0.9]];
const LRS: [f64; 2] = [0.1, 0.05];

const SGD_WD: [f64; 4] = [0.9752, -1.97265, 0.407925, 3.02955];
const MOMENTUM_WD: [f64; 4] = [0.9745655, -1.994106, 0.37806524999999996, 3.1230915];
const NESTEROV: [f64; 4] = [0.96885, -2.0007, 0.3061, 3.1911];
const ADAMW_WD: [f64; 4] = [
    0.8952255234998453,
    -1.8927107719780636,
    0.35516384448082666,
    3.0591162494989876,
];
const SGD_CLIP1: [f64; 4] = [
    0.9992695150074429,
    -2.0054696906538307,
    0.4409201835063496,
    3.037201053878327,
];
const CLIP_NORMS: [f64; 2] = [1.47648230602334, 1.0210288928331068];

fn config(kind: OptimizerKind, weight_decay: f64, momentum: f64) -> OptimizerConfig {
    OptimizerConfig {
        kind,
        weight_decay,
        momentum,
        ..OptimizerConfig::default()
    }
}

fn cases() -> Vec<(&'static str, OptimizerConfig, [f64; 4])> {
    vec![
        ("sgd", config(OptimizerKind::Sgd, 0.1, 0.9), SGD_WD),
        (
            "momentum",
            config(OptimizerKind::Momentum, 0.01, 0.9),
            MOMENTUM_WD,
        ),
        (
            "nesterov",
            config(OptimizerKind::Nesterov, 0.0, 0.9),
            NESTEROV,
        ),
        ("adamw", config(OptimizerKind::AdamW, 0.1, 0.9), ADAMW_WD),
        (
            "sgd-clip",
            OptimizerConfig {
                clip_grad_norm: Some(1.0),
                ..config(OptimizerKind::Sgd, 0.0, 0.0)
            },
            SGD_CLIP1,
        ),
    ]
}

fn assert_close(name: &str, got: &[f32], want: &[f64]) {
    for (g, w) in got.iter().zip(want) {
        assert!(
            (f64::from(*g) - w).abs() < 2e-6 * (1.0 + w.abs()),
            "{name}: got {got:?}, want {want:?}"
        );
    }
}

/// The tensor path: gradients come from backward of `sum(p * g)`.
#[test]
fn tensor_optimizers_match_pytorch() {
    for (name, cfg, want) in cases() {
        let var = Var::from_slice(&P0, 4, &Device::Cpu).unwrap();
        let params = vec![("p".to_string(), var.clone())];
        let mut opt = Optimizer::new(cfg, 1).unwrap();
        let mut norms = Vec::new();
        for (g, lr) in G.iter().zip(LRS) {
            let coeff = Tensor::from_slice(g, 4, &Device::Cpu).unwrap();
            let loss = var.as_tensor().mul(&coeff).unwrap().sum_all().unwrap();
            let grads = loss.backward().unwrap();
            norms.push(opt.step(&params, &grads, lr).unwrap().grad_norm);
        }
        let got: Vec<f32> = var.as_tensor().to_vec1().unwrap();
        assert_close(name, &got, &want);
        if name == "sgd-clip" {
            for (n, w) in norms.iter().zip(CLIP_NORMS) {
                assert!((n - w).abs() < 1e-6, "pre-clip norm {n} vs {w}");
            }
        }
    }
}

/// The slice path of the fused CPU MLP.
#[test]
fn slice_optimizers_match_pytorch() {
    for (name, cfg, want) in cases() {
        let mut p = P0.to_vec();
        let mut state = SliceState::default();
        for (step, (g, lr)) in G.iter().zip(LRS).enumerate() {
            let norm = g.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
            let g: Vec<f32> = match clip_scale(norm, cfg.clip_grad_norm) {
                Some(s) => g.iter().map(|v| v * s as f32).collect(),
                None => g.to_vec(),
            };
            update_slice(&cfg, lr, step as u64 + 1, &mut p, &g, &mut state);
        }
        assert_close(name, &p, &want);
    }
}

#[test]
fn parameters_without_gradients_are_left_alone() {
    let used = Var::from_slice(&[1f32, 2.0], 2, &Device::Cpu).unwrap();
    let unused = Var::from_slice(&[5f32], 1, &Device::Cpu).unwrap();
    let params = vec![
        ("used".to_string(), used.clone()),
        ("unused".to_string(), unused.clone()),
    ];
    let mut opt = Optimizer::new(config(OptimizerKind::AdamW, 0.5, 0.9), 2).unwrap();
    let grads = used.as_tensor().sum_all().unwrap().backward().unwrap();
    let stats = opt.step(&params, &grads, 0.1).unwrap();
    assert!((stats.grad_norm - 2f64.sqrt()).abs() < 1e-6);
    assert_eq!(unused.as_tensor().to_vec1::<f32>().unwrap(), vec![5.0]);
    assert_ne!(used.as_tensor().to_vec1::<f32>().unwrap(), vec![1.0, 2.0]);
}

#[test]
fn optimizer_names_and_bad_settings() {
    for (text, kind) in [
        ("sgd", OptimizerKind::Sgd),
        ("Momentum", OptimizerKind::Momentum),
        ("nesterov", OptimizerKind::Nesterov),
        ("adamw", OptimizerKind::AdamW),
    ] {
        assert_eq!(text.parse::<OptimizerKind>().unwrap(), kind);
        assert_eq!(kind.to_string().parse::<OptimizerKind>().unwrap(), kind);
    }
    assert!(
        "adam"
            .parse::<OptimizerKind>()
            .unwrap_err()
            .to_string()
            .contains("unknown optimizer 'adam'")
    );
    for bad in [
        OptimizerConfig {
            momentum: 1.0,
            ..OptimizerConfig::default()
        },
        OptimizerConfig {
            weight_decay: -1.0,
            ..OptimizerConfig::default()
        },
        OptimizerConfig {
            clip_grad_norm: Some(0.0),
            ..OptimizerConfig::default()
        },
        OptimizerConfig {
            betas: (0.9, 1.0),
            ..OptimizerConfig::default()
        },
    ] {
        assert!(Optimizer::new(bad, 1).is_err(), "{bad:?}");
    }
}
