//! Per-parameter optimiser state, kept by name in the parameter's own
//! element type.
//!
//! Design note: [`Sgd`](super::Sgd) and [`Adam`](super::Adam) are not
//! generic over the element type: one `Sgd::new(0.1)` serves an `f32` or an
//! `f64` model, and `Optimizer<T>::step` picks `T`. Their buffers are still
//! stored as `Vec<T>`, like PyTorch's state tensors, so an update never
//! converts. Each entry is therefore a boxed value (`Vec<T>`, `Moments<T>`)
//! behind a small object-safe trait that can clone, print and downcast it.
//! The alternatives were a type parameter on the optimisers (a breaking
//! change for every `Sgd` field and annotation in user code) or `f64` state
//! (what we had: two conversions and an allocation per parameter per step).

use std::any::Any;
use std::fmt::Debug;

use indexmap::IndexMap;

use crate::error::{Error, Result};

/// A value that can be kept in a [`StateMap`].
pub(crate) trait StateEntry: Clone + Debug + Send + Sync + 'static {}

impl<T: tapegrad_tensor::Element> StateEntry for Vec<T> {}

/// The object-safe face of a [`StateEntry`].
trait AnyState: Debug + Send + Sync {
    fn clone_box(&self) -> Box<dyn AnyState>;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

// Only for `StateEntry` types, so `Box<dyn AnyState>` is not itself an
// `AnyState` and method calls on a box cannot pick the box's impl by mistake.
impl<S: StateEntry> AnyState for S {
    fn clone_box(&self) -> Box<dyn AnyState> {
        Box::new(self.clone())
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

impl Clone for Box<dyn AnyState> {
    fn clone(&self) -> Self {
        (**self).clone_box()
    }
}

/// Optimiser state by parameter name, in first-seen order.
#[derive(Clone, Debug, Default)]
pub(crate) struct StateMap(IndexMap<String, Box<dyn AnyState>>);

impl StateMap {
    /// The state of `name`, made by `init` if there is none yet; the flag
    /// says whether it was just made.
    ///
    /// # Errors
    /// If `name` has state of another type: the same optimiser stepped an
    /// `f32` parameter and now an `f64` one of the same name.
    pub(crate) fn get_or_insert_with<S: StateEntry>(
        &mut self,
        name: &str,
        init: impl FnOnce() -> S,
    ) -> Result<(&mut S, bool)> {
        let fresh = !self.0.contains_key(name);
        if fresh {
            self.0.insert(name.to_string(), Box::new(init()));
        }
        let entry = self.0.get_mut(name).map(|b| (**b).as_any_mut());
        match entry.and_then(|e| e.downcast_mut::<S>()) {
            Some(s) => Ok((s, fresh)),
            None => Err(Error::invalid(
                "Optimizer::step",
                format!(
                    "parameter {name:?} has optimiser state of another element type \
                     (one optimiser cannot step both an f32 and an f64 model)"
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_typed_state_and_clones_it_deeply() {
        let mut map = StateMap::default();
        let (v, fresh) = map.get_or_insert_with("w", || vec![1.0f32; 3]).unwrap();
        assert!(fresh);
        v[0] = 5.0;
        let copy = map.clone();
        let (v, fresh) = map.get_or_insert_with("w", || vec![0.0f32; 3]).unwrap();
        assert!(!fresh);
        assert_eq!(v, &vec![5.0, 1.0, 1.0]);
        v[1] = 7.0;
        let mut copy = copy;
        let (c, _) = copy.get_or_insert_with("w", Vec::<f32>::new).unwrap();
        assert_eq!(c, &vec![5.0, 1.0, 1.0], "a clone does not share buffers");
        assert!(format!("{map:?}").contains("5.0"));
    }

    #[test]
    fn another_element_type_is_an_error() {
        let mut map = StateMap::default();
        map.get_or_insert_with("w", || vec![1.0f32]).unwrap();
        let err = map
            .get_or_insert_with("w", || vec![1.0f64])
            .unwrap_err()
            .to_string();
        assert!(err.contains("another element type"), "{err}");
    }
}
