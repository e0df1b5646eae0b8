//! Data parallelism with ranks as threads ([`ThreadGroup`]): the same code
//! paths as under MPI except the transport, in the default build.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tapegrad_autograd::{Result as TapeResult, Tape, Var};
use tapegrad_distributed::{
    Communicator, DataParallel, DistributedTrainer, Error, Local, ShardSampler, ThreadGroup, Wire,
};
use tapegrad_nn::data::{Dataset, Target};
use tapegrad_nn::{checkpoint, Activation, Mlp, Module, Objective, Optimizer, Param, Sgd};
use tapegrad_tensor::Tensor;

/// A seeded regression set of `n` rows, 5 features, 3 targets.
fn data<T: Wire>(n: usize) -> Dataset<T> {
    let mut state = 12345u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        T::from_f64(((state >> 33) as f64 / (1u64 << 31) as f64) - 0.5)
    };
    let x: Vec<T> = (0..n * 5).map(|_| next()).collect();
    let y: Vec<T> = (0..n * 3).map(|_| next()).collect();
    Dataset::new(
        Tensor::from_vec(x, &[n, 5]).unwrap(),
        Target::Values(Tensor::from_vec(y, &[n, 3]).unwrap()),
    )
    .unwrap()
}

fn model<T: Wire>(seed: u64) -> Mlp<T> {
    Mlp::builder(&[5, 16, 16, 3])
        .activation(Activation::Tanh)
        .seed(seed)
        .build()
        .unwrap()
}

fn flat<T: Wire, M: Module<T>>(m: &M) -> Vec<T> {
    m.parameters()
        .iter()
        .flat_map(|(_, p)| p.value().to_vec())
        .collect()
}

/// One SGD step of a custom loop on this rank's part of step `step` of
/// epoch 1: the parameters after it.
fn train_by_hand<T: Wire, C: Communicator>(
    comm: &C,
    data: &Dataset<T>,
    batch: usize,
    steps: usize,
    seed: u64,
) -> Vec<Vec<T>> {
    let mut m = model::<T>(seed);
    // Tiny buckets: several per step, so ordering and overlap are exercised.
    let dp = DataParallel::new(comm).bucket_bytes(300 * std::mem::size_of::<T>());
    dp.prepare(&mut m).unwrap();
    let sampler = ShardSampler::new(data.len(), comm.size(), 7);
    let per_epoch = sampler.steps_per_epoch(batch);
    let mut opt = Sgd::new(0.2).momentum(0.5);
    let mut after = Vec::new();
    for s in 0..steps {
        let (epoch, k) = (s / per_epoch + 1, s % per_epoch);
        let rows = sampler.indices(comm.rank(), epoch);
        let (lo, hi) = (
            (k * batch).min(rows.len()),
            ((k + 1) * batch).min(rows.len()),
        );
        let tape = Tape::new();
        let grads = if lo == hi {
            dp.backward(&m, None).unwrap()
        } else {
            let b = data.subset(&rows[lo..hi]).unwrap();
            let out = m
                .forward(&tape, tape.constant(b.features().clone()))
                .unwrap();
            let l = Objective::Mse.loss(out, b.targets()).unwrap();
            dp.backward(&m, Some((l, hi - lo))).unwrap()
        };
        drop(tape);
        opt.step(m.parameters_mut(), &grads).unwrap();
        after.push(flat(&m));
    }
    after
}

/// Runs `f(comm)` on `n` threads, one rank each; results in rank order.
fn on_ranks<R: Send>(n: usize, f: impl Fn(ThreadGroup) -> R + Sync) -> Vec<std::thread::Result<R>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = ThreadGroup::new(n)
            .into_iter()
            .map(|c| s.spawn(|| f(c)))
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    })
}

fn assert_close<T: Wire>(got: &[T], want: &[T], tol: f64, what: &str) {
    let scale = want.iter().map(|v| v.to_f64().abs()).fold(0.0, f64::max);
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        let d = (a.to_f64() - b.to_f64()).abs();
        assert!(
            d <= tol * scale,
            "{what}: element {i}: {a:?} vs {b:?} (|Δ| {d:e})"
        );
    }
}

