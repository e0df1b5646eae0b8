//! [`Shape`]: the dimensions of a tensor or of a value on a tape, as one
//! small owned type.

use std::borrow::Borrow;
use std::fmt;
use std::ops::{Deref, DerefMut, Index, IndexMut};
use std::slice::SliceIndex;

use smallvec::SmallVec;

/// The dimensions of a tensor, owned: what [`Tensor::shape`] and
/// `Var::shape` (in `tapegrad-autograd`) both return.
///
/// It reads like a `&[usize]` (it derefs to one, so `len`, `iter`,
/// indexing and slicing all work; `s[i] = d` changes a dimension in place) and compares with shapes written any
/// way: another `Shape`, a slice, an array or a `Vec`, by value or by
/// reference. It prints like a slice, `[2, 3]`, with `{:?}` and `{}`.
/// Up to four dimensions are stored inline, so making one does not
/// allocate.
///
/// Why an owned type rather than `&[usize]`: a `Var` cannot lend out a
/// borrow of its value's dimensions (the value lives inside the tape), so
/// for `t.shape()` to mean the same on a tensor and on a value, both return
/// this. [`Tensor::dims`] is the zero-copy `&[usize]`, for hot paths.
///
/// ```
/// use tapegrad_tensor::{Shape, Tensor};
/// let t = Tensor::<f32>::zeros(&[2, 3]);
/// let s: Shape = t.shape();
/// assert_eq!(s, [2, 3]);
/// assert_eq!(s, &[2, 3]);
/// assert_eq!(s, vec![2, 3]);
/// assert_eq!(s, t.dims());
/// assert_eq!((s.len(), s[1], s.iter().product::<usize>()), (2, 3, 6));
/// assert_eq!(format!("{s:?} {s}"), "[2, 3] [2, 3]");
/// // A `Shape` goes wherever a `&[usize]` does.
/// assert_eq!(Tensor::<f32>::ones(&s).shape(), s);
/// assert_eq!(Shape::from(vec![4, 5]).to_vec(), vec![4, 5]);
/// assert_eq!(Tensor::scalar(1.0f32).shape(), []);
/// ```
///
/// [`Tensor::shape`]: crate::Tensor::shape
/// [`Tensor::dims`]: crate::Tensor::dims
#[derive(PartialEq, Eq, Hash, Default)]
pub struct Shape(pub(crate) SmallVec<[usize; 4]>);

impl Shape {
    /// A shape holding `s`, copied without a `memcpy` call when it fits
    /// inline (`SmallVec`'s `clone` and `From<&[_]>` go through `extend`,
    /// and `from_slice` through `memcpy`; both show up on scalar tapes that
    /// build millions of 0-d layouts).
    #[inline]
    pub(crate) fn of(s: &[usize]) -> Shape {
        let buf = match *s {
            [] => [0; 4],
            [a] => [a, 0, 0, 0],
            [a, b] => [a, b, 0, 0],
            [a, b, c] => [a, b, c, 0],
            [a, b, c, d] => [a, b, c, d],
            _ => return Shape(SmallVec::from_slice(s)),
        };
        Shape(SmallVec::from_buf_and_len(buf, s.len()))
    }

    /// The dimensions as a slice.
    #[inline]
    pub fn as_slice(&self) -> &[usize] {
        &self.0
    }
}

impl Clone for Shape {
    #[inline]
    fn clone(&self) -> Self {
        Shape::of(&self.0)
    }
}

impl Deref for Shape {
    type Target = [usize];
    #[inline]
    fn deref(&self) -> &[usize] {
        &self.0
    }
}

/// Dimensions can be changed in place (`s[0] = 1`), not added or removed.
impl DerefMut for Shape {
    #[inline]
    fn deref_mut(&mut self) -> &mut [usize] {
        &mut self.0
    }
}

impl AsRef<[usize]> for Shape {
    #[inline]
    fn as_ref(&self) -> &[usize] {
        &self.0
    }
}

/// Consistent with `Eq` and `Hash` (both are the slice's), so a `Shape`
/// key can be looked up by a `&[usize]`.
impl Borrow<[usize]> for Shape {
    #[inline]
    fn borrow(&self) -> &[usize] {
        &self.0
    }
}

impl<I: SliceIndex<[usize]>> Index<I> for Shape {
    type Output = I::Output;
    #[inline]
    fn index(&self, i: I) -> &I::Output {
        &self.0[i]
    }
}

impl<I: SliceIndex<[usize]>> IndexMut<I> for Shape {
    #[inline]
    fn index_mut(&mut self, i: I) -> &mut I::Output {
        &mut self.0[i]
    }
}

