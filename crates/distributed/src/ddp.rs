//! [`DataParallel`]: identical replicas, and gradients averaged over all
//! ranks in buckets whose all-reduce starts during the backward pass.

use std::collections::HashMap;

use tapegrad_autograd::Var;
use tapegrad_nn::{Module, ParamGrads};
use tapegrad_tensor::Tensor;

use crate::comm::{Buffer, Communicator, PendingReduce, Wire};
use crate::error::{Error, Result};

/// PyTorch's default bucket size: 25 MiB of gradients per all-reduce.
pub const DEFAULT_BUCKET_BYTES: usize = 25 * 1024 * 1024;

/// The first bucket's cap, as PyTorch's DDP: the last layers' gradients
/// are ready first, and a small first bucket starts their all-reduce early
/// even when the whole model would fit in one bucket.
pub const FIRST_BUCKET_BYTES: usize = 1024 * 1024;

/// Data-parallel training by hand: the parts the
/// [`DistributedTrainer`](crate::DistributedTrainer) uses, for a custom loop.
///
/// 1. [`prepare`](Self::prepare) once: refuses replicas whose parameters
///    differ (names, shapes, count, element type), then copies rank 0's
///    values to every rank.
/// 2. Each step, [`backward`](Self::backward) instead of `tape.backward`:
///    it returns this step's gradients averaged over all ranks, the same
///    on every rank bit for bit, so the same optimiser step keeps the
///    replicas identical.
///
/// **Buckets and overlap.** Gradients are packed into buckets of about
/// [`bucket_bytes`](Self::bucket_bytes) (default 25 MiB, as PyTorch's DDP),
/// in reverse parameter order (the order backward produces them); the
/// first bucket holds at most [`FIRST_BUCKET_BYTES`] (1 MiB), as PyTorch's. A
/// bucket's all-reduce starts, without blocking, as soon as its last
/// gradient is final (see `Tape::backward_with_param_hook`), so sending the
/// last layers' gradients overlaps the backward pass of the first ones.
/// Buckets start in the same order on every rank, as MPI requires.
///
/// **Averaging.** Each rank's gradient (of its mean loss over its `rows`
/// rows) is weighted by `rows`; the result is `Σ rows_r · g_r / Σ rows_r`:
/// the gradient of the mean loss over all rows of the step, as one process
/// with the whole batch would compute it, also when the ranks' batches
/// differ in size (the end of an epoch). A parameter no rank has a gradient
/// for gets none.
///
/// ```
/// use tapegrad_autograd::Tape;
/// use tapegrad_distributed::{DataParallel, Local};
/// use tapegrad_nn::{loss, Linear, Module, Optimizer, Sgd};
/// use tapegrad_tensor::Tensor;
/// let comm = Local; // MpiComm::init()? under mpirun
/// let dp = DataParallel::new(&comm).bucket_bytes(1 << 20);
/// let mut model = Linear::<f32>::new(2, 1, 0);
/// dp.prepare(&mut model)?;
/// let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2])?;
/// let tape = Tape::new();
/// let l = loss::mse(model.forward(&tape, tape.constant(x))?, tape.constant(Tensor::zeros(&[2, 1])))?;
/// let grads = dp.backward(&model, Some((l, 2)))?;
/// Sgd::new(0.1).step(model.parameters_mut(), &grads)?;
/// # Ok::<(), tapegrad_distributed::Error>(())
/// ```
#[derive(Debug)]
pub struct DataParallel<'c, C: Communicator + ?Sized> {
    comm: &'c C,
    bucket_bytes: usize,
}

/// The gradients of one bucket while the backward pass runs.
struct Bucket<T: Wire> {
    /// Indices into the model's parameter list.
    members: Vec<usize>,
    grads: Vec<Option<Tensor<T>>>,
    missing: usize,
}

impl<'c, C: Communicator + ?Sized> DataParallel<'c, C> {
    /// Data parallelism over `comm`'s ranks, with 25 MiB buckets.
    pub fn new(comm: &'c C) -> Self {
        DataParallel {
            comm,
            bucket_bytes: DEFAULT_BUCKET_BYTES,
        }
    }

    /// Bytes of gradients per bucket (at least one parameter per bucket;
    /// a parameter larger than this gets a bucket of its own). Smaller
    /// buckets start sooner and overlap more; each costs one latency.
    pub fn bucket_bytes(mut self, bytes: usize) -> Self {
        self.bucket_bytes = bytes;
        self
    }

