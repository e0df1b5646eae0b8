//! [`ShardSampler`]: which rows each rank trains on, epoch by epoch.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// Splits `len` rows among `size` ranks, with a fresh shuffle every epoch
/// that all ranks agree on (it depends only on the seed and the epoch).
///
/// Each epoch, the rows are shuffled into one order and dealt out like
/// cards: rank `r` gets positions `r, r + size, r + 2·size, ...` of it.
/// Every row is used exactly once per epoch. **The remainder:** when `len`
/// does not divide by `size`, the first `len % size` ranks get one row
/// more; nothing is repeated or dropped. Cut each rank's rows into batches
/// of `b` and step `k` on all ranks together covers positions
/// `k·size·b .. (k+1)·size·b` of the shuffled order: the same rows as batch
/// `k` of one process with batch `size·b`. A rank whose rows run out takes
/// part in the last steps with an empty batch (see
/// [`steps_per_epoch`](Self::steps_per_epoch) and
/// [`DataParallel::backward`](crate::DataParallel::backward), which weighs
/// each rank by its row count, so the average is over the rows actually
/// used).
///
/// ```
/// use tapegrad_distributed::ShardSampler;
/// let s = ShardSampler::new(7, 3, 42);
/// let shards: Vec<Vec<usize>> = (0..3).map(|r| s.indices(r, 1)).collect();
/// assert_eq!(shards.iter().map(Vec::len).collect::<Vec<_>>(), [3, 2, 2]);
/// let mut all: Vec<usize> = shards.concat();
/// all.sort();
/// assert_eq!(all, (0..7).collect::<Vec<_>>()); // each row exactly once
/// assert_ne!(s.indices(0, 1), s.indices(0, 2)); // a new shuffle each epoch
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardSampler {
    len: usize,
    size: usize,
    seed: u64,
}

impl ShardSampler {
    /// A sampler of `len` rows for `size` ranks.
    ///
    /// # Panics
    /// If `size` is 0.
    pub fn new(len: usize, size: usize, seed: u64) -> Self {
        assert!(size > 0, "ShardSampler::new: size must be at least 1");
        ShardSampler { len, size, seed }
    }

    /// The whole shuffled order of `epoch` (what one process would use).
    pub fn order(&self, epoch: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len).collect();
        let mixed = self
            .seed
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(epoch as u64);
        order.shuffle(&mut StdRng::seed_from_u64(mixed));
        order
    }

    /// Rank `rank`'s rows for `epoch`, in the order to use them.
    pub fn indices(&self, rank: usize, epoch: usize) -> Vec<usize> {
        self.order(epoch)
            .into_iter()
            .skip(rank)
            .step_by(self.size)
            .collect()
    }

    /// Steps every rank takes per epoch with batches of `batch` rows each:
    /// enough for the rank with the most rows.
    pub fn steps_per_epoch(&self, batch: usize) -> usize {
        self.len.div_ceil(self.size).div_ceil(batch.max(1))
    }
}
