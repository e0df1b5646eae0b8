//! [`Communicator`]: the collective operations data-parallel training
//! needs, with two implementations always available ([`Local`] for one
//! process, [`ThreadGroup`] for ranks as threads of one process) and MPI
//! behind the `mpi` feature.

use std::sync::{Arc, Condvar, Mutex};

use tapegrad_tensor::Element;

use crate::error::{Error, Result};

/// Numbers in flight between ranks: the element types gradients have.
#[derive(Clone, Debug, PartialEq)]
pub enum Buffer {
    /// Single precision.
    F32(Vec<f32>),
    /// Double precision.
    F64(Vec<f64>),
}

impl Buffer {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Buffer::F32(v) => v.len(),
            Buffer::F64(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds `other` element by element (the reduction of an all-reduce).
    fn add_assign(&mut self, other: &Buffer) -> Result<()> {
        match (self, other) {
            (Buffer::F32(a), Buffer::F32(b)) if a.len() == b.len() => {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
            }
            (Buffer::F64(a), Buffer::F64(b)) if a.len() == b.len() => {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
            }
            (a, b) => {
                return Err(Error::invalid(
                    "all_reduce",
                    format!(
                        "the ranks sent different buffers ({} vs {} elements, or another type)",
                        a.len(),
                        b.len()
                    ),
                ))
            }
        }
        Ok(())
    }
}

/// The element types that can travel in a [`Buffer`]: `f32` and `f64`.
pub trait Wire: Element {
    /// Wraps a vector.
    fn into_buffer(v: Vec<Self>) -> Buffer;
    /// Unwraps a vector of this type (`None` for the other type).
    fn from_buffer(b: Buffer) -> Option<Vec<Self>>;
}

impl Wire for f32 {
    fn into_buffer(v: Vec<Self>) -> Buffer {
        Buffer::F32(v)
    }
    fn from_buffer(b: Buffer) -> Option<Vec<Self>> {
        match b {
            Buffer::F32(v) => Some(v),
            Buffer::F64(_) => None,
        }
    }
}

impl Wire for f64 {
    fn into_buffer(v: Vec<Self>) -> Buffer {
        Buffer::F64(v)
    }
    fn from_buffer(b: Buffer) -> Option<Vec<Self>> {
        match b {
            Buffer::F64(v) => Some(v),
            Buffer::F32(_) => None,
        }
    }
}

/// An all-reduce that has been started and not yet waited for.
pub trait PendingReduce: Send {
    /// Lets the reduction make progress and says whether it has finished.
    /// Call it now and then while computing: MPI moves non-blocking
    /// collectives forward only inside MPI calls.
    fn test(&mut self) -> bool;
    /// Blocks until the reduction is done and returns the sums.
    ///
    /// # Errors
    /// If another rank stopped the job meanwhile.
    fn wait(self: Box<Self>) -> Result<Buffer>;
}

/// The group of processes training together, and the collective operations
/// between them.
///
/// Every rank must call the same collectives in the same order with
/// buffers of the same length and type, as in MPI; the helpers of this
/// crate ([`DataParallel`](crate::DataParallel),
/// [`DistributedTrainer`](crate::DistributedTrainer)) do.
pub trait Communicator {
    /// This process's rank, from 0.
    fn rank(&self) -> usize;
    /// Number of ranks.
    fn size(&self) -> usize;
    /// Starts summing `buf` element by element over all ranks, without
    /// blocking. Every rank receives the same sums, bit for bit.
    ///
    /// # Errors
    /// If the job has been stopped.
    fn start_all_reduce(&self, buf: Buffer) -> Result<Box<dyn PendingReduce>>;
    /// Overwrites `buf` on every rank with `root`'s. Lengths must agree.
    ///
    /// # Errors
    /// If `root` is not a rank, or the job has been stopped.
    fn broadcast(&self, buf: &mut Buffer, root: usize) -> Result<()>;
    /// Overwrites `bytes` on every rank with `root`'s; lengths may differ.
    ///
    /// # Errors
    /// As [`broadcast`](Self::broadcast).
    fn broadcast_bytes(&self, bytes: &mut Vec<u8>, root: usize) -> Result<()>;
    /// Waits until every rank has arrived.
    ///
    /// # Errors
    /// If the job has been stopped.
    fn barrier(&self) -> Result<()>;
    /// Stops the whole job: every rank, with `message` (printed with this
    /// rank's number). With MPI this is `MPI_Abort`; it does not return.
    fn abort(&self, code: i32, message: &str) -> !;