/// N ranks with batch b take, step for step, the steps of one process with
/// batch N·b (21 rows: the last batch of each epoch is short and for N = 2
/// one rank has fewer rows), and stay identical bit for bit.
fn equivalence<T: Wire>(n: usize, tol: f64) {
    equivalence_on::<T>(21, n, tol);
}

fn equivalence_on<T: Wire>(rows: usize, n: usize, tol: f64) {
    let (batch, steps) = (4, 24);
    let d = data::<T>(rows);
    let reference = train_by_hand(&Local, &d, n * batch, steps, 100);
    let ranks: Vec<Vec<Vec<T>>> = on_ranks(n, |c| {
        train_by_hand(&c, &d, batch, steps, 100 + c.rank() as u64)
    })
    .into_iter()
    .map(|r| r.unwrap())
    .collect();
    for s in 0..steps {
        for r in 1..n {
            assert!(
                ranks[r][s] == ranks[0][s],
                "step {s}: rank {r} differs from rank 0"
            );
        }
        assert_close(
            &ranks[0][s],
            &reference[s],
            tol,
            &format!("N = {n}, step {s}"),
        );
    }
}

#[test]
fn two_and_three_ranks_match_one_process_f32() {
    equivalence::<f32>(2, 1e-5);
    equivalence::<f32>(3, 1e-5);
}

#[test]
fn two_and_three_ranks_match_one_process_f64() {
    equivalence::<f64>(2, 1e-12);
    equivalence::<f64>(3, 1e-12);
}

/// 9 rows on 2 ranks with batches of 4: rank 1's second batch of each
/// epoch is empty, and it still takes part (with weight 0).
#[test]
fn a_rank_without_rows_still_takes_part() {
    assert_eq!(ShardSampler::new(9, 2, 7).indices(1, 1).len(), 4);
    equivalence_on::<f64>(9, 2, 1e-12);
}

/// The trainer on 3 ranks ends where the trainer on one process with three
/// times the batch ends, with the same epoch metrics.
#[test]
fn trainer_on_three_ranks_matches_one_process() {
    let d = data::<f64>(40);
    let v = data::<f64>(11);
    let run = |comm: &dyn Communicator, batch: usize, seed: u64| {
        let mut m = model::<f64>(seed);
        let h = DistributedTrainer::new(Objective::Mse)
            .epochs(4)
            .batch_size(batch)
            .bucket_bytes(1000)
            .log(false)
            .fit(comm, &mut m, &mut Sgd::new(0.1), &d, Some(&v))
            .unwrap();
        (flat(&m), h.epochs)
    };
    let (want, want_epochs) = run(&Local, 15, 9);
    for (p, epochs) in on_ranks(3, |c| run(&c, 5, 9 + c.rank() as u64))
        .into_iter()
        .map(|r| r.unwrap())
    {
        assert_close(&p, &want, 1e-12, "final parameters");
        for (a, b) in epochs.iter().zip(&want_epochs) {
            assert!((a.train_loss - b.train_loss).abs() <= 1e-12 * b.train_loss);
            assert!((a.val_loss.unwrap() - b.val_loss.unwrap()).abs() <= 1e-12);
            assert_eq!(a.steps, b.steps);
        }
    }
}

/// Replicas that differ are refused on every rank, naming the difference.
#[test]
fn mismatched_replicas_are_refused_naming_the_difference() {
    let results = on_ranks(3, |c| {
        let sizes: &[usize] = if c.rank() == 2 {
            &[5, 16, 8, 3]
        } else {
            &[5, 16, 16, 3]
        };
        let mut m = Mlp::<f32>::builder(sizes).build().unwrap();
        DataParallel::new(&c).prepare(&mut m)
    });
    for r in results {
        match r.unwrap() {
            Err(Error::Mismatch { rank, detail }) => {
                assert_eq!(rank, 2);
                assert!(detail.contains("\"2.weight\" f32[8, 16]"), "{detail}");
                assert!(detail.contains("[16, 16]"), "{detail}");
            }
            other => panic!("expected a mismatch, got {other:?}"),
        }
    }
    // A missing parameter.
    let results = on_ranks(2, |c| {
        let sizes: &[usize] = if c.rank() == 1 { &[5, 3] } else { &[5, 16, 3] };
        let m = Mlp::<f32>::builder(sizes).build().unwrap();
        DataParallel::new(&c)
            .check_replicas(&m)
            .unwrap_err()
            .to_string()
    });
    for r in results {
        let msg = r.unwrap();
        assert!(
            msg.contains("rank 1") && msg.contains("parameter 1"),
            "{msg}"
        );
    }
}

