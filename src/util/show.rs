//! Tensors printed the way PyTorch prints them, for the notebooks: `tensor([[0.4300, 0.1500]])`.
//!
//! tch's own `Display` writes the values and then a second line with the shape and kind
//! (`Tensor[[1, 2], Float]`), which a learner comparing with the book reads as noise. [`Show`]
//! keeps tch's number formatting (4 decimals, aligned columns, `...` past 1000 elements, as
//! PyTorch does) and frames it as PyTorch does: `tensor(` ... `)`, continuation lines indented
//! under the first value, and the data type or device named only when they are not the defaults
//! (`dtype=torch.float64`, `device='cuda:0'`). A tensor that tracks gradients says
//! `requires_grad=True` (PyTorch names the backward function of a computed tensor instead,
//! `grad_fn=<MulBackward0>`, which libtorch does not hand to tch).
//!
//! ```
//! use llm_from_scratch::Show;
//! use tch::Tensor;
//! let t = Tensor::from_slice2(&[[1i64, 2], [3, 4]]);
//! assert_eq!(t.show().to_string(), "tensor([[1, 2],\n        [3, 4]])");
//! assert_eq!(Tensor::from(0.5f64).show().to_string(), "tensor(0.5000, dtype=torch.float64)");
//! ```

use std::fmt;

use tch::{Device, Kind, Tensor};

/// `t.show()`: a tensor that prints as PyTorch prints it (see the module's documentation).
pub trait Show {
    /// A view of the tensor whose `Display` and `Debug` print `tensor([...])`; a notebook cell
    /// ending in `x.show()` shows it.
    fn show(&self) -> Shown;
}

impl Show for Tensor {
    fn show(&self) -> Shown {
        Shown(self.shallow_clone())
    }
}

/// A tensor, printed as PyTorch prints it (made by [`Show::show`]).
pub struct Shown(Tensor);

/// `tensor(`: the continuation lines are indented by its width, so the columns line up.
const OPEN: &str = "tensor(";

/// PyTorch's name of a kind; `None` for the kinds it does not name when printing (its defaults:
/// `float32`, `int64` and `bool`).
fn dtype_name(kind: Kind) -> Option<&'static str> {
    Some(match kind {
        Kind::Float | Kind::Int64 | Kind::Bool => return None,
        Kind::Double => "float64",
        Kind::Half => "float16",
        Kind::BFloat16 => "bfloat16",
        Kind::Int => "int32",
        Kind::Int16 => "int16",
        Kind::Int8 => "int8",
        Kind::Uint8 => "uint8",
        Kind::ComplexFloat => "complex64",
        Kind::ComplexDouble => "complex128",
        _ => "other",
    })
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.0;
        if !t.defined() {
            return write!(f, "tensor(undefined)");
        }
        // tch writes the values, a newline, then its `Tensor[[..], Kind]` line: keep the values.
        let printed = format!("{t}");
        let values = printed.rsplit_once('\n').map_or(printed.as_str(), |(values, _trailer)| values);
        // A 0-d tensor: tch writes `[1]`, PyTorch `tensor(1)`.
        let values = if t.dim() == 0 {
            values.trim().trim_start_matches('[').trim_end_matches(']')
        } else {
            values
        };
        let values = pytorch_exponents(values);
        write!(f, "{OPEN}")?;
        for (i, line) in values.lines().enumerate() {
            if i > 0 {
                writeln!(f)?;
                if !line.is_empty() {
                    write!(f, "{:width$}", "", width = OPEN.len())?;
                }
            }
            write!(f, "{line}")?;
            // PyTorch separates blocks of a 3-d (4-d, ...) tensor by blank lines: one fewer than
            // the brackets the line closes (`]],` ends a matrix: one blank line).
            let closed = line.trim_end_matches(',').chars().rev().take_while(|&c| c == ']').count();
            if line.ends_with(',') && closed > 1 {
                write!(f, "{}", "\n".repeat(closed - 1))?;
            }
        }
        if let Some(name) = dtype_name(t.kind()) {
            write!(f, ", dtype=torch.{name}")?;
        }
        match t.device() {
            Device::Cpu => {}
            Device::Cuda(i) => write!(f, ", device='cuda:{i}'")?,
            Device::Mps => write!(f, ", device='mps:0'")?,
            Device::Vulkan => write!(f, ", device='vulkan'")?,
        }
        if t.requires_grad() {
            write!(f, ", requires_grad=True")?;
        }
        write!(f, ")")
    }
}

/// Exponents as PyTorch writes them: a sign and at least two digits (`9.9911e-01`, `1.0000e+00`),
/// where tch writes Rust's `9.9911e-1` and `1.0000e0`.
fn pytorch_exponents(values: &str) -> String {
    let mut out = String::with_capacity(values.len() + 8);
    let mut chars = values.char_indices().peekable();
    let mut prev_digit = false;
    while let Some((_, c)) = chars.next() {
        if c == 'e' && prev_digit {
            let negative = chars.next_if(|&(_, c)| c == '-').is_some();
            let mut digits = String::new();
            while let Some((_, d)) = chars.next_if(|&(_, d)| d.is_ascii_digit()) {
                digits.push(d);
            }
            if !digits.is_empty() {
                out.push_str(&format!("e{}{digits:0>2}", if negative { '-' } else { '+' }));
                prev_digit = true;
                continue;
            }
            out.push('e');
            if negative {
                out.push('-');
            }
        } else {
            out.push(c);
        }
        prev_digit = c.is_ascii_digit() || (c == '.' && prev_digit);
    }
    out
}

impl fmt::Debug for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_pytorch() {
        let t = Tensor::from_slice(&[1i64, 2, 3]);
        assert_eq!(t.show().to_string(), "tensor([1, 2, 3])");
        let t = Tensor::from_slice(&[1i64, 2, 3, 4, 5, 6, 7, 8]).view([2, 2, 2]);
        assert_eq!(
            t.show().to_string(),
            "tensor([[[1, 2],\n         [3, 4]],\n\n        [[5, 6],\n         [7, 8]]])"
        );
        let t = Tensor::from_slice(&[0.1f32, -2.5]);
        assert_eq!(t.show().to_string(), "tensor([ 0.1000, -2.5000])");
        assert_eq!(Tensor::from(7i64).show().to_string(), "tensor(7)");
        assert_eq!(Tensor::from_slice(&[1i32]).show().to_string(), "tensor([1], dtype=torch.int32)");
        let w = Tensor::from_slice(&[1.0f32]).set_requires_grad(true);
        assert_eq!(format!("{:?}", w.show()), "tensor([1.], requires_grad=True)");
        assert!(!Tensor::zeros([40, 40], (Kind::Float, Device::Cpu)).show().to_string().contains("Tensor["));
        // Scientific notation (values far apart): PyTorch's two-digit, signed exponents.
        let t = Tensor::from_slice(&[1e-5f32, 1.0, 123456.0]);
        let shown = t.show().to_string();
        assert!(shown.contains("e-05") && shown.contains("e+00") && shown.contains("e+05"), "{shown}");
        assert_eq!(pytorch_exponents("[9.9911e-1, 1.0000e0, 2.5e12]"), "[9.9911e-01, 1.0000e+00, 2.5e+12]");
    }
}
