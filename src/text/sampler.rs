//! Appendix A.9.3 (multi-GPU training): `torch.utils.data.distributed.DistributedSampler`, the
//! sampler that gives each of `num_replicas` processes its own shard of every epoch.
//!
//! PyTorch's rules, reproduced index for index (tests/dist.rs compares with PyTorch's own
//! sampler):
//! 1. the epoch's order: `torch.randperm(n)` from a generator seeded with `seed + epoch` when
//!    shuffling, else `0..n` (the same on every rank: they share `seed` and call `set_epoch`);
//! 2. without `drop_last`, the order is padded to a multiple of `num_replicas` by repeating its
//!    first indices; with `drop_last`, cut down to one instead;
//! 3. rank `r` takes positions `r, r + W, r + 2W, ...` (`indices[rank:total_size:num_replicas]`).
//!
//! ```text
//! n = 5, W = 2, no shuffle:  order 0 1 2 3 4 | 0 (padding)
//!                            rank 0: 0 2 4    rank 1: 1 3 0
//! ```
//!
//! With per-rank batches of `B`, batch `k` of every rank together is positions `k·W·B ..
//! (k+1)·W·B` of the (padded) order: the global batch a single process with batch `W·B` would
//! take from the same order. That is why data-parallel training and one process give the same
//! weights (`training::ddp`).

use crate::error::{Error, Result};
use crate::util::rng::torch_randperm;

/// `DistributedSampler(dataset, num_replicas, rank, shuffle, seed, drop_last)`: the indices of a
/// data set of `dataset_len` examples that rank `rank` of `num_replicas` visits in each epoch.
/// [`crate::text::dataloader::DataLoader::with_sampler`] batches them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistributedSampler {
    /// Examples in the data set (`len(dataset)`).
    pub dataset_len: usize,
    /// Processes sharing the data (`world_size`).
    pub num_replicas: usize,
    /// This process's rank, `0..num_replicas`.
    pub rank: usize,
    /// Whether each epoch draws a new order (`torch.randperm` seeded with `seed + epoch`).
    pub shuffle: bool,
    /// The seed shared by all ranks.
    pub seed: u64,
    /// Cut the order down to a multiple of `num_replicas` instead of padding it.
    pub drop_last: bool,
}

impl DistributedSampler {
    /// A sampler; errors when `num_replicas` is 0 or `rank >= num_replicas` (PyTorch's
    /// `ValueError: Invalid rank`).
    pub fn new(dataset_len: usize, num_replicas: usize, rank: usize, shuffle: bool, seed: u64, drop_last: bool) -> Result<Self> {
        if num_replicas == 0 || rank >= num_replicas {
            return Err(Error::InvalidArgument {
                name: "rank",
                reason: format!("invalid rank {rank}, rank should be in the interval [0, {}]", num_replicas.saturating_sub(1)),
            });
        }
        Ok(DistributedSampler { dataset_len, num_replicas, rank, shuffle, seed, drop_last })
    }

    /// Indices per rank and epoch (`len(sampler)`, PyTorch's `num_samples`): `ceil(n / W)`, or
    /// `floor(n / W)` with `drop_last`.
    pub fn num_samples(&self) -> usize {
        if self.drop_last {
            self.dataset_len / self.num_replicas
        } else {
            self.dataset_len.div_ceil(self.num_replicas)
        }
    }

    /// Indices of all ranks together per epoch (`total_size`): `num_samples() * num_replicas`.
    pub fn total_size(&self) -> usize {
        self.num_samples() * self.num_replicas
    }

    /// The whole epoch's order before it is dealt out: shuffled or not, then padded (repeating
    /// its first indices, as often as needed) or cut to [`Self::total_size`].
    pub fn global_order(&self, epoch: u64) -> Vec<usize> {
        let mut indices: Vec<usize> =
            if self.shuffle { torch_randperm(self.dataset_len, self.seed.wrapping_add(epoch)) } else { (0..self.dataset_len).collect() };
        let total = self.total_size();
        if indices.len() < total && !indices.is_empty() {
            let repeated: Vec<usize> = indices.iter().copied().cycle().take(total - indices.len()).collect();
            indices.extend(repeated);
        }
        indices.truncate(total);
        indices
    }

    /// The indices this rank visits in epoch `epoch` (`list(iter(sampler))` after
    /// `sampler.set_epoch(epoch)`): positions `rank, rank + W, ...` of [`Self::global_order`].
    pub fn indices(&self, epoch: u64) -> Vec<usize> {
        self.global_order(epoch).into_iter().skip(self.rank).step_by(self.num_replicas).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_with_the_first_indices_and_deals_round_robin() {
        let s = |rank, drop_last| DistributedSampler::new(5, 2, rank, false, 0, drop_last).unwrap();
        assert_eq!((s(0, false).indices(0), s(1, false).indices(0)), (vec![0, 2, 4], vec![1, 3, 0]), "padded with index 0");
        assert_eq!((s(0, true).indices(0), s(1, true).indices(0)), (vec![0, 2], vec![1, 3]), "index 4 dropped");
        // Fewer examples than ranks: the order repeats as often as needed.
        let tiny: Vec<Vec<usize>> = (0..4).map(|r| DistributedSampler::new(3, 4, r, false, 0, false).unwrap().indices(0)).collect();
        assert_eq!(tiny, [[0], [1], [2], [0]], "3 examples over 4 ranks");
        assert!(DistributedSampler::new(5, 2, 2, false, 0, false).is_err(), "rank 2 of 2 is invalid");
    }

    #[test]
    fn one_replica_shuffles_like_randperm_of_seed_plus_epoch() {
        let s = DistributedSampler::new(10, 1, 0, true, 40, false).unwrap();
        assert_eq!(s.indices(2), torch_randperm(10, 42), "seed 40 + epoch 2");
        assert_ne!(s.indices(0), s.indices(1), "each epoch its own order");
    }
}
