//! [`MpiComm`]: the [`Communicator`] over MPI (rsmpi), behind the `mpi`
//! feature.

use std::os::raw::{c_int, c_void};

use mpi::ffi;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{AsRaw, Communicator as _, CommunicatorCollectives as _, Root as _};

use crate::comm::{check_root, Buffer, Communicator, PendingReduce};
use crate::error::{Error, Result};

/// The MPI world of a job started by `mpirun` (or `mpiexec`, or a batch
/// system): rank and size come from MPI. Create it once, at the start of
/// `main`; MPI is finalised when it is dropped.
///
/// MPI's default error handler is in force: a failed MPI call stops the
/// job, so collectives here only return errors for bad arguments.
///
/// ```no_run
/// use tapegrad_distributed::{Communicator, MpiComm};
/// let comm = MpiComm::init()?;
/// comm.abort_on_panic();
/// println!("rank {} of {}", comm.rank(), comm.size());
/// # Ok::<(), tapegrad_distributed::Error>(())
/// ```
pub struct MpiComm {
    world: SimpleCommunicator,
    // Dropped last: finalises MPI.
    _universe: mpi::environment::Universe,
}

impl std::fmt::Debug for MpiComm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MpiComm(rank {} of {})", self.rank(), self.size())
    }
}

impl MpiComm {
    /// Initialises MPI.
    ///
    /// # Errors
    /// If MPI was already initialised in this process.
    pub fn init() -> Result<MpiComm> {
        let universe = mpi::initialize().ok_or_else(|| {
            Error::invalid(
                "MpiComm::init",
                "MPI is already initialised in this process",
            )
        })?;
        Ok(MpiComm {
            world: universe.world(),
            _universe: universe,
        })
    }

    /// Installs a panic hook that prints the panic with this rank's number
    /// and then calls `MPI_Abort`, so that a panicking rank stops the whole
    /// job at once instead of leaving the others waiting in a collective.
    pub fn abort_on_panic(&self) {
        let rank = self.rank();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            eprintln!("rank {rank} panicked; stopping the job");
            previous(info);
            SimpleCommunicator::world().abort(101);
        }));
    }
}

fn mpi_count(op: &str, n: usize) -> Result<c_int> {
    c_int::try_from(n).map_err(|_| {
        Error::invalid(
            op,
            format!(
                "{n} elements is more than MPI's count limit of {}",
                c_int::MAX
            ),
        )
    })
}

/// A started `MPI_Iallreduce` with the buffers it reads and writes. The
/// buffers are owned here, on the heap, so they stay put until the request
/// completes; dropping it unfinished waits first.
struct MpiPending {
    send: Buffer,
    recv: Option<Buffer>,
    request: ffi::MPI_Request,
    done: bool,
}

// The raw request is a handle owned by this value alone.
unsafe impl Send for MpiPending {}

impl MpiPending {
    fn finish(&mut self) {
        if !self.done {
            // SAFETY: `request` came from MPI_Iallreduce and is waited for once.
            unsafe {
                ffi::MPI_Wait(&mut self.request, ffi::RSMPI_STATUS_IGNORE);
            }
            self.done = true;
        }
    }
}

impl PendingReduce for MpiPending {
    fn test(&mut self) -> bool {
        if !self.done {
            let mut flag: c_int = 0;
            // SAFETY: a live request of this value; MPI_Test frees it when done.
            unsafe {
                ffi::MPI_Test(&mut self.request, &mut flag, ffi::RSMPI_STATUS_IGNORE);
            }
            self.done = flag != 0;
        }
        self.done
    }

    fn wait(mut self: Box<Self>) -> Result<Buffer> {
        self.finish();
        let _ = &self.send;
        Ok(self.recv.take().expect("taken once"))
    }
}

impl Drop for MpiPending {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Communicator for MpiComm {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn start_all_reduce(&self, buf: Buffer) -> Result<Box<dyn PendingReduce>> {
        let count = mpi_count("all_reduce", buf.len())?;
        let mut recv = match &buf {
            Buffer::F32(v) => Buffer::F32(vec![0.0; v.len()]),
            Buffer::F64(v) => Buffer::F64(vec![0.0; v.len()]),
        };
        let (send_ptr, recv_ptr, datatype) = match (&buf, &mut recv) {
            (Buffer::F32(s), Buffer::F32(r)) => (
                s.as_ptr() as *const c_void,
                r.as_mut_ptr() as *mut c_void,
                // SAFETY: reading an immutable extern handle.
                unsafe { ffi::RSMPI_FLOAT },
            ),
            (Buffer::F64(s), Buffer::F64(r)) => (
                s.as_ptr() as *const c_void,
                r.as_mut_ptr() as *mut c_void,
                // SAFETY: as above.
                unsafe { ffi::RSMPI_DOUBLE },
            ),
            _ => unreachable!("recv is made with send's type"),
        };
        let mut pending = Box::new(MpiPending {
            send: buf,
            recv: Some(recv),
            // SAFETY: reading an immutable extern handle.
            request: unsafe { ffi::RSMPI_REQUEST_NULL },
            done: false,
        });
        // SAFETY: both buffers live on the heap inside `pending`, which
        // waits for the request before it frees them (finish/Drop); the
        // vectors' heap storage does not move when the Box moves.
        unsafe {
            ffi::MPI_Iallreduce(
                send_ptr,
                recv_ptr,
                count,
                datatype,
                ffi::RSMPI_SUM,
                self.world.as_raw(),
                &mut pending.request,
            );
        }
        Ok(pending)
    }

    fn broadcast(&self, buf: &mut Buffer, root: usize) -> Result<()> {
        check_root("broadcast", root, self.size())?;
        mpi_count("broadcast", buf.len())?;
        let p = self.world.process_at_rank(root as i32);
        match buf {
            Buffer::F32(v) => p.broadcast_into(&mut v[..]),
            Buffer::F64(v) => p.broadcast_into(&mut v[..]),
        }
        Ok(())
    }

    fn broadcast_bytes(&self, bytes: &mut Vec<u8>, root: usize) -> Result<()> {
        check_root("broadcast_bytes", root, self.size())?;
        let p = self.world.process_at_rank(root as i32);
        let mut len = bytes.len() as u64;
        p.broadcast_into(&mut len);
        let len = usize::try_from(len)
            .map_err(|_| Error::invalid("broadcast_bytes", "the message is too long"))?;
        mpi_count("broadcast_bytes", len)?;
        bytes.resize(len, 0);
        p.broadcast_into(&mut bytes[..]);
        Ok(())
    }

    fn barrier(&self) -> Result<()> {
        self.world.barrier();
        Ok(())
    }

    fn abort(&self, code: i32, message: &str) -> ! {
        eprintln!("rank {} stopped the job: {message}", self.rank());
        self.world.abort(code)
    }
}
