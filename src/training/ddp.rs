//! Appendix A.9.3, "Training with multiple GPUs": data-parallel training as PyTorch's
//! `DistributedDataParallel` (DDP) does it, on the process groups of [`crate::util::dist`]
//! (feature `dist`).
//!
//! One process per device (rank `0..W`), each with a full copy of the model:
//! 1. at the start, every parameter is broadcast from rank 0, so all copies start equal;
//! 2. each rank trains on its own shard of every epoch
//!    ([`crate::text::sampler::DistributedSampler`]);
//! 3. after each backward pass the gradients are averaged over the ranks, bucket by bucket
//!    (DDP's `bucket_cap_mb`, 25 MB by default: the parameters in reverse order, the order in
//!    which backward produces their gradients, each bucket one flat all-reduce), so every rank
//!    takes the same optimizer step and the copies stay equal.
//!
//! With per-rank batches of `B` the global batch is `W·B`: batch `k` of all ranks together is
//! the batch `k` a single process with batch `W·B` reads from the same order, and since each
//! rank's loss is a mean over its (equally sized) batch, the averaged gradient is the single
//! process's gradient. The weights agree up to float rounding (tests/dist.rs: within 1e-6).
//!
//! PyTorch's DDP starts each bucket's all-reduce while backward is still running (autograd
//! hooks); tch has no gradient hooks, so here the buckets are reduced one after another once
//! backward is done: the same values, without the overlap.

use std::collections::HashMap;

use tch::nn::VarStore;
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::text::dataloader::{DataLoader, Dataset};
use crate::training::optim::AdamW;
use crate::training::trainer::{Evaluation, TrainEvent, TrainHistory, TrainSettings, TrainTask, Unit};
use crate::util::dist::{ProcessGroup, ReduceOp};

/// DDP's default `bucket_cap_mb`: 25 MiB of gradients per all-reduce.
pub const DEFAULT_BUCKET_CAP_MB: f64 = 25.0;

/// DDP's first bucket (`dist._DEFAULT_FIRST_BUCKET_BYTES`, 1 MiB): small, so that the last
/// layers' gradients, ready first, are sent early.
pub const FIRST_BUCKET_BYTES: usize = 1024 * 1024;

/// DDP's bucket assignment (`_compute_bucket_assignment_by_size`): tensors, in the given order,
/// go into the open bucket of their kind (dtype and device: a bucket is one flat buffer); a
/// bucket closes once it holds at least its limit, `first_cap_bytes` for the first bucket of
/// each kind and `cap_bytes` after. Returns the buckets as indices into `tensors`, ordered by
/// their first index.
pub fn bucket_assignment<K: PartialEq>(tensors: &[(K, usize)], cap_bytes: usize, first_cap_bytes: usize) -> Vec<Vec<usize>> {
    let mut open: Vec<(&K, Vec<usize>, usize, usize)> = Vec::new(); // kind, indices, bytes, limit
    let mut done = Vec::new();
    for (i, (kind, bytes)) in tensors.iter().enumerate() {
        let slot = match open.iter().position(|(k, ..)| *k == kind) {
            Some(slot) => slot,
            None => {
                open.push((kind, Vec::new(), 0, first_cap_bytes));
                open.len() - 1
            }
        };
        let bucket = &mut open[slot];
        bucket.1.push(i);
        bucket.2 += bytes;
        if bucket.2 >= bucket.3 {
            done.push(std::mem::take(&mut bucket.1));
            (bucket.2, bucket.3) = (0, cap_bytes);
        }
    }
    done.extend(open.into_iter().map(|(_, indices, ..)| indices).filter(|b| !b.is_empty()));
    done.sort_by_key(|b| b[0]);
    done
}

