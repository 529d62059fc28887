//! Chapter 4, "Implementing a GPT model from scratch to generate text".
//!
//! | book section | here |
//! |---|---|
//! | 4.2 layer normalization | [`LayerNorm`] (`scale`, `shift`, biased variance, eps 1e-5) |
//! | 4.3 GELU and the feed-forward network | [`Gelu`] (tanh approximation), [`FeedForward`] |
//! | 4.4 shortcut connections | [`ExampleDeepNeuralNetwork`] |
//! | 4.5 the transformer block | [`TransformerBlock`] (pre-norm) |
//! | 4.6 the GPT model; parameter counts and size | [`GptModel`], [`num_parameters`], [`num_parameters_under`], [`crate::nn::config::size_mb`] |
//! | 4.7 generating text | [`generate_text_simple`] (greedy) |
//! | 5.4 saving and loading weights (used by later chapters) | [`save_safetensors`], [`load_safetensors`] |
//!
//! Every parameter is registered under the book's state-dict key (`tok_emb.weight`,
//! `trf_blocks.0.att.W_query.weight`, `trf_blocks.0.ff.layers.0.weight`,
//! `trf_blocks.0.norm1.scale`, `out_head.weight`, ...), and drawn in PyTorch's creation order
//! with PyTorch's distributions, so `set_seed(123)` gives the book's model bit for bit.

use std::collections::HashMap;
use std::path::Path;

use tch::nn::{self, Init, Module, ModuleT};
use tch::{Device, Kind, Tensor};

use crate::nn::attention::{AttentionImpl, MultiHeadAttention};
use crate::nn::config::GptConfig;
use crate::nn::kv_cache::{next_token_logits, CachedLm, KvCache};
use crate::error::{Error, Result};
use crate::nn::layers::{Dropout, Embedding, Linear};

/// Layer normalization (book's `LayerNorm`, 4.2): normalise the last dimension to mean 0 and
/// (biased) variance 1, then scale and shift: `scale * (x - mean) / sqrt(var + eps) + shift`.
///
/// # Shapes
/// - `scale`, `shift`: `[emb_dim]` (initialised to ones and zeros)
/// - input `[..., emb_dim]` → output `[..., emb_dim]`
#[derive(Debug)]
pub struct LayerNorm {
    pub eps: f64,
    pub scale: Tensor,
    pub shift: Tensor,
}

impl LayerNorm {
    /// Create `scale` (ones) and `shift` (zeros) under `vs`; `eps` is 1e-5 as in the book.
    pub fn new(vs: &nn::Path, emb_dim: i64) -> Self {
        let scale = vs.var("scale", &[emb_dim], Init::Const(1.0));
        let shift = vs.var("shift", &[emb_dim], Init::Const(0.0));
        Self { eps: 1e-5, scale, shift }
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Tensor {
        let mean = x.mean_dim(-1, true, None::<Kind>); // [..., 1]
        let var = x.var_dim(-1, false, true); // [..., 1], unbiased = False as in the book
        if grad_enabled() {
            let norm_x = (x - mean) / (var + self.eps).sqrt();
            return &self.scale * norm_x + &self.shift;
        }
        // The same operations in the same order, reusing one buffer (see [`grad_enabled`]).
        let mut norm_x = x - mean;
        norm_x /= (var + self.eps).sqrt();
        norm_x *= &self.scale;
        norm_x += &self.shift;
        norm_x
    }
}

/// Whether autograd is on (PyTorch's `torch.is_grad_enabled()`), read from libtorch.
///
/// When it is off (inside `tch::no_grad`, as in generation and evaluation), `LayerNorm`, `Gelu`
/// and the shortcut additions compute the book's operations in the same order but in place, into
/// one buffer instead of a new tensor per step: the numbers are bit for bit the same (tested),
/// with fewer allocations and less memory traffic. When it is on, they use the book's
/// out-of-place expressions, because the backward pass needs some of the intermediates.
pub fn grad_enabled() -> bool {
    // tch does not expose GradMode::is_enabled; at_grad_set_enabled sets the thread-local mode
    // and returns the previous one, which we restore at once.
    // SAFETY: plain FFI calls on a thread-local flag; no pointers are involved.
    unsafe {
        let previous = torch_sys::at_grad_set_enabled(1);
        torch_sys::at_grad_set_enabled(previous);
        previous != 0
    }
}

/// The GELU activation with the tanh approximation GPT-2 used (book's `GELU`, 4.3):
/// `0.5 x (1 + tanh(sqrt(2/π) (x + 0.044715 x³)))`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gelu;

impl Module for Gelu {
    fn forward(&self, x: &Tensor) -> Tensor {
        // The book computes sqrt(2/π) as a float32 tensor: round 2/π to f32 first, as it does.
        let sqrt_2_over_pi = ((2.0 / std::f64::consts::PI) as f32).sqrt() as f64;
        if grad_enabled() {
            let inner = (x + x.pow_tensor_scalar(3) * 0.044715) * sqrt_2_over_pi;
            return x * 0.5 * (inner.tanh() + 1.0);
        }
        // The same steps in place (see [`grad_enabled`]): two buffers instead of eight.
        let mut inner = x.pow_tensor_scalar(3);
        inner *= 0.044715;
        inner += x;
        inner *= sqrt_2_over_pi;
        let _ = inner.tanh_();
        inner += 1.0;
        let mut out = x * 0.5;
        out *= inner;
        out
    }
}

/// The feed-forward network of a transformer block (book's `FeedForward`, 4.3):
/// `Linear(emb_dim, 4 emb_dim)`, GELU, `Linear(4 emb_dim, emb_dim)`.
///
/// The book holds the three in `nn.Sequential` named `layers`, so the linear layers are
/// registered as `layers.0` ([`fc1`](Self::fc1)) and `layers.2` ([`fc2`](Self::fc2)); the GELU
/// (index 1) has no parameters.
///
/// # Shapes
/// input `[..., emb_dim]` → hidden `[..., 4 emb_dim]` → output `[..., emb_dim]`
#[derive(Debug)]
pub struct FeedForward {
    /// `layers.0`: `Linear(emb_dim, 4 emb_dim)`.
    pub fc1: Linear,
    /// `layers.1`: the activation.
    pub gelu: Gelu,
    /// `layers.2`: `Linear(4 emb_dim, emb_dim)`.
    pub fc2: Linear,
}

impl FeedForward {
    /// Create `layers.0` then `layers.2` under `vs`.
    pub fn new(vs: &nn::Path, cfg: &GptConfig) -> Self {
        let layers = vs / "layers";
        let fc1 = Linear::new(&(&layers / 0), cfg.emb_dim, 4 * cfg.emb_dim, true);
        let fc2 = Linear::new(&(&layers / 2), 4 * cfg.emb_dim, cfg.emb_dim, true);
        Self { fc1, gelu: Gelu, fc2 }
    }
}

impl Module for FeedForward {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.fc2.forward(&self.gelu.forward(&self.fc1.forward(x)))
    }
}