    /// [`start_all_reduce`](Self::start_all_reduce) and wait.
    ///
    /// # Errors
    /// As `start_all_reduce`.
    fn all_reduce(&self, buf: Buffer) -> Result<Buffer> {
        self.start_all_reduce(buf)?.wait()
    }
}

pub(crate) fn check_root(op: &str, root: usize, size: usize) -> Result<()> {
    if root >= size {
        return Err(Error::invalid(
            op,
            format!("root {root} is not a rank of a group of {size}"),
        ));
    }
    Ok(())
}

/// The communicator of a job with one process: collectives return their
/// input. Training with it is ordinary single-process training.
#[derive(Clone, Copy, Debug, Default)]
pub struct Local;

struct Done(Buffer);

impl PendingReduce for Done {
    fn test(&mut self) -> bool {
        true
    }
    fn wait(self: Box<Self>) -> Result<Buffer> {
        Ok(self.0)
    }
}

impl Communicator for Local {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn start_all_reduce(&self, buf: Buffer) -> Result<Box<dyn PendingReduce>> {
        Ok(Box::new(Done(buf)))
    }
    fn broadcast(&self, _buf: &mut Buffer, root: usize) -> Result<()> {
        check_root("broadcast", root, 1)
    }
    fn broadcast_bytes(&self, _bytes: &mut Vec<u8>, root: usize) -> Result<()> {
        check_root("broadcast_bytes", root, 1)
    }
    fn barrier(&self) -> Result<()> {
        Ok(())
    }
    fn abort(&self, code: i32, message: &str) -> ! {
        eprintln!("rank 0 stopped the job: {message}");
        std::process::exit(code)
    }
}

/// What one rank contributed to a collective.
#[derive(Clone, Debug)]
enum Payload {
    Numbers(Buffer),
    Bytes(Vec<u8>),
}

/// One collective in progress: the contributions so far.
struct Round {
    seq: u64,
    parts: Vec<Option<Payload>>,
    /// Ranks that have taken the result; the round is dropped after all.
    taken: usize,
}

#[derive(Default)]
struct Shared {
    rounds: Vec<Round>,
    /// `(rank, message)` of a rank that stopped the job.
    aborted: Option<(usize, String)>,
}

struct Group {
    size: usize,
    state: Mutex<Shared>,
    changed: Condvar,
}

/// Ranks as threads of one process: a real group of `size` ranks with the
/// semantics of MPI's collectives (same calls, same order), for tests and
/// for trying data parallelism without MPI. Reductions add the ranks'
/// buffers in rank order, so every rank gets the same sums bit for bit.
///
/// ```
/// use tapegrad_distributed::{Buffer, Communicator, ThreadGroup};
/// let sums = std::thread::scope(|s| {
///     let handles: Vec<_> = ThreadGroup::new(3)
///         .into_iter()
///         .map(|c| s.spawn(move || c.all_reduce(Buffer::F64(vec![c.rank() as f64, 1.0]))))
///         .collect();
///     handles.into_iter().map(|h| h.join().unwrap()).collect::<Result<Vec<_>, _>>()
/// })?;
/// assert!(sums.iter().all(|b| *b == Buffer::F64(vec![3.0, 3.0])));
/// # Ok::<(), tapegrad_distributed::Error>(())
/// ```
pub struct ThreadGroup {
    rank: usize,
    group: Arc<Group>,
    /// Collectives this rank has started (the round numbers).
    next: std::cell::Cell<u64>,
}

impl std::fmt::Debug for ThreadGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ThreadGroup(rank {} of {})", self.rank, self.group.size)
    }
}