/// A model's copy in data-parallel training (`DistributedDataParallel(model)`): its process
/// group, its trainable parameters in gradient order, and their buckets.
#[derive(Debug)]
pub struct DistributedDataParallel {
    /// The process group the gradients are averaged over.
    pub group: ProcessGroup,
    /// The trainable parameters, by their VarStore names, in reverse order of creation (the
    /// order in which backward produces their gradients).
    pub params: Vec<(String, Tensor)>,
    /// Indices into `params`: each bucket's gradients are averaged by one flat all-reduce.
    pub buckets: Vec<Vec<usize>>,
}

impl DistributedDataParallel {
    /// Wraps the model of `vs` (`DDP(model, bucket_cap_mb=...)`): broadcasts every variable of
    /// `vs` from rank 0 (all ranks then hold rank 0's weights) and buckets the trainable ones.
    /// Every rank must call it, with the same model.
    pub fn new(group: ProcessGroup, vs: &VarStore, bucket_cap_mb: f64) -> Result<Self> {
        let cap_bytes = (bucket_cap_mb * 1024.0 * 1024.0).max(1.0) as usize;
        // Every variable, by name (the same order on every rank), broadcast bucket by bucket.
        let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let sizes: Vec<_> = named.iter().map(|(_, t)| ((t.kind(), t.device()), bytes(t))).collect();
        for bucket in bucket_assignment(&sizes, cap_bytes, cap_bytes) {
            let mut tensors: Vec<Tensor> = bucket.iter().map(|&i| named[i].1.shallow_clone()).collect();
            group.broadcast(&mut tensors, 0)?;
        }
        // The trainable ones, by creation order (VarStore keeps it; names found by storage).
        let names: HashMap<usize, &str> = named.iter().map(|(n, t)| (t.data_ptr() as usize, n.as_str())).collect();
        let mut seen = std::collections::HashSet::new();
        let mut params: Vec<(String, Tensor)> = vs
            .trainable_variables()
            .into_iter()
            .filter(|t| t.requires_grad() && seen.insert(t.data_ptr() as usize))
            .map(|t| (names.get(&(t.data_ptr() as usize)).map_or_else(String::new, |n| n.to_string()), t))
            .collect();
        params.reverse();
        let sizes: Vec<_> = params.iter().map(|(_, t)| ((t.kind(), t.device()), bytes(t))).collect();
        let buckets = bucket_assignment(&sizes, cap_bytes, FIRST_BUCKET_BYTES.min(cap_bytes));
        Ok(DistributedDataParallel { group, params, buckets })
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.group.rank
    }

    /// The number of processes.
    pub fn world_size(&self) -> usize {
        self.group.world_size
    }

    /// Averages the gradients over the ranks, in place, bucket by bucket; `grad(name, param)`
    /// gives each parameter's gradient (a tensor sharing its storage). A parameter without a
    /// gradient is an error (DDP's `find_unused_parameters` is not supported).
    pub fn average_gradients_with(&self, grad: impl Fn(&str, &Tensor) -> Option<Tensor>) -> Result<()> {
        for bucket in &self.buckets {
            let mut grads = Vec::with_capacity(bucket.len());
            for &i in bucket {
                let (name, param) = &self.params[i];
                let g = grad(name, param).filter(Tensor::defined).ok_or_else(|| Error::Distributed {
                    op: "all_reduce",
                    reason: format!("parameter {name} has no gradient on rank {}: every trainable parameter must take part in the loss", self.rank()),
                })?;
                grads.push(g);
            }
            self.group.all_reduce(&mut grads, ReduceOp::Avg)?;
        }
        Ok(())
    }

    /// Averages the parameters' `.grad` fields (after `loss.backward()`), as DDP does.
    pub fn average_gradients(&self) -> Result<()> {
        self.average_gradients_with(|_, p| Some(p.grad()))
    }

    /// Averages the gradients of [`AdamW::backward`] (or the `.grad` fields it falls back to).
    pub fn average_adamw_gradients(&self, optimizer: &AdamW) -> Result<()> {
        self.average_gradients_with(|name, _| optimizer.grad(name))
    }