/// The book's `ExampleDeepNeuralNetwork` (4.4): five `Linear` + [`Gelu`] layers, each output
/// added to its input (a shortcut connection) when `use_shortcut` is true and the shapes agree.
/// It shows how shortcuts keep the gradients of the first layers from vanishing.
///
/// # Shapes
/// input `[batch, layer_sizes[0]]` → output `[batch, layer_sizes[5]]`
#[derive(Debug)]
pub struct ExampleDeepNeuralNetwork {
    pub use_shortcut: bool,
    /// `layers.{i}.0`: the linear part of layer `i` (`layers.{i}.1` is the GELU).
    pub layers: Vec<Linear>,
}

impl ExampleDeepNeuralNetwork {
    /// Create the five layers `layer_sizes[i] -> layer_sizes[i + 1]` under `vs`.
    ///
    /// Panics unless `layer_sizes` has 6 entries, as in the book.
    pub fn new(vs: &nn::Path, layer_sizes: &[i64], use_shortcut: bool) -> Self {
        assert_eq!(layer_sizes.len(), 6, "the book's network has 5 layers: give 6 sizes");
        let layers = (0..5)
            .map(|i| Linear::new(&(vs / "layers" / i / 0), layer_sizes[i], layer_sizes[i + 1], true))
            .collect();
        Self { use_shortcut, layers }
    }
}

impl Module for ExampleDeepNeuralNetwork {
    fn forward(&self, x: &Tensor) -> Tensor {
        let mut x = x.shallow_clone();
        for layer in &self.layers {
            let layer_output = Gelu.forward(&layer.forward(&x));
            x = if self.use_shortcut && x.size() == layer_output.size() { x + layer_output } else { layer_output };
        }
        x
    }
}

/// A pre-norm transformer block (book's `TransformerBlock`, 4.5):
/// `x = x + drop(att(norm1(x)))`, then `x = x + drop(ff(norm2(x)))`.
///
/// # Shapes
/// input `[batch, num_tokens, emb_dim]` → output `[batch, num_tokens, emb_dim]`
#[derive(Debug)]
pub struct TransformerBlock {
    pub att: MultiHeadAttention,
    pub ff: FeedForward,
    pub norm1: LayerNorm,
    pub norm2: LayerNorm,
    pub drop_shortcut: Dropout,
}

impl TransformerBlock {
    /// Create `att`, `ff`, `norm1`, `norm2` (the book's order) under `vs`.
    pub fn new(vs: &nn::Path, cfg: &GptConfig) -> Self {
        Self {
            att: MultiHeadAttention::from_config(&(vs / "att"), cfg),
            ff: FeedForward::new(&(vs / "ff"), cfg),
            norm1: LayerNorm::new(&(vs / "norm1"), cfg.emb_dim),
            norm2: LayerNorm::new(&(vs / "norm2"), cfg.emb_dim),
            drop_shortcut: Dropout::new(cfg.drop_rate),
        }
    }
}

impl TransformerBlock {
    /// The block's output at the last position only: the last row of `forward_t(x, train)`,
    /// computing only what that row needs. The attention reads every position's keys and values
    /// but computes the last query only ([`MultiHeadAttention::forward_last`], either
    /// `attn_impl`); the shortcuts, `norm2` and the feed-forward network work per position, so
    /// they run on the last one. Chapter 6's classifier needs only the last token's logits.
    ///
    /// # Shapes
    /// `x: [batch, num_tokens, emb_dim]` → `[batch, emb_dim]`
    pub fn forward_last(&self, x: &Tensor, train: bool) -> Tensor {
        let h = self.att.forward_last(&self.norm1.forward(x), train); // [batch, emb_dim]
        let x = add_shortcut(self.drop_shortcut.forward_t(&h, train), &x.select(1, -1)); // [batch, emb_dim]
        let h = self.ff.forward(&self.norm2.forward(&x));
        add_shortcut(self.drop_shortcut.forward_t(&h, train), &x)
    }
}