impl ThreadGroup {
    /// `size` communicators, one per rank; move each into its own thread.
    ///
    /// # Panics
    /// If `size` is 0.
    pub fn new(size: usize) -> Vec<ThreadGroup> {
        assert!(
            size > 0,
            "ThreadGroup::new: a group needs at least one rank"
        );
        let group = Arc::new(Group {
            size,
            state: Mutex::new(Shared::default()),
            changed: Condvar::new(),
        });
        (0..size)
            .map(|rank| ThreadGroup {
                rank,
                group: group.clone(),
                next: std::cell::Cell::new(0),
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        // A rank that panicked while holding the lock leaves it poisoned;
        // the state is still consistent (every update is one assignment).
        self.group.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds this rank's part to the next round; returns its number.
    fn contribute(&self, part: Payload) -> Result<u64> {
        let seq = self.next.get();
        self.next.set(seq + 1);
        let mut st = self.lock();
        if let Some((rank, message)) = &st.aborted {
            return Err(Error::Aborted {
                rank: *rank,
                message: message.clone(),
            });
        }
        let size = self.group.size;
        let round = match st.rounds.iter_mut().position(|r| r.seq == seq) {
            Some(i) => &mut st.rounds[i],
            None => {
                st.rounds.push(Round {
                    seq,
                    parts: vec![None; size],
                    taken: 0,
                });
                st.rounds.last_mut().expect("just pushed")
            }
        };
        round.parts[self.rank] = Some(part);
        self.group.changed.notify_all();
        Ok(seq)
    }

    /// Waits for every part of round `seq` and returns them in rank order.
    fn collect(group: &Group, rank_count: usize, seq: u64) -> Result<Vec<Payload>> {
        let mut st = group.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some((rank, message)) = &st.aborted {
                return Err(Error::Aborted {
                    rank: *rank,
                    message: message.clone(),
                });
            }
            if let Some(i) = st
                .rounds
                .iter()
                .position(|r| r.seq == seq && r.parts.iter().all(Option::is_some))
            {
                let round = &mut st.rounds[i];
                let parts: Vec<Payload> = round.parts.iter().flatten().cloned().collect();
                round.taken += 1;
                if round.taken == rank_count {
                    st.rounds.remove(i);
                }
                return Ok(parts);
            }
            st = group.changed.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn exchange(&self, part: Payload) -> Result<Vec<Payload>> {
        let seq = self.contribute(part)?;
        Self::collect(&self.group, self.group.size, seq)
    }

    fn stop(&self, message: String) {
        let mut st = self.lock();
        if st.aborted.is_none() {
            st.aborted = Some((self.rank, message));
        }
        self.group.changed.notify_all();
    }
}

impl Drop for ThreadGroup {
    /// A rank whose thread panics stops the group, so the others return
    /// [`Error::Aborted`] instead of waiting forever.
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.stop("panicked".into());
        }
    }
}

struct ThreadPending {
    group: Arc<Group>,
    seq: u64,
    done: bool,
}

impl PendingReduce for ThreadPending {
    fn test(&mut self) -> bool {
        if !self.done {
            let st = self.group.state.lock().unwrap_or_else(|e| e.into_inner());
            self.done = st.aborted.is_some()
                || st
                    .rounds
                    .iter()
                    .any(|r| r.seq == self.seq && r.parts.iter().all(Option::is_some));
        }
        self.done
    }

    fn wait(self: Box<Self>) -> Result<Buffer> {
        let parts = ThreadGroup::collect(&self.group, self.group.size, self.seq)?;
        sum_in_rank_order(parts)
    }
}

fn sum_in_rank_order(parts: Vec<Payload>) -> Result<Buffer> {
    let mut it = parts.into_iter().map(|p| match p {
        Payload::Numbers(b) => Ok(b),
        Payload::Bytes(_) => Err(Error::invalid(
            "all_reduce",
            "ranks called different collectives (bytes against numbers)",
        )),
    });
    let mut total = it.next().expect("a group has a rank")?;
    for b in it {
        total.add_assign(&b?)?;
    }
    Ok(total)
}

impl Communicator for ThreadGroup {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.group.size
    }
    fn start_all_reduce(&self, buf: Buffer) -> Result<Box<dyn PendingReduce>> {
        let seq = self.contribute(Payload::Numbers(buf))?;
        Ok(Box::new(ThreadPending {
            group: self.group.clone(),
            seq,
            done: false,
        }))
    }
    fn broadcast(&self, buf: &mut Buffer, root: usize) -> Result<()> {
        check_root("broadcast", root, self.size())?;
        let parts = self.exchange(Payload::Numbers(buf.clone()))?;
        match &parts[root] {
            Payload::Numbers(b) if b.len() == buf.len() => *buf = b.clone(),
            _ => {
                return Err(Error::invalid(
                    "broadcast",
                    format!("rank {root} sent a buffer of another length or type"),
                ))
            }
        }
        Ok(())
    }
    fn broadcast_bytes(&self, bytes: &mut Vec<u8>, root: usize) -> Result<()> {
        check_root("broadcast_bytes", root, self.size())?;
        let parts = self.exchange(Payload::Bytes(bytes.clone()))?;
        match &parts[root] {
            Payload::Bytes(b) => *bytes = b.clone(),
            Payload::Numbers(_) => {
                return Err(Error::invalid(
                    "broadcast_bytes",
                    "ranks called different collectives",
                ))
            }
        }
        Ok(())
    }
    fn barrier(&self) -> Result<()> {
        self.exchange(Payload::Bytes(Vec::new())).map(|_| ())
    }
    fn abort(&self, _code: i32, message: &str) -> ! {
        eprintln!("rank {} stopped the job: {message}", self.rank);
        self.stop(message.to_string());
        panic!("rank {} stopped the job: {message}", self.rank)
    }
}
