//! A short list kept in place: the request's code and string lists (`battr`,
//! `api`, `cat`, `mimes`, ...) hold a handful of elements each, and a vector
//! per list was an allocation and a free per list per request, about half
//! of the reader's allocations.
//!
//! Not `smallvec`: its `SmallVec<[T; N]>` names its element type through
//! an associated type, which makes it invariant in `T`, and the request's
//! types must stay covariant in the body's lifetime (a `&BidRequest<'long>`
//! is passed where a `&BidRequest<'short>` is expected all over the
//! bidder). This one holds a plain `[T; N]` or a `Vec<T>`, so it is.

use std::fmt;
use std::ops::Deref;

/// Up to `N` elements in place, more on the heap. Reads as a slice.
#[derive(Clone)]
pub struct List<T, const N: usize>(Repr<T, N>);

#[derive(Clone)]
enum Repr<T, const N: usize> {
    /// The first `len` of `items` are the list; the rest are defaults.
    Inline {
        len: u8,
        items: [T; N],
    },
    Heap(Vec<T>),
}

impl<T: Default, const N: usize> List<T, N> {
    const FITS: () = assert!(N <= u8::MAX as usize);

    pub fn new() -> Self {
        let () = Self::FITS;
        List(Repr::Inline {
            len: 0,
            items: std::array::from_fn(|_| T::default()),
        })
    }

    pub fn push(&mut self, value: T) {
        match &mut self.0 {
            Repr::Inline { len, items } => {
                let at = usize::from(*len);
                if at < N {
                    items[at] = value;
                    *len += 1;
                } else {
                    let mut heap = Vec::with_capacity(2 * N.max(2));
                    heap.extend(items.iter_mut().map(std::mem::take));
                    heap.push(value);
                    self.0 = Repr::Heap(heap);
                }
            }
            Repr::Heap(heap) => heap.push(value),
        }
    }

    /// The elements as a vector (allocating if they were in place).
    pub fn into_vec(self) -> Vec<T> {
        match self.0 {
            Repr::Inline { len, items } => items.into_iter().take(usize::from(len)).collect(),
            Repr::Heap(heap) => heap,
        }
    }
}

impl<T, const N: usize> Deref for List<T, N> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match &self.0 {
            Repr::Inline { len, items } => &items[..usize::from(*len)],
            Repr::Heap(heap) => heap,
        }
    }
}

impl<T: Default, const N: usize> Default for List<T, N> {
    fn default() -> Self {
        List::new()
    }
}

impl<T: fmt::Debug, const N: usize> fmt::Debug for List<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: PartialEq, const N: usize> PartialEq for List<T, N> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: Eq, const N: usize> Eq for List<T, N> {}

// Compared with arrays, slices and vectors as a `Vec` is, so that code
// written against the vectors these lists replaced reads the same.
impl<T: PartialEq<U>, U, const N: usize, const M: usize> PartialEq<[U; M]> for List<T, N> {
    fn eq(&self, other: &[U; M]) -> bool {
        **self == other[..]
    }
}

impl<T: PartialEq<U>, U, const N: usize> PartialEq<[U]> for List<T, N> {
    fn eq(&self, other: &[U]) -> bool {
        **self == *other
    }
}

impl<T: PartialEq<U>, U, const N: usize> PartialEq<&[U]> for List<T, N> {
    fn eq(&self, other: &&[U]) -> bool {
        **self == **other
    }
}

impl<T: PartialEq<U>, U, const N: usize> PartialEq<Vec<U>> for List<T, N> {
    fn eq(&self, other: &Vec<U>) -> bool {
        **self == other[..]
    }
}

impl<T: Default, const N: usize> From<Vec<T>> for List<T, N> {
    fn from(v: Vec<T>) -> Self {
        if v.len() > N {
            return List(Repr::Heap(v));
        }
        v.into_iter().collect()
    }
}

impl<T: Default, const N: usize> FromIterator<T> for List<T, N> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut out = List::new();
        for x in iter {
            out.push(x);
        }
        out
    }
}

impl<'l, T, const N: usize> IntoIterator for &'l List<T, N> {
    type Item = &'l T;
    type IntoIter = std::slice::Iter<'l, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever is pushed reads back in order, in place or spilled,
        /// and every way in makes the same list.
        #[test]
        fn reads_as_the_vector_it_was_built_from(v in proptest::collection::vec(any::<i32>(), 0..12)) {
            let mut pushed = List::<i32, 4>::new();
            for &x in &v {
                pushed.push(x);
            }
            prop_assert_eq!(&*pushed, &v[..]);
            prop_assert_eq!(&pushed, &List::<i32, 4>::from(v.clone()));
            prop_assert_eq!(&pushed, &v.iter().copied().collect::<List<i32, 4>>());
            prop_assert_eq!(pushed.clone().into_vec(), v);
        }
    }

    #[test]
    fn strings_spill_past_their_room() {
        let mut l = List::<std::borrow::Cow<'_, str>, 2>::new();
        for s in ["a", "b", "c"] {
            l.push(s.into());
        }
        assert_eq!(l.len(), 3);
        assert_eq!(l.join(","), "a,b,c");
        assert_eq!(format!("{l:?}"), r#"["a", "b", "c"]"#);
    }
}