impl TransformerBlock {
    /// The block on new positions that continue those in `cache` (layer `layer` of it), in eval
    /// mode: [`MultiHeadAttention::forward_cached`] in place of the attention, the rest per
    /// position as in `forward_t`.
    ///
    /// # Shapes
    /// `x: [batch, n_new, emb_dim]` → `[batch, n_new, emb_dim]`
    pub fn forward_cached(&self, x: &Tensor, cache: &mut KvCache, layer: usize) -> Tensor {
        let h = self.att.forward_cached(&self.norm1.forward(x), cache, layer);
        let x = add_shortcut(h, x);
        let h = self.ff.forward(&self.norm2.forward(&x));
        add_shortcut(h, &x)
    }
}

impl ModuleT for TransformerBlock {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let h = self.att.forward_t(&self.norm1.forward(x), train);
        let x = add_shortcut(self.drop_shortcut.forward_t(&h, train), x);
        let h = self.ff.forward(&self.norm2.forward(&x));
        add_shortcut(self.drop_shortcut.forward_t(&h, train), &x)
    }
}

/// `h + shortcut`, in place into `h` when autograd is off (see [`grad_enabled`]).
fn add_shortcut(mut h: Tensor, shortcut: &Tensor) -> Tensor {
    if grad_enabled() {
        return h + shortcut;
    }
    h += shortcut;
    h
}

/// The GPT model (book's `GPTModel`, 4.6): token and positional embeddings, dropout,
/// `n_layers` transformer blocks, a final `LayerNorm` and a linear output head (no bias) that
/// gives one logit per vocabulary entry.
///
/// ```no_run
/// use llm_from_scratch::ch04::{GptConfig, GptModel};
/// use tch::nn::ModuleT;
/// let vs = tch::nn::VarStore::new(tch::Device::Cpu);
/// let model = GptModel::new(&vs.root(), &GptConfig::tiny());
/// let batch = tch::Tensor::from_slice2(&[[6109i64, 3626, 6100, 345], [6109, 1110, 6622, 257]]);
/// let logits = model.forward_t(&batch, false); // [2, 4, 50257]
/// ```
///
/// # Shapes
/// input ids `[batch, num_tokens]` (int64, `num_tokens <= context_length`) →
/// logits `[batch, num_tokens, vocab_size]`
#[derive(Debug)]
pub struct GptModel {
    /// The sizes the model was built with.
    pub cfg: GptConfig,
    pub tok_emb: Embedding,
    pub pos_emb: Embedding,
    pub drop_emb: Dropout,
    /// The blocks, registered as `trf_blocks.0`, `trf_blocks.1`, ...
    pub trf_blocks: Vec<TransformerBlock>,
    pub final_norm: LayerNorm,
    /// `Linear(emb_dim, vocab_size, bias=False)`; chapter 6 replaces it with a 2-class head.
    pub out_head: Linear,
}

impl GptModel {
    /// Create every parameter under `vs` in PyTorch's order: `tok_emb`, `pos_emb`, then per
    /// block `W_query`, `W_key`, `W_value`, `out_proj`, `ff.layers.0`, `ff.layers.2` (norms are
    /// constants), then `final_norm` and `out_head`.
    ///
    /// Panics if `cfg` is invalid (see [`GptConfig::validate`]).
    pub fn new(vs: &nn::Path, cfg: &GptConfig) -> Self {
        if let Err(e) = cfg.validate() {
            panic!("GptModel::new: {e}");
        }
        let tok_emb = Embedding::new(&(vs / "tok_emb"), cfg.vocab_size, cfg.emb_dim);
        let pos_emb = Embedding::new(&(vs / "pos_emb"), cfg.context_length, cfg.emb_dim);
        let blocks = vs / "trf_blocks";
        let trf_blocks = (0..cfg.n_layers).map(|i| TransformerBlock::new(&(&blocks / i), cfg)).collect();
        let final_norm = LayerNorm::new(&(vs / "final_norm"), cfg.emb_dim);
        let out_head = Linear::new(&(vs / "out_head"), cfg.emb_dim, cfg.vocab_size, false);
        Self { cfg: cfg.clone(), tok_emb, pos_emb, drop_emb: Dropout::new(cfg.drop_rate), trf_blocks, final_norm, out_head }
    }

    /// Use `attn_impl` (explicit or fused SDPA) in every block's attention.
    pub fn set_attention_impl(&mut self, attn_impl: AttentionImpl) {
        for block in &mut self.trf_blocks {
            block.att.attn_impl = attn_impl;
        }
    }

    /// The device of the model's parameters.
    pub fn device(&self) -> Device {
        self.tok_emb.weight.device()
    }

    /// The input of the first transformer block: token plus positional embeddings, then
    /// dropout (`drop_emb(tok_emb(in_idx) + pos_emb(arange(seq_len)))`). Chapter 6 runs it apart
    /// from the blocks, so that frozen layers run without recording gradients.
    ///
    /// # Shapes
    /// input ids `[batch, seq_len]` (int64) → `[batch, seq_len, emb_dim]`
    pub fn embed(&self, in_idx: &Tensor, train: bool) -> Tensor {
        self.embed_from(in_idx, 0, train)
    }