impl<'a> IntoIterator for &'a Shape {
    type Item = &'a usize;
    type IntoIter = std::slice::Iter<'a, usize>;
    #[inline]
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl FromIterator<usize> for Shape {
    fn from_iter<I: IntoIterator<Item = usize>>(iter: I) -> Self {
        Shape(iter.into_iter().collect())
    }
}

impl From<&[usize]> for Shape {
    #[inline]
    fn from(s: &[usize]) -> Self {
        Shape::of(s)
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    #[inline]
    fn from(s: [usize; N]) -> Self {
        Shape::of(&s)
    }
}

impl<const N: usize> From<&[usize; N]> for Shape {
    #[inline]
    fn from(s: &[usize; N]) -> Self {
        Shape::of(s)
    }
}

impl From<Vec<usize>> for Shape {
    fn from(v: Vec<usize>) -> Self {
        Shape(SmallVec::from_vec(v))
    }
}

impl From<Shape> for Vec<usize> {
    fn from(s: Shape) -> Self {
        s.0.into_vec()
    }
}

/// Exactly like a slice: `[2, 3]`, `[]` for a 0-d tensor.
impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_slice(), f)
    }
}

/// The same as `Debug`: `[2, 3]`.
impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_slice(), f)
    }
}

/// `Shape == rhs` and `rhs == Shape` for each way of writing a shape; the
/// orphan rule allows both directions, as the other side is a std type.
macro_rules! eq_both_ways {
    ($($rhs:ty),*) => {$(
        impl PartialEq<$rhs> for Shape {
            #[inline]
            fn eq(&self, other: &$rhs) -> bool {
                self.as_slice() == &other[..]
            }
        }
        impl PartialEq<Shape> for $rhs {
            #[inline]
            fn eq(&self, other: &Shape) -> bool {
                &self[..] == other.as_slice()
            }
        }
    )*};
}

eq_both_ways!([usize], &[usize], Vec<usize>);

impl<const N: usize> PartialEq<[usize; N]> for Shape {
    #[inline]
    fn eq(&self, other: &[usize; N]) -> bool {
        self.as_slice() == other
    }
}

impl<const N: usize> PartialEq<Shape> for [usize; N] {
    #[inline]
    fn eq(&self, other: &Shape) -> bool {
        self == other.as_slice()
    }
}

impl<const N: usize> PartialEq<&[usize; N]> for Shape {
    #[inline]
    fn eq(&self, other: &&[usize; N]) -> bool {
        self.as_slice() == *other
    }
}

impl<const N: usize> PartialEq<Shape> for &[usize; N] {
    #[inline]
    fn eq(&self, other: &Shape) -> bool {
        *self == other.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::Shape;

    #[test]
    fn compares_with_every_spelling_both_ways() {
        let s = Shape::from(&[2usize, 3][..]);
        let v = vec![2usize, 3];
        let sl: &[usize] = &v;
        assert_eq!(s, [2, 3]);
        assert_eq!([2, 3], s);
        assert_eq!(s, &[2, 3]);
        assert_eq!(&[2, 3], s);
        assert_eq!(s, v);
        assert_eq!(v, s);
        assert_eq!(s, sl);
        assert_eq!(sl, s);
        assert_eq!(s, *sl);
        assert_eq!(*sl, s);
        assert_eq!(s, s.clone());
        assert_ne!(s, [2, 3, 1]);
        assert_ne!(s, [3, 2]);
        assert_eq!(Shape::default(), []);
    }

    #[test]
    fn prints_like_a_slice() {
        for dims in [&[][..], &[7], &[1, 2, 3, 4], &[1, 2, 3, 4, 5, 6]] {
            let s = Shape::from(dims);
            assert_eq!(format!("{s:?}"), format!("{dims:?}"));
            assert_eq!(s.to_string(), format!("{dims:?}"));
            assert_eq!(format!("{s:#?}"), format!("{dims:#?}"));
        }
    }

    #[test]
    fn reads_like_a_slice() {
        let s: Shape = vec![4, 5, 6, 7, 8].into();
        assert_eq!((s.len(), s[0], &s[1..3]), (5, 4, &[5, 6][..]));
        assert_eq!((&s).into_iter().sum::<usize>(), 30);
        assert_eq!(s.iter().copied().collect::<Shape>(), s);
        assert_eq!(Vec::from(s.clone()), s.to_vec());
        let mut seen = std::collections::HashSet::new();
        seen.insert(s.clone());
        assert!(seen.contains(&[4, 5, 6, 7, 8][..]));
        assert_eq!(Shape::from([1, 2]), Shape::from(&[1, 2]));
    }
}