/// A model that fails on its `fail_at`-th forward pass.
struct Faulty {
    inner: Mlp<f32>,
    fail_at: Option<usize>,
    calls: AtomicUsize,
}

impl Module<f32> for Faulty {
    fn forward<'t>(&self, tape: &'t Tape<f32>, x: Var<'t, f32>) -> TapeResult<Var<'t, f32>> {
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        if Some(n) == self.fail_at {
            return Err(tapegrad_autograd::Error::InvalidArgument {
                op: "Faulty::forward".into(),
                msg: format!("injected failure at call {n}"),
            });
        }
        self.inner.forward(tape, x)
    }
    fn parameters(&self) -> Vec<(String, &Param<f32>)> {
        self.inner.parameters()
    }
    fn parameters_mut(&mut self) -> Vec<(String, &mut Param<f32>)> {
        self.inner.parameters_mut()
    }
    fn describe(&self) -> String {
        "Faulty".into()
    }
}

/// A rank whose model fails mid-training stops the job: the others return
/// at once with an error naming the rank and its error.
#[test]
fn a_failing_rank_stops_the_others() {
    let d = data::<f32>(64);
    let start = Instant::now();
    let results = on_ranks(3, |c| {
        let mut m = Faulty {
            inner: model(1),
            fail_at: (c.rank() == 1).then_some(5),
            calls: AtomicUsize::new(0),
        };
        DistributedTrainer::new(Objective::Mse)
            .epochs(100)
            .batch_size(4)
            .log(false)
            .fit(&c, &mut m, &mut Sgd::new(0.1), &d, None)
    });
    assert!(start.elapsed() < Duration::from_secs(5));
    for (rank, r) in results.into_iter().enumerate() {
        if rank == 1 {
            // The failing rank's thread ends in `abort` (a panic with ranks as threads).
            assert!(r.is_err());
            continue;
        }
        match r.unwrap() {
            Err(Error::Aborted { rank, message }) => {
                assert_eq!(rank, 1);
                assert!(message.contains("injected failure at call 5"), "{message}");
            }
            other => panic!("expected an abort, got {other:?}"),
        }
    }
}

/// A rank that panics stops the others too.
#[test]
fn a_panicking_rank_stops_the_others() {
    let results = on_ranks(2, |c| {
        if c.rank() == 0 {
            panic!("boom");
        }
        c.barrier()
    });
    assert!(results[0].is_err());
    match results[1].as_ref().unwrap() {
        Err(Error::Aborted { rank: 0, message }) => assert_eq!(message, "panicked"),
        other => panic!("expected an abort, got {other:?}"),
    }
}

/// Rank 0's checkpoints are complete and load; resuming gives every rank
/// rank 0's parameters, whatever each rank started with.
#[test]
fn checkpoint_from_rank_0_loads_and_resume_agrees() {
    let dir = std::env::temp_dir().join(format!("tapegrad-ddp-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    let d = data::<f32>(30);
    let trained = on_ranks(2, |c| {
        let mut m = model::<f32>(5);
        DistributedTrainer::new(Objective::Mse)
            .epochs(3)
            .batch_size(4)
            .log(false)
            .checkpoint(&path)
            .fit(&c, &mut m, &mut Sgd::new(0.1), &d, None)
            .unwrap();
        flat(&m)
    });
    let trained = trained[0].as_ref().unwrap().clone();
    let mut loaded = model::<f32>(99);
    checkpoint::load(&mut loaded, &path).unwrap();
    assert_eq!(flat(&loaded), trained);

    // Each rank starts elsewhere; lr 0 keeps rank 0's loaded values.
    let resumed = on_ranks(3, |c| {
        let mut m = model::<f32>(40 + c.rank() as u64);
        DistributedTrainer::new(Objective::Mse)
            .epochs(1)
            .batch_size(4)
            .log(false)
            .resume_from(&path)
            .fit(&c, &mut m, &mut Sgd::new(0.0), &d, None)
            .unwrap();
        flat(&m)
    });
    for r in resumed {
        assert_eq!(r.unwrap(), trained);
    }
    std::fs::remove_dir_all(&dir).ok();
}