    /// [`Self::embed`] for tokens at positions `start..start + seq_len`: with a KV cache, the
    /// new tokens continue the `start` positions cached.
    ///
    /// # Shapes
    /// input ids `[batch, seq_len]` (int64) → `[batch, seq_len, emb_dim]`
    pub fn embed_from(&self, in_idx: &Tensor, start: i64, train: bool) -> Tensor {
        let seq_len = in_idx.size()[1];
        let tok_embeds = self.tok_emb.forward(in_idx); // [batch, seq_len, emb_dim]
        let positions = Tensor::arange_start(start, start + seq_len, (Kind::Int64, in_idx.device()));
        let pos_embeds = self.pos_emb.forward(&positions); // [seq_len, emb_dim]
        self.drop_emb.forward_t(&add_shortcut(tok_embeds, &pos_embeds), train)
    }
}

impl ModuleT for GptModel {
    fn forward_t(&self, in_idx: &Tensor, train: bool) -> Tensor {
        let (_batch, seq_len) = in_idx.size2().expect("GptModel input must be [batch, num_tokens] token ids");
        assert!(
            seq_len <= self.cfg.context_length,
            "GptModel: {seq_len} tokens exceed the context length {}",
            self.cfg.context_length
        );
        let mut x = self.embed(in_idx, train); // [batch, seq_len, emb_dim]
        for block in &self.trf_blocks {
            x = block.forward_t(&x, train);
        }
        self.out_head.forward(&self.final_norm.forward(&x)) // [batch, seq_len, vocab_size]
    }
}

/// The book's bonus KV cache for chapter 4: the new tokens' positions continue from
/// `cache.len()` (the positional embedding's offset), every block appends its keys and values to
/// its layer of the cache, and only the new tokens are computed. Eval mode, without gradients.
impl CachedLm for GptModel {
    fn forward_cached(&self, ids: &Tensor, cache: &mut KvCache) -> Tensor {
        let (_batch, n_new) = ids.size2().expect("GptModel input must be [batch, num_tokens] token ids");
        assert_eq!(cache.num_layers(), self.trf_blocks.len(), "GptModel: a KV cache of another model");
        let start = cache.len();
        assert!(
            start + n_new <= self.cfg.context_length,
            "GptModel: {start} cached + {n_new} new positions exceed the context length {}",
            self.cfg.context_length
        );
        let _no_grad = tch::no_grad_guard();
        let mut x = self.embed_from(ids, start, false); // [batch, n_new, emb_dim]
        for (layer, block) in self.trf_blocks.iter().enumerate() {
            x = block.forward_cached(&x, cache, layer);
        }
        cache.advance(n_new);
        self.out_head.forward(&self.final_norm.forward(&x)) // [batch, n_new, vocab_size]
    }

    fn new_cache(&self) -> KvCache {
        KvCache::new(self.trf_blocks.len())
    }

    fn context_length(&self) -> i64 {
        self.cfg.context_length
    }
}

/// Set every dropout rate of `model` (and its config's `drop_rate`) to `drop_rate`: the
/// embeddings', the attention weights' and the shortcuts'. Chapters 6 and 7 finetune with the
/// book's `BASE_CONFIG`, whose `drop_rate` is 0.0, while a model built from GPT-2's
/// `config.json` (or a chapter 5 checkpoint) has 0.1.
pub fn set_drop_rate(model: &mut GptModel, drop_rate: f64) {
    model.cfg.drop_rate = drop_rate;
    model.drop_emb.p = drop_rate;
    for block in &mut model.trf_blocks {
        block.att.dropout.p = drop_rate;
        block.drop_shortcut.p = drop_rate;
    }
}

/// Greedy generation (book's `generate_text_simple`, 4.7): `max_new_tokens` times, crop the
/// ids to the last `context_size`, run the model in eval mode without gradients, take the
/// softmax of the last position's logits and append its argmax.
///
/// # Shapes
/// `idx: [batch, num_tokens]` (int64) → `[batch, num_tokens + max_new_tokens]`
pub fn generate_text_simple<M: ModuleT + ?Sized>(model: &M, idx: &Tensor, max_new_tokens: i64, context_size: i64) -> Tensor {
    let _no_grad = tch::no_grad_guard();
    let mut idx = idx.shallow_clone();
    for _ in 0..max_new_tokens {
        let num_tokens = idx.size()[1];
        let start = (num_tokens - context_size).max(0);
        let idx_cond = idx.narrow(1, start, num_tokens - start); // [batch, <= context_size]
        let logits = model.forward_t(&idx_cond, false); // [batch, n, vocab_size]
        let logits = logits.select(1, -1); // [batch, vocab_size]
        let probas = logits.softmax(-1, None::<Kind>);
        let idx_next = probas.argmax(-1, true); // [batch, 1]
        idx = Tensor::cat(&[&idx, &idx_next], 1); // [batch, num_tokens + 1]
    }
    idx
}

