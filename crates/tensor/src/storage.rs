//! The buffer behind a tensor, shared between views.
//!
//! A one-element buffer is kept inline instead of behind an `Arc`: scalar
//! tapes (micrograd-style models) create millions of 0-d tensors, and this
//! makes each of them allocation-free. Larger buffers are an `Arc` of a `Vec`
//! (see [`Data`] for why its elements may start a few places in),
//! shared by every view, which is what makes `Tensor` cheap to clone and
//! `Send + Sync` without locks. A buffer is written only through
//! [`Storage::unique_mut`], which hands it out only while a single handle
//! owns it (copy-on-write, as `Arc::make_mut`), so no view ever sees its
//! values change.

use std::sync::Arc;

use crate::buffer::Data;
use crate::Element;

#[derive(Clone, Debug)]
pub(crate) enum Storage<T: Element> {
    Scalar([T; 1]),
    Shared(Arc<Buffer<T>>),
}

/// A heap buffer that, when its last view is gone, offers itself to the
/// [pool](crate::pool) of reusable buffers.
#[derive(Debug)]
pub(crate) struct Buffer<T: Element>(Data<T>);

impl<T: Element> Drop for Buffer<T> {
    fn drop(&mut self) {
        crate::pool::give(std::mem::take(&mut self.0).into_raw_vec());
    }
}

impl<T: Element> Storage<T> {
    pub(crate) fn from_data(d: Data<T>) -> Self {
        match d.as_slice() {
            &[x] => Storage::Scalar([x]),
            _ => Storage::Shared(Arc::new(Buffer(d))),
        }
    }

    #[inline]
    pub(crate) fn as_slice(&self) -> &[T] {
        match self {
            Storage::Scalar(x) => x,
            Storage::Shared(v) => v.0.as_slice(),
        }
    }

    /// The whole buffer for writing, if this handle is its only owner (an
    /// inline scalar always is); `None` while another tensor shares it.
    #[inline]
    pub(crate) fn unique_mut(&mut self) -> Option<&mut [T]> {
        match self {
            Storage::Scalar(x) => Some(x),
            Storage::Shared(a) => Arc::get_mut(a).map(|b| b.0.as_mut_slice()),
        }
    }

    /// Whether two storages are the same buffer (views of one another).
    pub(crate) fn same_buffer(&self, other: &Self) -> bool {
        match (self, other) {
            (Storage::Shared(a), Storage::Shared(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}
