//! A per-thread spare node vector, so a fresh [`Tape`](crate::Tape) per
//! training step starts with the capacity the last one grew to.
//!
//! Why: a scalar tape records tens of thousands of nodes. Growing the node
//! vector by doubling copied every node again at each step (about 2.8 MB per
//! 10k-op tape, 4% of its instructions), and a program usually builds one
//! tape per step of the same size. When a tape is dropped its emptied vector
//! is kept here (one per thread, at most [`MAX_BYTES`]), and the next
//! [`Tape::new`](crate::Tape::new) on that thread takes it.

use std::any::Any;
use std::cell::RefCell;

use tapegrad_tensor::Element;

use crate::tape::Node;

/// Largest spare vector kept (capacity times node size), so an idle thread
/// holds at most this much.
const MAX_BYTES: usize = 16 * 1024 * 1024;

thread_local! {
    /// An empty `Vec<Node<T>>` for the `T` of the last dropped tape.
    static SPARE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// An empty node vector: the thread's spare one if it holds nodes of `T`,
/// else a new one.
pub(crate) fn take<T: Element>() -> Vec<Node<T>> {
    SPARE
        .try_with(|s| {
            let mut slot = s.try_borrow_mut().ok()?;
            if !slot.as_ref()?.is::<Vec<Node<T>>>() {
                return None;
            }
            slot.take()?.downcast::<Vec<Node<T>>>().ok().map(|b| *b)
        })
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Keeps `nodes` (emptied first) as the thread's spare vector, unless it is
/// too large or no larger than the spare already kept.
pub(crate) fn give<T: Element>(mut nodes: Vec<Node<T>>) {
    if nodes.capacity() == 0 || nodes.capacity() * std::mem::size_of::<Node<T>>() > MAX_BYTES {
        return;
    }
    // Dropping the nodes runs op destructors (user code): do it before the
    // slot is borrowed.
    nodes.clear();
    let _ = SPARE.try_with(|s| {
        let Ok(mut slot) = s.try_borrow_mut() else {
            return;
        };
        let kept = slot
            .as_ref()
            .and_then(|b| b.downcast_ref::<Vec<Node<T>>>())
            .map_or(0, Vec::capacity);
        if slot.is_none() || nodes.capacity() > kept {
            *slot = Some(Box::new(nodes));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tape;
    use tapegrad_tensor::Tensor;

    #[test]
    fn a_new_tape_reuses_the_last_dropped_capacity() {
        let tape = Tape::<f32>::new();
        for _ in 0..100 {
            tape.constant(Tensor::scalar(1.0));
        }
        let cap = tape.nodes.borrow().capacity();
        drop(tape);
        let tape = Tape::<f32>::new();
        assert!(tape.is_empty());
        assert_eq!(tape.nodes.borrow().capacity(), cap);
        // The spare is taken, not shared: a second tape starts empty.
        assert_eq!(Tape::<f32>::new().nodes.borrow().capacity(), 0);
    }

    #[test]
    fn a_spare_of_another_element_type_is_left_alone() {
        give::<f64>(Vec::with_capacity(8));
        assert_eq!(take::<f32>().capacity(), 0);
        assert_eq!(take::<f64>().capacity(), 8);
    }
}