/// [`generate_text_simple`] with a KV cache (the book's `generate_text_simple_cached`): the
/// prompt is fed once, then only each new token ([`next_token_logits`]), so the ids are the same
/// as without the cache, including past the context length (the window the uncached loop crops
/// to). `cache` is reset first; afterwards [`KvCache::positions_computed`] has grown by
/// `num_tokens + max_new_tokens - 1` while the sequence fits the context.
///
/// # Shapes
/// `idx: [batch, num_tokens]` (int64) → `[batch, num_tokens + max_new_tokens]`
pub fn generate_text_simple_cached<M: CachedLm + ?Sized>(model: &M, cache: &mut KvCache, idx: &Tensor, max_new_tokens: i64) -> Tensor {
    let _no_grad = tch::no_grad_guard();
    cache.reset();
    let mut idx = idx.shallow_clone();
    for _ in 0..max_new_tokens {
        let logits = next_token_logits(model, cache, &idx); // [batch, vocab_size]
        let probas = logits.softmax(-1, None::<Kind>);
        let idx_next = probas.argmax(-1, true); // [batch, 1]
        idx = Tensor::cat(&[&idx, &idx_next], 1); // [batch, num_tokens + 1]
    }
    idx
}

/// Number of parameters (elements) in the var store: the book's
/// `sum(p.numel() for p in model.parameters())`.
pub fn num_parameters(vs: &nn::VarStore) -> i64 {
    vs.variables().values().map(|t| t.numel() as i64).sum()
}

/// Number of trainable parameters: those that require a gradient (chapter 6 freezes some).
pub fn num_trainable_parameters(vs: &nn::VarStore) -> i64 {
    vs.trainable_variables().iter().filter(|t| t.requires_grad()).map(|t| t.numel() as i64).sum()
}

/// Number of parameters whose name starts with `prefix` followed by `.` (one module):
/// `num_parameters_under(&vs, "trf_blocks.0.ff")` is 4,722,432 for GPT-2 small.
pub fn num_parameters_under(vs: &nn::VarStore, prefix: &str) -> i64 {
    let dotted = format!("{prefix}.");
    vs.variables().iter().filter(|(name, _)| name.starts_with(&dotted)).map(|(_, t)| t.numel() as i64).sum()
}

/// Whether a weight-file key is a PyTorch buffer rather than a parameter: the book registers
/// the causal mask as a buffer (`trf_blocks.0.att.mask`), so its `state_dict` holds it. The
/// mask is rebuilt from the config here, so loading skips such keys.
fn is_buffer_key(name: &str) -> bool {
    name == "mask" || name.ends_with(".mask")
}

/// Save every variable of `vs` to a safetensors file under its name (the book's state-dict
/// keys), sorted by name. The causal-mask buffers are not written: load the file in PyTorch
/// with `model.load_state_dict(safetensors.torch.load_file(path), strict=False)` (only the
/// `*.mask` keys are then missing).
pub fn save_safetensors(vs: &nn::VarStore, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    crate::nn::tensor_file::write_safetensors(path, &named, &Default::default())
}

/// Load a safetensors file into the variables of `vs`, key by key (strict, like PyTorch's
/// `load_state_dict`): every variable must be in the file with the same shape, and the file
/// may hold no other tensors except `*.mask` buffers. Values are converted to each variable's
/// kind and device. Errors name the file, the tensor and both shapes.
pub fn load_safetensors(vs: &nn::VarStore, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let file: HashMap<String, Tensor> = crate::nn::tensor_file::SafetensorsFile::open(path)?.read_all()?.into_iter().collect();
    copy_named_into(vs, &file, path)
}

/// Copy `tensors` into the variables of `vs` by name, strictly (see [`load_safetensors`]):
/// every variable must be there with its shape, and nothing else may be but `*.mask` buffers.
/// `source` names the file in errors. Nothing is copied unless everything matches.
pub fn copy_named_into(vs: &nn::VarStore, tensors: &HashMap<String, Tensor>, source: &Path) -> Result<()> {
    let vars = vs.variables();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for name in &names {
        let src = tensors
            .get(*name)
            .ok_or_else(|| Error::MissingTensor { name: name.to_string(), path: source.into() })?;
        let expected = vars[*name].size();
        if src.size() != expected {
            return Err(Error::ShapeMismatch { name: name.to_string(), expected, found: src.size() });
        }
    }
    let mut extra: Vec<&String> = tensors.keys().filter(|k| !vars.contains_key(*k) && !is_buffer_key(k)).collect();
    extra.sort();
    if let Some(name) = extra.first() {
        return Err(Error::UnexpectedTensor { name: name.to_string(), path: source.into() });
    }
    tch::no_grad(|| -> Result<()> {
        for name in names {
            let mut var = vars[name].shallow_clone();
            var.f_copy_(&tensors[name])?;
        }
        Ok(())
    })
}

// Section 6.5: freezing parameters and replacing the output head (used by chapter 6 and appendix E).

/// Set `requires_grad` of every variable of `vs` named `prefix` or `prefix.<...>` (all of them
/// for an empty prefix): the book's `for param in model.parameters(): param.requires_grad =
/// False` and `for param in model.trf_blocks[-1].parameters(): param.requires_grad = True`.
/// Returns how many tensors it set. An optimizer skips the frozen ones (no gradient).
pub fn set_requires_grad_under(vs: &nn::VarStore, prefix: &str, requires_grad: bool) -> usize {
    let dotted = format!("{prefix}.");
    let mut n = 0;
    for (name, t) in vs.variables() {
        if prefix.is_empty() || name == prefix || name.starts_with(&dotted) {
            let _ = t.set_requires_grad(requires_grad);
            n += 1;
        }
    }
    n
}

