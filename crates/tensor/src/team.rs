//! A fork-join team of threads that stay awake for a moment between jobs.
//!
//! Why not hand every kernel to rayon: on this project's reference machine
//! (a 2-core VM), `rayon::join` called from outside the pool took 21 µs,
//! because an idle rayon worker sleeps in the kernel and its idle virtual CPU
//! halts, and waking both takes about as long as adding two 1M-element
//! vectors. OpenMP, which PyTorch uses, keeps its threads spinning for a
//! while after each parallel region, so the next one starts within a
//! microsecond. The team does the same: after a job each helper spins for
//! [`SPIN`] waiting for the next one, then parks.
//!
//! Helpers *join* a job only while it is open: the caller closes it as soon
//! as its own part (which takes over any part nobody started) is done, and
//! then waits only for the helpers that joined. A helper that was
//! descheduled (a busy machine) is therefore never waited for; it finds the
//! job closed and skips it. This is why a job must be able to finish with
//! the caller alone, as [`parallel::for_each_chunk`]'s stealing does.
//!
//! One job runs at a time. A caller that finds the team busy (another thread
//! is using it, or the call is nested inside a job) gets `false` back and
//! uses rayon instead, so the team never deadlocks and never queues threads
//! behind each other.
//!
//! Matrix products run on the team too (`ops::matmul` cuts each into one
//! single-threaded GEMM per thread). They used to run on rayon's pool
//! through the GEMM crate's own threading, with the team's helpers
//! yielding their cores meanwhile; on 2 cores the two sets of threads then
//! took turns through the scheduler (sched_yield and futex wake-ups were
//! about 15% of the 784-512-512-10 MLP training step). Now one set of
//! threads runs a whole training step.
//!
//! [`parallel::for_each_chunk`]: crate::parallel

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a helper keeps looking for the next job before it parks. Long
/// enough to cover the gap between two kernels of a training step, short
/// enough that an idle program stops burning a core almost at once.
const SPIN: Duration = Duration::from_micros(200);

/// For how much of [`SPIN`] a helper spins without giving up its core; after
/// that it yields at every turn. Covers the gap between two kernels of a
/// training step on an idle machine; on a busy one (where a spinning helper
/// took CPU time from the thread it was waiting for, doubling the MLP
/// step's time) the rest of the wait costs others little.
const HOT_SPIN: Duration = Duration::from_micros(20);

/// How long the caller spins for joined helpers before it starts yielding
/// its core to them (one may have been descheduled mid-chunk).
const FINISH_SPIN: Duration = Duration::from_micros(50);

/// The job word: the job's number in the high bits, a closed flag, and in
/// the low bits the number of helpers that joined.
const EPOCH_ONE: u64 = 1 << 33;
const CLOSED: u64 = 1 << 32;
const JOINED: u64 = CLOSED - 1;

/// The caller's closure with its lifetime erased; see [`run`] for why no
/// helper can use it after `run` returns.
type Job = *const (dyn Fn(usize) + Sync + 'static);

struct Team {
    /// Number of helper threads.
    helpers: usize,
    /// Held by the caller whose job is running.
    busy: AtomicBool,
    /// Job number, closed flag and joined count (see [`EPOCH_ONE`]).
    word: AtomicU64,
    /// The current job, written by the holder of `busy` before it publishes
    /// a new job number in `word`, read by helpers that joined it.
    job: UnsafeCell<Job>,
    /// Participants the current job wants (helpers that join get
    /// `1..parts`). Atomic because a helper may read it for a job that has
    /// just moved on.
    parts: AtomicU64,
    /// Helpers that joined the current job and have finished it.
    finished: AtomicUsize,
    /// A panic from a helper, re-raised on the caller.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    /// Parked helpers wait here; `sleepers` counts them.
    lock: Mutex<()>,
    wake: Condvar,
    sleepers: AtomicUsize,
}

// SAFETY: every field but `job` is a sync primitive. `job` is written only
// by the thread holding `busy`, before it publishes the job (Release store
// of `word`) and after every helper that joined the previous job has
// finished with it; helpers read it only after joining the job (an Acquire
// CAS on `word`), and the closure it points to is `Sync` and is only called
// while its caller waits in `run`.
unsafe impl Sync for Team {}
// SAFETY: as above; the team is only ever shared through a `&'static`.
unsafe impl Send for Team {}

thread_local! {
    /// Whether this thread is a team helper (nested jobs go to rayon).
    static IS_HELPER: Cell<bool> = const { Cell::new(false) };
}

/// The team, started on first use with one helper per rayon thread beyond
/// the caller's (so `RAYON_NUM_THREADS` sizes it too).
static TEAM: OnceLock<&'static Team> = OnceLock::new();

fn team() -> &'static Team {
    TEAM.get_or_init(|| {
        let helpers = rayon::current_num_threads().saturating_sub(1);
        let team: &'static Team = Box::leak(Box::new(Team {
            helpers,
            busy: AtomicBool::new(false),
            word: AtomicU64::new(0),
            job: UnsafeCell::new(&|_| {}),
            parts: AtomicU64::new(0),
            finished: AtomicUsize::new(0),
            panic: Mutex::new(None),
            lock: Mutex::new(()),
            wake: Condvar::new(),
            sleepers: AtomicUsize::new(0),
        }));
        for k in 1..=helpers {
            let spawned = std::thread::Builder::new()
                .name(format!("tapegrad-team-{k}"))
                .spawn(move || helper(team));
            if spawned.is_err() {
                // No thread to be had: every job goes to rayon instead
                // (`busy` stays taken for good).
                team.busy.store(true, Ordering::SeqCst);
                break;
            }
        }
        team
    })
}

