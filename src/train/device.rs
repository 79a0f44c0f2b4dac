//! Which device to train on: `auto`, `cpu`, `cuda:N` or `metal[:N]`.

use std::fmt;
use std::str::FromStr;

use candle_core::Device;
use candle_core::utils::{cuda_is_available, metal_is_available};

use super::error::{Result, TrainError};

/// A device request as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    /// CUDA or Metal when this build has them and a device answers, else the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
    Metal(usize),
}

/// An opened device and what the user should be told about the choice.
#[derive(Debug, Clone)]
pub struct OpenedDevice {
    pub device: Device,
    /// Set when `auto` fell back to the CPU (print it once).
    pub notice: Option<String>,
}

impl DeviceSpec {
    pub fn parse(text: &str) -> Result<DeviceSpec> {
        text.parse()
    }

    /// Opens the device, or explains why it cannot be used.
    pub fn open(&self) -> Result<OpenedDevice> {
        match *self {
            DeviceSpec::Cpu => Ok(OpenedDevice {
                device: Device::Cpu,
                notice: None,
            }),
            DeviceSpec::Cuda(ordinal) => {
                if !cuda_is_available() {
                    return Err(TrainError::Device(
                        "this lrtop was built without CUDA; rebuild with --features cuda".into(),
                    ));
                }
                let device = Device::new_cuda(ordinal)
                    .map_err(|e| TrainError::Device(format!("cannot open cuda:{ordinal}: {e}")))?;
                Ok(OpenedDevice {
                    device,
                    notice: None,
                })
            }
            DeviceSpec::Metal(ordinal) => {
                if !metal_is_available() {
                    return Err(TrainError::Device(
                        "this lrtop was built without Metal; rebuild with --features metal".into(),
                    ));
                }
                let device = Device::new_metal(ordinal)
                    .map_err(|e| TrainError::Device(format!("cannot open metal:{ordinal}: {e}")))?;
                Ok(OpenedDevice {
                    device,
                    notice: None,
                })
            }
            DeviceSpec::Auto => Ok(open_auto()),
        }
    }
}

fn open_auto() -> OpenedDevice {
    let mut failures = Vec::new();
    if cuda_is_available() {
        match Device::new_cuda(0) {
            Ok(device) => {
                return OpenedDevice {
                    device,
                    notice: None,
                };
            }
            Err(e) => failures.push(format!("cuda:0: {e}")),
        }
    }
    if metal_is_available() {
        match Device::new_metal(0) {
            Ok(device) => {
                return OpenedDevice {
                    device,
                    notice: None,
                };
            }
            Err(e) => failures.push(format!("metal:0: {e}")),
        }
    }
    let notice = if failures.is_empty() {
        "training on the CPU: this lrtop was built without GPU support (rebuild with --features cuda or --features metal)".to_string()
    } else {
        format!(
            "training on the CPU: no usable GPU ({})",
            failures.join("; ")
        )
    };
    OpenedDevice {
        device: Device::Cpu,
        notice: Some(notice),
    }
}

impl FromStr for DeviceSpec {
    type Err = TrainError;

    fn from_str(text: &str) -> Result<DeviceSpec> {
        let lower = text.trim().to_ascii_lowercase();
        let (kind, ordinal) = match lower.split_once(':') {
            Some((kind, n)) => {
                let n = n.parse::<usize>().map_err(|_| {
                    TrainError::Device(format!(
                        "invalid device '{text}': '{n}' is not a device number"
                    ))
                })?;
                (kind, Some(n))
            }
            None => (lower.as_str(), None),
        };
        match (kind, ordinal) {
            ("auto", None) => Ok(DeviceSpec::Auto),
            ("cpu", None) => Ok(DeviceSpec::Cpu),
            ("cuda" | "gpu", n) => Ok(DeviceSpec::Cuda(n.unwrap_or(0))),
            ("metal", n) => Ok(DeviceSpec::Metal(n.unwrap_or(0))),
            _ => Err(TrainError::Device(format!(
                "invalid device '{text}': expected auto, cpu, cuda:N or metal"
            ))),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Auto => f.write_str("auto"),
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
            DeviceSpec::Metal(n) => write!(f, "metal:{n}"),
        }
    }
}

/// A short name of an opened device, e.g. `cpu`, `cuda:0`.
pub fn device_label(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}