/// Section 6.5: replace the model's `out_head` (`Linear(emb_dim, vocab_size, bias=False)`) with
/// a new, trainable `Linear(emb_dim, num_classes)` with a bias, as the book's
/// `model.out_head = torch.nn.Linear(in_features=768, out_features=2)` does: the old head's
/// variables leave `vs`, the new ones are drawn as `nn.Linear` draws them (seed first for the
/// book's values) on `vs`'s device. `model` must have been built under `vs.root()`. Build the
/// optimizer after this: it takes the variables `vs` holds when it is created.
pub fn replace_out_head(model: &mut GptModel, vs: &nn::VarStore, num_classes: i64) {
    {
        let mut vars = vs.variables_.lock().expect("the var store's lock");
        let old: Vec<String> = vars.named_variables.keys().filter(|k| k.starts_with("out_head.")).cloned().collect();
        for name in old {
            if let Some(t) = vars.named_variables.remove(&name) {
                vars.trainable_variables.retain(|v| v.tensor.data_ptr() != t.data_ptr());
            }
        }
    }
    model.out_head = Linear::new(&(vs.root() / "out_head"), model.cfg.emb_dim, num_classes, true);
}

fn linear_requires_grad(l: &Linear) -> bool {
    l.weight.requires_grad()
        || l.bias.as_ref().is_some_and(Tensor::requires_grad)
        || l.lora.as_ref().is_some_and(crate::nn::layers::LoRALayer::requires_grad)
}

