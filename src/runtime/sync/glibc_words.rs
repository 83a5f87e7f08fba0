//! A glibc synchronisation object seen as its fields. The code that runs glibc's own protocol on a
//! process-shared object ([`super::shared_cond`], [`super::shared_rwlock`]), which other processes use
//! with glibc's code at the same time, reads and writes the object's fields atomically, at glibc's byte
//! offsets, through this one view.

use core::sync::atomic::{AtomicI32, AtomicU32, AtomicU64};

/// The fields of a live glibc object of `LEN` bytes, by byte offset.
#[derive(Clone, Copy)]
pub struct GlibcWords<const LEN: usize> {
    base: usize,
}

impl<const LEN: usize> GlibcWords<LEN> {
    /// The fields of the object at `p`.
    ///
    /// # Safety
    /// `p` must point at a live, 8-byte aligned object of `LEN` bytes that stays alive while the result
    /// (and what it gives) is used.
    pub unsafe fn at<T>(p: *mut T) -> GlibcWords<LEN> {
        GlibcWords { base: p as usize }
    }

    /// The field of type `A` at byte `off` (an offset inside the object, aligned for `A`: both checked, at
    /// compile time where `off` is a constant).
    #[inline(always)]
    fn field<A>(&self, off: usize) -> &A {
        assert!(off.is_multiple_of(align_of::<A>()) && off + size_of::<A>() <= LEN);
        // SAFETY: inside the live, 8-byte aligned object (see `at`), at an offset aligned for `A`.
        unsafe { &*((self.base + off) as *const A) }
    }

    #[inline(always)]
    pub fn u32_at(&self, off: usize) -> &AtomicU32 {
        self.field(off)
    }

    #[inline(always)]
    pub fn i32_at(&self, off: usize) -> &AtomicI32 {
        self.field(off)
    }

    #[inline(always)]
    pub fn u64_at(&self, off: usize) -> &AtomicU64 {
        self.field(off)
    }
}