/// Number of threads a team job can use (helpers plus the caller).
pub(crate) fn size() -> usize {
    team().helpers + 1
}

/// Runs `f(0)` on the calling thread and, while it runs, `f(k)` for
/// `k in 1..parts` on helpers that are free to join; returns when all of
/// them have finished. Which `k ≥ 1` run is up to timing, so `f` must get
/// the whole job done from any subset of participants that includes 0.
///
/// Returns `false` without running anything if the team cannot take the
/// job: it is busy, or this call is nested inside a job. A panic in any
/// `f(k)` is re-raised here after every participant has stopped.
pub(crate) fn run(parts: usize, f: &(dyn Fn(usize) + Sync)) -> bool {
    let team = team();
    if IS_HELPER.with(Cell::get)
        || team
            .busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
    {
        return false;
    }
    // Erase the closure's lifetime to store it in the team.
    // SAFETY: only the pointer's lifetime changes. A helper calls it only
    // after joining this job, and `Finish` below (which also runs while
    // unwinding from a panic in `f(0)`) closes the job and waits for every
    // helper that joined, before this function returns and the closure can
    // go away.
    let f_static: *const (dyn Fn(usize) + Sync + 'static) =
        unsafe { std::mem::transmute(f as *const (dyn Fn(usize) + Sync)) };
    // SAFETY: we hold `busy` and every helper that joined the previous job
    // has finished, so no helper reads `job` now.
    unsafe { *team.job.get() = f_static };
    team.parts.store(parts as u64, Ordering::Relaxed);
    // A panic left by an earlier job whose caller itself panicked first.
    team.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
    team.finished.store(0, Ordering::Relaxed);
    // A new job number, open, nobody joined. SeqCst pairs with a helper's
    // `sleepers` increment (see `wait_for_job`): either we see it and
    // notify, or the helper sees the new job and stays up.
    let epoch = (team.word.load(Ordering::Relaxed) & !(CLOSED | JOINED)) + EPOCH_ONE;
    team.word.store(epoch, Ordering::SeqCst);
    if parts > 1 && team.sleepers.load(Ordering::SeqCst) > 0 {
        let _guard = team.lock.lock().unwrap_or_else(|e| e.into_inner());
        team.wake.notify_all();
    }

    /// Closes the job, waits for the helpers that joined it and releases
    /// the team, also on unwinding.
    struct Finish(&'static Team);
    impl Drop for Finish {
        fn drop(&mut self) {
            let team = self.0;
            let joined = (team.word.fetch_or(CLOSED, Ordering::AcqRel) & JOINED) as usize;
            let start = Instant::now();
            let mut spins = 0u32;
            while team.finished.load(Ordering::Acquire) != joined {
                spins = spins.wrapping_add(1);
                if spins < 64 || start.elapsed() < FINISH_SPIN {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
            team.busy.store(false, Ordering::Release);
        }
    }
    let finish = Finish(team);
    f(0);
    drop(finish);
    let helper_panic = team.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(payload) = helper_panic {
        resume_unwind(payload);
    }
    true
}

fn helper(team: &'static Team) {
    IS_HELPER.with(|h| h.set(true));
    // The job number the team was created with: a job may already be open
    // by the time this thread runs.
    let mut seen = 0;
    loop {
        let word = wait_for_job(team, seen);
        seen = word & !(CLOSED | JOINED);
        let Some(k) = join(team, word) else { continue };
        // SAFETY: we joined the job, so its caller wrote `job` before
        // publishing it and waits in `run` until we count ourselves
        // finished: the closure is alive.
        let f = unsafe { &**team.job.get() };
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(k))) {
            let mut slot = team.panic.lock().unwrap_or_else(|e| e.into_inner());
            slot.get_or_insert(payload);
        }
        team.finished.fetch_add(1, Ordering::Release);
    }
}

/// Tries to join the open job whose word was `word`; returns this helper's
/// participant number, or `None` if the job is closed, full or gone.
fn join(team: &Team, mut word: u64) -> Option<usize> {
    let epoch = word & !(CLOSED | JOINED);
    loop {
        if word & !(CLOSED | JOINED) != epoch || word & CLOSED != 0 {
            return None;
        }
        let k = (word & JOINED) + 1;
        // Written before the job number we read was published; if the job
        // has moved on since, the exchange below fails anyway.
        if k >= team.parts.load(Ordering::Relaxed) {
            return None;
        }
        match team
            .word
            .compare_exchange_weak(word, word + 1, Ordering::Acquire, Ordering::Acquire)
        {
            Ok(_) => return Some(k as usize),
            Err(now) => word = now,
        }
    }
}

/// Spins until the job number in the team's word moves past `seen`, parking
/// after [`SPIN`]; returns the new word.
fn wait_for_job(team: &Team, seen: u64) -> u64 {
    let is_new = |w: u64| w & !(CLOSED | JOINED) != seen;
    let start = Instant::now();
    let mut spins = 0u32;
    let mut hot = true;
    loop {
        let word = team.word.load(Ordering::Acquire);
        if is_new(word) {
            return word;
        }
        if hot {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) && start.elapsed() > HOT_SPIN {
                hot = false;
            }
            std::hint::spin_loop();
        } else if start.elapsed() > SPIN {
            break;
        } else {
            // Still up for the next job, but a thread that is runnable on
            // this core (on a busy machine: the caller itself, or another
            // program) gets it first.
            std::thread::yield_now();
        }
    }
    let mut guard = team.lock.lock().unwrap_or_else(|e| e.into_inner());
    team.sleepers.fetch_add(1, Ordering::SeqCst);
    let mut word = team.word.load(Ordering::SeqCst);
    while !is_new(word) {
        guard = team.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
        word = team.word.load(Ordering::SeqCst);
    }
    team.sleepers.fetch_sub(1, Ordering::SeqCst);
    drop(guard);
    word
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parallel::for_each_chunk;

    /// Fills `n` slots through `for_each_chunk` and checks each was written
    /// once with its own index.
    fn check_cover(n: usize, chunk: usize) {
        let mut out = vec![usize::MAX; n];
        for_each_chunk(&mut out, chunk, |start, piece| {
            for (i, o) in piece.iter_mut().enumerate() {
                assert_eq!(*o, usize::MAX, "written twice");
                *o = start + i;
            }
        });
        assert!(out.iter().enumerate().all(|(i, &o)| i == o), "n {n}");
    }

    #[test]
    fn the_caller_always_runs_and_helpers_join_at_most_once() {
        for parts in [1, 2, 3, 8] {
            let calls: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
            // `false` only when another test holds the team; then try again.
            while !run(parts, &|k| {
                calls[k].fetch_add(1, Ordering::Relaxed);
            }) {
                std::thread::yield_now();
            }
            assert_eq!(calls[0].load(Ordering::Relaxed), 1);
            assert!(calls.iter().all(|c| c.load(Ordering::Relaxed) <= 1));
        }
    }

    #[test]
    fn many_jobs_in_a_row_cover_every_element() {
        // Back-to-back jobs: helpers see each new job while still spinning.
        for round in 0..2_000 {
            check_cover(1 + round % 97 * 31, 1 + round % 13);
        }
    }

    #[test]
    fn jobs_from_several_threads_at_once_all_complete() {
        // One of them holds the team, the others fall back to rayon.
        std::thread::scope(|s| {
            for t in 0..4 {
                s.spawn(move || {
                    for round in 0..200 {
                        check_cover(500 + t * 7 + round, 16);
                    }
                });
            }
        });
    }

    #[test]
    fn a_job_inside_a_job_runs_without_deadlock() {
        let mut out = vec![0usize; 64];
        for_each_chunk(&mut out, 8, |start, piece| {
            // Nested: falls back to rayon on a helper, or finds the team
            // busy on the caller.
            check_cover(100, 10);
            piece.iter_mut().for_each(|o| *o = start);
        });
        assert!(out
            .chunks(8)
            .enumerate()
            .all(|(c, p)| p.iter().all(|&o| o == c * 8)));
    }

    #[test]
    fn a_panic_in_any_chunk_reaches_the_caller_and_the_team_recovers() {
        for _ in 0..20 {
            let result = std::panic::catch_unwind(|| {
                let mut out = vec![0u8; 64];
                for_each_chunk(&mut out, 1, |start, _| assert_ne!(start, 40));
            });
            assert!(result.is_err());
            check_cover(10_000, 100);
        }
    }

    #[test]
    fn a_panic_on_a_helper_reaches_the_caller() {
        let helper_ran = AtomicBool::new(false);
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            while !run(2, &|k| {
                if k == 1 {
                    helper_ran.store(true, Ordering::Relaxed);
                    panic!("helper");
                }
            }) {
                std::thread::yield_now();
            }
        }));
        // Whether a helper joined is up to timing; if one did, its panic
        // must have come through.
        assert_eq!(result.is_err(), helper_ran.load(Ordering::Relaxed));
        check_cover(10_000, 100);
    }

    #[test]
    fn parking_and_waking_keeps_jobs_running() {
        for round in 0..50 {
            if round % 10 == 0 {
                // Long enough for helpers to stop spinning and park.
                std::thread::sleep(SPIN + Duration::from_millis(1));
            }
            check_cover(4096, 64);
        }
    }
}