/// Whether any parameter of `block` requires a gradient.
pub fn block_requires_grad(block: &TransformerBlock) -> bool {
    let att = &block.att;
    [&att.w_query, &att.w_key, &att.w_value, &att.out_proj, &block.ff.fc1, &block.ff.fc2].into_iter().any(linear_requires_grad)
        || [&block.norm1, &block.norm2].into_iter().any(|n| n.scale.requires_grad() || n.shift.requires_grad())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::device::{rng_lock, set_seed};

    fn small_cfg() -> GptConfig {
        GptConfig { vocab_size: 97, context_length: 16, emb_dim: 32, n_heads: 4, n_layers: 2, drop_rate: 0.1, qkv_bias: false }
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        f64::try_from((a - b).abs().max()).unwrap()
    }

    #[test]
    fn layer_norm_gives_mean_zero_variance_one() {
        // Book 4.2: LayerNorm(emb_dim=5) on torch.randn(2, 5) -> mean ~0, variance ~1.
        let vs = nn::VarStore::new(Device::Cpu);
        let ln = LayerNorm::new(&vs.root(), 5);
        let x = Tensor::from_slice(&[0.2f32, 3.0, -1.5, 0.7, 2.2, -4.0, 1.0, 0.5, 0.25, 9.0]).view([2, 5]); // [2, 5]
        let out = ln.forward(&x);
        let mean = out.mean_dim(-1, false, None::<Kind>);
        let var = out.var_dim(-1, false, false);
        assert!(f64::try_from(mean.abs().max()).unwrap() < 1e-6, "mean {mean}");
        assert!(max_diff(&var, &Tensor::ones([2], (Kind::Float, Device::Cpu))) < 1e-4, "variance {var}");
        // Against libtorch's fused layer_norm (same formula).
        let fused = x.layer_norm([5], Some(&ln.scale), Some(&ln.shift), 1e-5, false);
        assert!(max_diff(&out, &fused) < 1e-6, "book LayerNorm differs from F.layer_norm");
    }

    #[test]
    fn gelu_is_the_tanh_approximation() {
        let x = Tensor::linspace(-3.0, 3.0, 61, (Kind::Float, Device::Cpu));
        let fused = x.gelu("tanh");
        assert!(max_diff(&Gelu.forward(&x), &fused) < 1e-6, "GELU differs from F.gelu(approximate='tanh')");
        let at = |v: f32| f32::try_from(Gelu.forward(&Tensor::from_slice(&[v]))).unwrap();
        assert_eq!(at(0.0), 0.0);
        assert!((at(1.0) - 0.8412).abs() < 1e-4, "GELU(1) = {}", at(1.0));
    }

    #[test]
    fn shortcut_connections_keep_gradients_large_as_in_the_book() {
        // Book 4.4: seed 123, layer_sizes [3, 3, 3, 3, 3, 1], input [[1, 0, -1]], MSE to 0; the
        // mean absolute gradient of each layer's weight.
        let want_plain = [0.00020173584925942123, 0.00012011159560643137, 0.0007152040489017963, 0.0013988736318424344, 0.005049645435065031];
        let want_shortcut = [0.22169792652130127, 0.20694108307361603, 0.3289699852466583, 0.2665732204914093, 1.3258541822433472];
        let _rng = rng_lock();
        for (use_shortcut, want) in [(false, want_plain), (true, want_shortcut)] {
            set_seed(123);
            let vs = nn::VarStore::new(Device::Cpu);
            let model = ExampleDeepNeuralNetwork::new(&vs.root(), &[3, 3, 3, 3, 3, 1], use_shortcut);
            let x = Tensor::from_slice(&[1f32, 0., -1.]).view([1, 3]); // [1, 3]
            let target = Tensor::zeros([1, 1], (Kind::Float, Device::Cpu));
            model.forward(&x).mse_loss(&target, tch::Reduction::Mean).backward();
            for (i, (layer, want)) in model.layers.iter().zip(want).enumerate() {
                let got = f64::try_from(layer.weight.grad().abs().mean(Kind::Float)).unwrap();
                assert!((got - want).abs() < 1e-6 * want.max(1e-3), "shortcut {use_shortcut}, layers.{i}.0.weight: {got} vs {want}");
            }
            assert!(vs.variables().contains_key("layers.4.0.bias"));
        }
    }

    #[test]
    fn gpt_model_has_the_books_names_shapes_and_counts() {
        let _rng = rng_lock(); // creating parameters draws random numbers
        let cfg = small_cfg();
        let vs = nn::VarStore::new(Device::Cpu);
        let model = GptModel::new(&vs.root(), &cfg);
        assert_eq!(num_parameters(&vs), cfg.num_parameters(), "VarStore count equals the config's formula");
        assert_eq!(num_parameters_under(&vs, "trf_blocks.1.ff"), cfg.feed_forward_parameters());
        assert_eq!(num_parameters_under(&vs, "trf_blocks.0.att"), cfg.attention_parameters());
        let vars = vs.variables();
        for (name, shape) in [
            ("tok_emb.weight", vec![97, 32]),
            ("pos_emb.weight", vec![16, 32]),
            ("trf_blocks.0.att.W_query.weight", vec![32, 32]),
            ("trf_blocks.0.att.out_proj.bias", vec![32]),
            ("trf_blocks.1.ff.layers.0.weight", vec![128, 32]),
            ("trf_blocks.1.ff.layers.2.bias", vec![32]),
            ("trf_blocks.1.norm2.shift", vec![32]),
            ("final_norm.scale", vec![32]),
            ("out_head.weight", vec![97, 32]),
        ] {
            assert_eq!(vars.get(name).map(|t| t.size()), Some(shape), "{name}");
        }
        assert!(!vars.contains_key("out_head.bias") && !vars.contains_key("trf_blocks.0.att.W_key.bias"));
        let ids = Tensor::from_slice2(&[[1i64, 2, 3], [4, 5, 6]]);
        assert_eq!(model.forward_t(&ids, false).size(), [2, 3, 97]);
    }

    #[test]
    fn in_place_path_without_autograd_gives_the_same_bits() {
        let _rng = rng_lock();
        set_seed(4);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = GptModel::new(&vs.root(), &small_cfg());
        let ids = Tensor::from_slice2(&[[5i64, 9, 2, 7, 1, 3], [8, 8, 1, 0, 96, 4]]);
        assert!(grad_enabled(), "autograd is on by default");
        let recorded = model.forward_t(&ids, false);
        assert!(recorded.requires_grad(), "with trainable parameters autograd records");
        let in_place = tch::no_grad(|| {
            assert!(!grad_enabled(), "no_grad turns autograd off");
            model.forward_t(&ids, false)
        });
        assert!(grad_enabled(), "grad_enabled restores the mode it reads");
        assert!(!in_place.requires_grad());
        assert!(in_place.equal(&recorded), "no-grad (in-place) and recorded logits differ by {}", max_diff(&in_place, &recorded));
        let x = Tensor::linspace(-4.0, 4.0, 101, (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let gelu_recorded = Gelu.forward(&x);
        let gelu_in_place = tch::no_grad(|| Gelu.forward(&x));
        assert!(gelu_in_place.equal(&gelu_recorded), "GELU paths differ");
    }

    #[test]
    fn gradients_flow_to_every_parameter() {
        let _rng = rng_lock();
        set_seed(5);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = GptModel::new(&vs.root(), &small_cfg());
        let ids = Tensor::from_slice2(&[[5i64, 9, 2, 7, 1, 3]]);
        let targets = Tensor::from_slice2(&[[9i64, 2, 7, 1, 3, 4]]);
        let logits = model.forward_t(&ids, true); // [1, 6, 97]
        let loss = logits.view([-1, 97]).cross_entropy_for_logits(&targets.view([-1])); // [6, 97] vs [6]
        loss.backward();
        for (name, t) in vs.variables() {
            let g = t.grad();
            assert!(g.defined(), "'{name}' has no gradient");
            let norm = f64::try_from(g.norm()).unwrap();
            assert!(norm.is_finite() && norm > 0.0, "'{name}': gradient norm {norm}");
        }
    }

    #[test]
    fn dropout_acts_only_in_training_mode() {
        let _rng = rng_lock();
        set_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = GptModel::new(&vs.root(), &small_cfg());
        let ids = Tensor::from_slice2(&[[5i64, 9, 2, 7, 1]]);
        let eval_a = model.forward_t(&ids, false);
        let eval_b = model.forward_t(&ids, false);
        assert!(eval_a.equal(&eval_b), "eval mode is deterministic");
        let train = model.forward_t(&ids, true);
        assert!(max_diff(&train, &eval_a) > 1e-3, "train mode must apply dropout");
        // With every rate set to 0, training mode computes the same logits as eval mode.
        let vs0 = nn::VarStore::new(Device::Cpu);
        let no_drop = GptModel::new(&vs0.root(), &GptConfig { drop_rate: 0.0, ..small_cfg() });
        let (t, e) = (no_drop.forward_t(&ids, true), no_drop.forward_t(&ids, false));
        assert!(max_diff(&t, &e) < 1e-6, "drop_rate 0: train and eval differ by {}", max_diff(&t, &e));
    }

    #[test]
    fn causality_later_tokens_do_not_change_earlier_logits() {
        let _rng = rng_lock();
        set_seed(2);
        let vs = nn::VarStore::new(Device::Cpu);
        let mut model = GptModel::new(&vs.root(), &small_cfg());
        let a = Tensor::from_slice2(&[[5i64, 9, 2, 7, 1, 3, 8]]);
        let b = Tensor::from_slice2(&[[5i64, 9, 2, 7, 40, 60, 80]]);
        for attn_impl in [AttentionImpl::Explicit, AttentionImpl::Sdpa] {
            model.set_attention_impl(attn_impl);
            let (la, lb) = (model.forward_t(&a, false), model.forward_t(&b, false));
            let head = |l: &Tensor| l.narrow(1, 0, 4);
            assert!(max_diff(&head(&la), &head(&lb)) < 1e-6, "{attn_impl:?}: positions 0..=3 changed");
            assert!(max_diff(&la.narrow(1, 4, 1), &lb.narrow(1, 4, 1)) > 1e-3, "{attn_impl:?}: position 4 must change");
        }
    }

    #[test]
    fn forward_last_is_the_last_row_of_the_block() {
        let _rng = rng_lock();
        set_seed(6);
        let vs = nn::VarStore::new(Device::Cpu);
        let mut block = TransformerBlock::new(&vs.root(), &small_cfg());
        let x = Tensor::randn([2, 7, 32], (Kind::Float, Device::Cpu));
        for attn_impl in [AttentionImpl::Explicit, AttentionImpl::Sdpa] {
            block.att.attn_impl = attn_impl;
            let full = block.forward_t(&x, false).select(1, -1); // [2, 32]
            let last = block.forward_last(&x, false);
            assert_eq!(last.size(), [2, 32]);
            assert!(max_diff(&full, &last) < 1e-5, "{attn_impl:?}: forward_last differs by {}", max_diff(&full, &last));
            let in_place = tch::no_grad(|| block.forward_last(&x, false));
            assert!(max_diff(&in_place, &last) < 1e-6, "{attn_impl:?}: the no-grad path differs");
        }
    }

    #[test]
    fn generation_appends_greedy_tokens_and_crops_the_context() {
        let _rng = rng_lock();
        set_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = GptModel::new(&vs.root(), &small_cfg());
        let idx = Tensor::from_slice2(&[[1i64, 2, 3]]);
        let out = generate_text_simple(&model, &idx, 20, 16);
        assert_eq!(out.size(), [1, 23], "3 + 20 tokens, more than the context of 16");
        assert!(out.narrow(1, 0, 3).equal(&idx), "the prompt is kept");
        // The first new token is the argmax of the last position's logits.
        let first = model.forward_t(&idx, false).select(1, -1).argmax(-1, false);
        assert_eq!(i64::try_from(first).unwrap(), i64::try_from(out.get(0).get(3)).unwrap());
    }

    #[test]
    fn safetensors_round_trip_and_errors_name_the_tensor() {
        let _rng = rng_lock();
        let dir = std::env::temp_dir().join(format!("llm-fs-model-{}", std::process::id()));
        let path = dir.join("m.safetensors");
        let cfg = small_cfg();
        let vs = nn::VarStore::new(Device::Cpu);
        let model = GptModel::new(&vs.root(), &cfg);
        save_safetensors(&vs, &path).unwrap();
        let vs2 = nn::VarStore::new(Device::Cpu);
        let model2 = GptModel::new(&vs2.root(), &cfg);
        load_safetensors(&vs2, &path).unwrap();
        let ids = Tensor::from_slice2(&[[3i64, 1, 4, 1, 5]]);
        assert!(model.forward_t(&ids, false).equal(&model2.forward_t(&ids, false)), "same logits after loading");

        let bigger = GptConfig { emb_dim: 64, ..cfg.clone() };
        let vs3 = nn::VarStore::new(Device::Cpu);
        let _m3 = GptModel::new(&vs3.root(), &bigger);
        let err = load_safetensors(&vs3, &path).unwrap_err().to_string();
        assert!(err.contains("'final_norm.scale'") && err.contains("[64]") && err.contains("[32]"), "{err}");

        let deeper = GptConfig { n_layers: 3, ..cfg.clone() };
        let vs4 = nn::VarStore::new(Device::Cpu);
        let _m4 = GptModel::new(&vs4.root(), &deeper);
        let err = load_safetensors(&vs4, &path).unwrap_err().to_string();
        assert!(err.contains("trf_blocks.2.") && err.contains("m.safetensors"), "{err}");

        let shallower = GptConfig { n_layers: 1, ..cfg };
        let vs5 = nn::VarStore::new(Device::Cpu);
        let _m5 = GptModel::new(&vs5.root(), &shallower);
        let err = load_safetensors(&vs5, &path).unwrap_err().to_string();
        assert!(err.contains("trf_blocks.1.") && err.contains("not a parameter"), "{err}");

        let err = load_safetensors(&vs5, dir.join("missing.safetensors")).unwrap_err().to_string();
        assert!(err.contains("missing.safetensors"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

