//! Chapter 2, "Working with text data": the book's data files, tokenizers, and the data set and
//! loader that turn text into batches of token ids. Imports only utilities.
//!
//! | module | book |
//! |---|---|
//! | [`data`] | the book's data files: URLs, sha256 checksums, download cache, `LLM_DATA_DIR` |
//! | [`tokenizer`] | 2.2-2.5: regex tokenizers, GPT-2's byte-level BPE, BPE training |
//! | [`samples`] | 2.5.1: chapter 1's text in English and Chinese, for comparing tokenizers |
//! | [`dataloader`] | 2.6: the sliding-window data set and the batch loader of chapters 2 and 5-7 |
//! | [`sampler`] | appendix A.9.3: `DistributedSampler`, each process's shard of an epoch (data-parallel training) |

pub mod data;
pub mod dataloader;
pub mod sampler;
pub mod samples;
pub mod tokenizer;
