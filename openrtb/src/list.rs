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

    // Inline: the reader pushes every element of a request's lists, and out
    // of line (as the whole program's optimizer left it) the call was half
    // the cost of a push.
    #[inline]
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
    use std::borrow::Cow;

    /// A list behaves as the `Vec` it replaced, in place or spilled,
    /// however it was built, for every room in place.
    // Each comparison impl is called on purpose, in the forms callers use.
    #[allow(clippy::cmp_owned, clippy::op_ref)]
    fn check<const N: usize>(v: &[i32], split: usize) -> Result<(), TestCaseError> {
        let mut pushed = List::<i32, N>::new();
        for &x in v {
            pushed.push(x);
        }
        let from_vec = List::<i32, N>::from(v.to_vec());
        let collected: List<i32, N> = v.iter().copied().collect();
        let split = split.min(v.len());
        let mut mixed = List::<i32, N>::from(v[..split].to_vec());
        for &x in &v[split..] {
            mixed.push(x);
        }
        for l in [&pushed, &from_vec, &collected, &mixed] {
            prop_assert_eq!(&**l, v);
            prop_assert!(*l == v.to_vec());
            prop_assert!(*l == *v);
            prop_assert!(*l == v);
            prop_assert!(l == &pushed);
            // The readers' differential tests compare requests by `Debug`.
            prop_assert_eq!(format!("{l:?}"), format!("{v:?}"));
            prop_assert_eq!(format!("{l:#?}"), format!("{v:#?}"));
            prop_assert_eq!(l.clone().into_vec(), v.to_vec());
            prop_assert_eq!(l.into_iter().copied().collect::<Vec<_>>(), v.to_vec());
        }
        let mut longer = pushed.clone();
        longer.push(0);
        prop_assert!(longer != pushed);
        if let Some(first) = v.first() {
            // Each comparison looks at the elements, not only the length.
            let mut w = v.to_vec();
            w[0] = first.wrapping_add(1);
            prop_assert!(List::<i32, N>::from(w.clone()) != pushed);
            prop_assert!(pushed != w);
            prop_assert!(pushed != w[..]);
            prop_assert!(pushed != &w[..]);
            if let Ok(a) = <[i32; 3]>::try_from(&w[..]) {
                prop_assert!(pushed != a);
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn behaves_as_vec(v in proptest::collection::vec(any::<i32>(), 0..20), split in 0usize..20) {
            check::<0>(&v, split)?;
            check::<1>(&v, split)?;
            check::<3>(&v, split)?;
            check::<8>(&v, split)?;
        }
    }

    #[test]
    fn strings_spill_past_their_room() {
        let mut l = List::<Cow<'_, str>, 2>::new();
        for s in ["a", "b", "c"] {
            l.push(s.into());
        }
        assert_eq!(l.len(), 3);
        assert_eq!(l.join(","), "a,b,c");
        assert_eq!(format!("{l:?}"), r#"["a", "b", "c"]"#);
    }

    /// Covariant in the body's lifetime, as the request types must be
    /// (this does not compile otherwise).
    #[allow(dead_code)]
    fn covariant<'s, 'l: 's>(l: List<Cow<'l, str>, 3>) -> List<Cow<'s, str>, 3> {
        l
    }

    #[allow(dead_code)]
    fn request_covariant<'s, 'l: 's>(r: &'s crate::BidRequest<'l>) -> &'s crate::BidRequest<'s> {
        r
    }
}
