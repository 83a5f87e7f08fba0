//! Coroutine stacks: lazily committed, guarded without one mapping per stack, returned to the kernel when
//! no longer hot.
//!
//! Stacks come in power-of-two slot classes. Each class carves slots out of large `MAP_NORESERVE` regions
//! (one VMA for thousands of stacks), so 100,000+ coroutines stay far below `vm.max_map_count`, and only
//! touched pages cost memory. Every slot starts with a guard region installed with `MADV_GUARD_INSTALL`
//! (page-table markers, no VMA split); where the kernel lacks it, a `PROT_NONE` guard is used while the
//! mapping budget allows, and a canary word at the stack limit is checked at every switch in any case.
//! An overflow that hits a guard is reported by the SIGSEGV handler in [`super::signals`].
//!
//! Slots of 2 MiB and more start 1 MiB past a 2 MiB boundary: a stack's hot top pages and the guard of the
//! slot above then share one page-table page instead of needing two.

use super::lock::Lock;
use super::sys::mem;
use corosensei::stack::{Stack, StackPointer};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

const MIN_SLOT_SHIFT: u32 = 17; // 128 KiB
const MAX_SLOT_SHIFT: u32 = 40; // 1 TiB
const CLASSES: usize = (MAX_SLOT_SHIFT - MIN_SLOT_SHIFT + 1) as usize;
const SMALL_GUARD: usize = 64 << 10;
const LARGE_GUARD: usize = 1 << 20;
const TWO_MIB: usize = 2 << 20;
/// Finished stacks kept committed per class for quick reuse; beyond this their pages are discarded.
const HOT_PER_CLASS: usize = 32;
/// PROT_NONE guards (one extra VMA each) allowed when MADV_GUARD_INSTALL is unavailable.
const MPROTECT_GUARD_BUDGET: usize = 16_384;
const CANARY: u64 = 0xA5C0_57AC_CA9A_17E5;

/// A coroutine stack: `[limit, base)` is usable, growing down from `base`.
pub struct CoStack {
    base: usize,
    limit: usize,
    /// Size the program asked for (reported on overflow).
    pub requested: usize,
    /// Slot this stack came from, or None for a stack the program supplied (`pthread_attr_setstack`).
    slot: Option<(u8, usize)>,
    /// True when the slot has no guard markers (old kernel): a canary word at the limit stands in, checked
    /// at every switch. It is not used otherwise, since writing it would commit the stack's lowest page.
    pub canary: bool,
}

// SAFETY: base and limit describe memory owned by this stack and aligned to 16 bytes.
unsafe impl Stack for CoStack {
    fn base(&self) -> StackPointer {
        StackPointer::new(self.base).expect("non-null stack base")
    }
    fn limit(&self) -> StackPointer {
        StackPointer::new(self.limit).expect("non-null stack limit")
    }
}

impl CoStack {
    /// Lowest usable address.
    pub fn low(&self) -> usize {
        self.limit
    }
    pub fn size(&self) -> usize {
        self.base - self.limit
    }
    /// The guard region below the stack, if the runtime owns one.
    pub fn guard(&self) -> Option<(usize, usize)> {
        self.slot.map(|(class, slot)| (slot, guard_len(class_slot_size(class as usize))))
    }
    fn set_canary(&self) {
        // SAFETY: as above.
        unsafe { (self.limit as *mut u64).write(CANARY) }
    }

    /// A stack in memory the program supplied; the program owns it and its guard, if any.
    pub fn user(low: usize, size: usize) -> CoStack {
        let base = (low + size) & !15;
        let limit = (low + 15) & !15;
        CoStack { base, limit, requested: size, slot: None, canary: false }
    }
}

/// False once something wrote over the canary word at the limit of a runtime-owned stack (whose lowest
/// usable address is `low`): the stack overflowed past its guard or the guard is missing.
#[inline]
pub fn canary_intact_at(low: usize) -> bool {
    // SAFETY: the canary word is the first word of a runtime-owned stack, mapped for the process's life.
    unsafe { (low as *const u64).read() == CANARY }
}

fn class_slot_size(class: usize) -> usize {
    1usize << (class as u32 + MIN_SLOT_SHIFT)
}

fn guard_len(slot_size: usize) -> usize {
    if slot_size >= 2 * LARGE_GUARD { LARGE_GUARD } else { SMALL_GUARD }
}

struct Class {
    /// Next never-used slot in the current region, and the region's end.
    next: usize,
    end: usize,
    hot: Vec<usize>,
    cold: Vec<usize>,
}

pub struct StackPool {
    classes: [Lock<Class>; CLASSES],
}