    /// The communicator.
    pub fn comm(&self) -> &'c C {
        self.comm
    }

    /// The buckets for `model`: indices into its parameter list, in the
    /// order their all-reduces start.
    ///
    /// ```
    /// use tapegrad_distributed::{DataParallel, Local};
    /// use tapegrad_nn::Mlp;
    /// // 0.weight 784×512, 0.bias, 1.weight 512×512 (1 MiB), 1.bias, 2.weight 512×10, 2.bias
    /// let model = Mlp::<f32>::builder(&[784, 512, 512, 10]).build()?;
    /// let dp = DataParallel::new(&Local);
    /// assert_eq!(dp.buckets(&model), [vec![5, 4, 3], vec![2, 1, 0]]); // first bucket ≤ 1 MiB
    /// assert_eq!(dp.bucket_bytes(2 << 20).buckets(&model), [vec![5, 4, 3], vec![2, 1], vec![0]]);
    /// # Ok::<(), tapegrad_nn::Error>(())
    /// ```
    pub fn buckets<T: Wire, M: Module<T> + ?Sized>(&self, model: &M) -> Vec<Vec<usize>> {
        let sizes: Vec<usize> = model
            .parameters()
            .iter()
            .map(|(_, p)| p.numel() * std::mem::size_of::<T>())
            .collect();
        let mut buckets: Vec<Vec<usize>> = Vec::new();
        let mut bytes = 0;
        for i in (0..sizes.len()).rev() {
            let cap = if buckets.len() == 1 {
                self.bucket_bytes.min(FIRST_BUCKET_BYTES)
            } else {
                self.bucket_bytes
            };
            match buckets.last_mut() {
                Some(b) if bytes + sizes[i] <= cap => b.push(i),
                _ => {
                    buckets.push(vec![i]);
                    bytes = 0;
                }
            }
            bytes += sizes[i];
        }
        buckets
    }

    /// [`check_replicas`](Self::check_replicas), then
    /// [`broadcast_parameters`](Self::broadcast_parameters).
    ///
    /// # Errors
    /// As those two.
    pub fn prepare<T: Wire, M: Module<T> + ?Sized>(&self, model: &mut M) -> Result<()> {
        self.check_replicas(model)?;
        self.broadcast_parameters(model)
    }

    /// Checks that every rank's model has the same parameters as rank 0's:
    /// the same names, shapes and element type, in the same order. All
    /// ranks return the same answer, so none is left waiting.
    ///
    /// # Errors
    /// [`Error::Mismatch`] naming the first rank that differs and its first
    /// difference (a name, a shape, a missing or extra parameter).
    pub fn check_replicas<T: Wire, M: Module<T> + ?Sized>(&self, model: &M) -> Result<()> {
        let mine: Vec<String> = model
            .parameters()
            .iter()
            .map(|(n, p)| format!("{n:?} {}{:?}", T::DTYPE, p.dims()))
            .collect();
        let mut theirs = mine.join("\n").into_bytes();
        self.comm.broadcast_bytes(&mut theirs, 0)?;
        let theirs = String::from_utf8_lossy(&theirs).into_owned();
        let theirs: Vec<&str> = theirs.lines().collect();
        let detail = first_difference(&theirs, &mine);
        let (rank, size) = (self.comm.rank(), self.comm.size());
        let mut flags = vec![0.0f64; size];
        flags[rank] = f64::from(u8::from(detail.is_some()));
        let Buffer::F64(flags) = self.comm.all_reduce(Buffer::F64(flags))? else {
            unreachable!("f64 in, f64 out")
        };
        let Some(first) = flags.iter().position(|&f| f > 0.0) else {
            return Ok(());
        };
        let mut text = detail.unwrap_or_default().into_bytes();
        self.comm.broadcast_bytes(&mut text, first)?;
        Err(Error::Mismatch {
            rank: first,
            detail: String::from_utf8_lossy(&text).into_owned(),
        })
    }

    /// Copies rank 0's parameter values to every rank (at the start, and
    /// after rank 0 loads a checkpoint).
    ///
    /// # Errors
    /// If the replicas' parameter sizes differ (run
    /// [`check_replicas`](Self::check_replicas) first).
    pub fn broadcast_parameters<T: Wire, M: Module<T> + ?Sized>(
        &self,
        model: &mut M,
    ) -> Result<()> {
        let mut flat = Vec::new();
        for (_, p) in model.parameters() {
            flat.extend(p.value().to_vec());
        }
        let mut buf = T::into_buffer(flat);
        self.comm.broadcast(&mut buf, 0)?;
        let flat = T::from_buffer(buf).expect("same type back");
        let mut at = 0;
        for (_, p) in model.parameters_mut() {
            let n = p.numel();
            p.set_value(Tensor::from_vec(flat[at..at + n].to_vec(), p.dims())?);
            at += n;
        }
        Ok(())
    }

    /// The backward pass of `loss` (this rank's mean loss over `rows`
    /// rows) with the gradients averaged over all ranks, weighted by rows;
    /// `None` for a rank without rows this step (it still takes part).
    /// Each bucket's all-reduce starts during the pass as soon as its
    /// gradients are final.
    ///
    /// # Errors
    /// If the backward pass fails, or another rank stopped the job.
    pub fn backward<T: Wire, M: Module<T> + ?Sized>(
        &self,
        model: &M,
        loss: Option<(Var<'_, T>, usize)>,
    ) -> Result<ParamGrads<T>> {
        let params = model.parameters();
        let mut buckets: Vec<Bucket<T>> = self
            .buckets(model)
            .into_iter()
            .map(|members| Bucket {
                grads: vec![None; members.len()],
                missing: members.len(),
                members,
            })
            .collect();
        let mut place: HashMap<u64, (usize, usize)> = HashMap::new();
        for (b, bucket) in buckets.iter().enumerate() {
            for (s, &i) in bucket.members.iter().enumerate() {
                place.insert(params[i].1.id().key(), (b, s));
            }
        }
        let rows = loss.map_or(0, |(_, r)| r);
        let mut pending: Vec<Box<dyn PendingReduce>> = Vec::with_capacity(buckets.len());
        let mut failed: Option<Error> = None;
        let mut local = ParamGrads::new();
        if let Some((l, _)) = loss {
            let tape = l.tape();
            let mut on_grad = |key: u64, g: Tensor<T>| {
                let Some(&(b, s)) = place.get(&key) else {
                    return; // not this model's parameter
                };
                buckets[b].grads[s] = Some(g);
                buckets[b].missing -= 1;
                // Start every complete bucket whose turn it is.
                while failed.is_none()
                    && pending.len() < buckets.len()
                    && buckets[pending.len()].missing == 0
                {
                    let next = pending.len();
                    match self.start(&params, &buckets[next], rows) {
                        Ok(p) => pending.push(p),
                        Err(e) => failed = Some(e),
                    }
                }
                // MPI moves started collectives forward only inside calls.
                for p in &mut pending {
                    p.test();
                }
            };
            let grads = tape.backward_with_param_hook(l, &mut on_grad)?;
            local = model.grads(&grads);
        }
        if let Some(e) = failed {
            return Err(e);
        }
        // The rest (parameters this rank had no gradient for), in order.
        for b in pending.len()..buckets.len() {
            pending.push(self.start(&params, &buckets[b], rows)?);
        }
        for (bucket, p) in buckets.iter().zip(pending) {
            let sums = T::from_buffer(p.wait()?).expect("same type back");
            let weights = &sums[sums.len() - bucket.members.len()..];
            let mut at = 0;
            for (s, &i) in bucket.members.iter().enumerate() {
                let (name, param) = &params[i];
                let n = param.numel();
                let total = weights[s];
                if total.to_f64() > 0.0 {
                    let mean: Vec<T> = sums[at..at + n].iter().map(|&v| v / total).collect();
                    let g = Tensor::from_vec(mean, param.dims())?;
                    match local.get_mut(name) {
                        Some(slot) => *slot = g,
                        None => {
                            local.insert(name.clone(), g);
                        }
                    }
                } else {
                    local.remove(name);
                }
                at += n;
            }
        }
        Ok(local)
    }

    /// Packs a bucket (each gradient times `rows`, zeros for a missing one,
    /// then one weight per member) and starts its all-reduce.
    fn start<T: Wire>(
        &self,
        params: &[(String, &tapegrad_nn::Param<T>)],
        bucket: &Bucket<T>,
        rows: usize,
    ) -> Result<Box<dyn PendingReduce>> {
        let numel: usize = bucket.members.iter().map(|&i| params[i].1.numel()).sum();
        let mut flat: Vec<T> = Vec::with_capacity(numel + bucket.members.len());
        let w = T::from_f64(rows as f64);
        let mut weights = Vec::with_capacity(bucket.members.len());
        for (s, &i) in bucket.members.iter().enumerate() {
            match &bucket.grads[s] {
                Some(g) if rows > 0 => {
                    match g.as_slice() {
                        Some(v) => flat.extend(v.iter().map(|&x| x * w)),
                        None => flat.extend(g.to_vec().into_iter().map(|x| x * w)),
                    }
                    weights.push(w);
                }
                _ => {
                    flat.resize(flat.len() + params[i].1.numel(), T::from_f64(0.0));
                    weights.push(T::from_f64(0.0));
                }
            }
        }
        flat.extend(weights);
        self.comm.start_all_reduce(T::into_buffer(flat))
    }

    /// Sums `values` over all ranks (loss and accuracy counts for display).
    ///
    /// # Errors
    /// If another rank stopped the job.
    pub fn sum(&self, values: &[f64]) -> Result<Vec<f64>> {
        match self.comm.all_reduce(Buffer::F64(values.to_vec()))? {
            Buffer::F64(v) => Ok(v),
            Buffer::F32(_) => unreachable!("f64 in, f64 out"),
        }
    }
}

/// The first line where `mine` differs from rank 0's `theirs`, described.
fn first_difference(theirs: &[&str], mine: &[String]) -> Option<String> {
    for (i, m) in mine.iter().enumerate() {
        match theirs.get(i) {
            Some(t) if *t == m => {}
            Some(t) => {
                return Some(format!(
                    "parameter {} is {m} on that rank but {t} on rank 0",
                    i + 1
                ))
            }
            None => {
                return Some(format!(
                    "parameter {} ({m}) is extra: rank 0 has {} parameters, that rank {}",
                    i + 1,
                    theirs.len(),
                    mine.len()
                ))
            }
        }
    }
    (theirs.len() > mine.len()).then(|| {
        format!(
            "parameter {} ({}) is missing: rank 0 has {} parameters, that rank {}",
            mine.len() + 1,
            theirs[mine.len()],
            theirs.len(),
            mine.len()
        )
    })
}