    /// The mean of each value over the ranks (losses each rank measured on its shard).
    pub fn average_values(&self, values: &[f64]) -> Result<Vec<f64>> {
        let mut t = vec![Tensor::from_slice(values).to_kind(Kind::Double)];
        self.group.all_reduce(&mut t, ReduceOp::Avg)?;
        Ok(Vec::<f64>::try_from(&t[0])?)
    }
}

fn bytes(t: &Tensor) -> usize {
    t.numel() * t.kind().elt_size_in_bytes()
}

/// Any [`TrainTask`] trained data-parallel by [`crate::training::trainer::train_steps`]: the
/// task's own losses and reports, with the gradients averaged over the ranks after each
/// backward pass, evaluations averaged over the ranks (each evaluates its shard: the result is
/// the single process's over the same global batches), and what was seen counted for all ranks.
///
/// The loaders must be this rank's ([`DataLoader::with_sampler`]) with equal batches on every
/// rank (training: `drop_last`).
#[derive(Debug)]
pub struct DataParallelTask<'a, T> {
    pub task: &'a T,
    pub ddp: &'a DistributedDataParallel,
}

impl<T: TrainTask> TrainTask for DataParallelTask<'_, T> {
    fn batch_loss(&self, input_batch: &Tensor, target_batch: &Tensor, train: bool) -> Tensor {
        self.task.batch_loss(input_batch, target_batch, train)
    }

    fn unit(&self) -> Unit {
        self.task.unit()
    }

    /// This rank's count times the number of ranks (their batches are equally large).
    fn count(&self, input_batch: &Tensor) -> i64 {
        self.task.count(input_batch) * self.ddp.world_size() as i64
    }

    fn evaluate<D: Dataset, V: Dataset>(&self, train_loader: &DataLoader<D>, val_loader: &DataLoader<V>, eval_iter: usize) -> Evaluation {
        self.task.evaluate(train_loader, val_loader, eval_iter)
    }

    fn after_backward(&self, optimizer: &mut AdamW) -> Result<()> {
        self.task.after_backward(optimizer)?;
        self.ddp.average_adamw_gradients(optimizer)
    }

    fn reduce_evaluation(&self, evaluation: Evaluation) -> Result<Evaluation> {
        let e = self.task.reduce_evaluation(evaluation)?;
        let values: Vec<f64> = [e.train_loss, e.val_loss].into_iter().chain(e.metrics.iter().map(|(_, v)| *v)).collect();
        let mean = self.ddp.average_values(&values)?;
        let metrics = e.metrics.into_iter().zip(&mean[2..]).map(|((name, _), v)| (name, *v)).collect();
        Ok(Evaluation { train_loss: mean[0], val_loss: mean[1], metrics })
    }

    fn eval_log_line(&self, epoch: usize, global_step: i64, evaluation: &Evaluation) -> String {
        self.task.eval_log_line(epoch, global_step, evaluation)
    }

    fn after_epoch<D: Dataset, V: Dataset>(
        &self,
        epoch: usize,
        train_loader: &DataLoader<D>,
        val_loader: &DataLoader<V>,
        settings: &TrainSettings,
        history: &mut TrainHistory,
    ) -> Result<Option<TrainEvent>> {
        self.task.after_epoch(epoch, train_loader, val_loader, settings, history)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_close_at_their_limit_per_kind() {
        let mb = 1024 * 1024;
        // Reverse-order sizes: 0.5 MB, 0.75 MB (the first bucket passes 1 MB), then 10, 20, 5 MB
        // under a 25 MB cap.
        let t = [("f", mb / 2), ("f", 3 * mb / 4), ("f", 10 * mb), ("f", 20 * mb), ("f", 5 * mb)];
        assert_eq!(bucket_assignment(&t, 25 * mb, mb), [vec![0, 1], vec![2, 3], vec![4]]);
        // Two kinds never share a bucket.
        let t = [("f", 10), ("h", 10), ("f", 10)];
        assert_eq!(bucket_assignment(&t, 100, 100), [vec![0, 2], vec![1]]);
        assert!(bucket_assignment::<&str>(&[], 100, 100).is_empty());
    }
}