static MPROTECT_GUARDS: AtomicUsize = AtomicUsize::new(0);
/// Slots carved without any guard (kernel without MADV_GUARD_INSTALL and the PROT_NONE budget spent).
pub static UNGUARDED: AtomicUsize = AtomicUsize::new(0);
/// Whether the kernel takes MADV_GUARD_INSTALL (assumed until it refuses).
static GUARD_MARKERS: AtomicBool = AtomicBool::new(true);

impl StackPool {
    pub const fn new() -> StackPool {
        StackPool { classes: [const { Lock::new(Class { next: 0, end: 0, hot: Vec::new(), cold: Vec::new() }) }; CLASSES] }
    }

    /// A stack with at least `size` usable bytes, or None if the address space is exhausted (EAGAIN).
    pub fn get(&self, size: usize) -> Option<CoStack> {
        let size = size.max(16 << 10);
        let want = size.checked_add(SMALL_GUARD)?.checked_next_power_of_two()?;
        let mut class = want.trailing_zeros().saturating_sub(MIN_SLOT_SHIFT) as usize;
        if size + guard_len(class_slot_size(class)) > class_slot_size(class) {
            class += 1;
        }
        if class >= CLASSES {
            return None;
        }
        let slot_size = class_slot_size(class);
        let guard = guard_len(slot_size);
        let slot = {
            let mut c = self.classes[class].lock();
            match c.hot.pop().or_else(|| c.cold.pop()) {
                Some(s) => s,
                None => {
                    if c.next + slot_size > c.end {
                        let (start, end) = new_region(slot_size)?;
                        c.next = start;
                        c.end = end;
                    }
                    let s = c.next;
                    c.next += slot_size;
                    drop(c);
                    if !install_guard(s, guard) {
                        UNGUARDED.fetch_add(1, Ordering::Relaxed);
                    }
                    s
                }
            }
        };
        let canary = !GUARD_MARKERS.load(Ordering::Relaxed);
        let stack =
            CoStack { base: slot + slot_size, limit: slot + guard, requested: size, slot: Some((class as u8, slot)), canary };
        if canary {
            stack.set_canary();
        }
        Some(stack)
    }

    /// Takes a stack back once no code runs on it.
    pub fn put(&self, stack: CoStack) {
        let Some((class, slot)) = stack.slot else { return };
        let mut c = self.classes[class as usize].lock();
        if c.hot.len() < HOT_PER_CLASS {
            c.hot.push(slot);
        } else {
            drop(c);
            mem::discard(stack.limit as *mut u8, stack.base - stack.limit);
            self.classes[class as usize].lock().cold.push(slot);
        }
    }
}

/// Reserves a region for slots of `slot_size`; returns the first slot address and the region end.
fn new_region(slot_size: usize) -> Option<(usize, usize)> {
    let region = (slot_size * 256).max(1 << 32).min(1 << 46);
    let len = region + TWO_MIB * 2;
    let p = mem::reserve(len).ok()? as usize;
    let start = if slot_size >= TWO_MIB { ((p + TWO_MIB - 1) & !(TWO_MIB - 1)) + TWO_MIB / 2 } else { p };
    let end = p + len;
    Some((start, end - ((end - start) % slot_size)))
}

/// Installs the guard below a new slot; false if the slot stays unguarded.
fn install_guard(slot: usize, len: usize) -> bool {
    if GUARD_MARKERS.load(Ordering::Relaxed) {
        if mem::guard_install(slot as *mut u8, len) {
            return true;
        }
        GUARD_MARKERS.store(false, Ordering::Relaxed);
    }
    MPROTECT_GUARDS.fetch_add(1, Ordering::Relaxed) < MPROTECT_GUARD_BUDGET && mem::protect_none(slot as *mut u8, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_up_and_reuse() {
        let pool = StackPool::new();
        let s = pool.get(8 << 20).unwrap();
        assert!(s.size() >= 8 << 20);
        assert!(!s.canary || canary_intact_at(s.low()));
        let (g, glen) = s.guard().unwrap();
        assert_eq!(g + glen, s.low());
        // The stack is writable at both ends.
        unsafe {
            ((s.base - 8) as *mut u64).write(1);
            ((s.low() + 64) as *mut u64).write(1);
        }
        let low = s.low();
        pool.put(s);
        let t = pool.get(8 << 20).unwrap();
        assert_eq!(t.low(), low, "hot stack reused");
        let small = pool.get(64 << 10).unwrap();
        assert!(small.size() >= 64 << 10 && small.size() < 8 << 20);
        assert!(pool.get(usize::MAX / 2).is_none());
    }

    #[test]
    fn many_stacks_one_mapping_each_region() {
        let pool = StackPool::new();
        let stacks: Vec<_> = (0..2000).map(|_| pool.get(256 << 10).unwrap()).collect();
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap().lines().count();
        assert!(maps < 1000, "{maps} mappings for 2000 stacks");
        for s in stacks {
            pool.put(s);
        }
    }
}
