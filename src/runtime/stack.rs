//! Coroutine stacks: lazily committed, guarded without one mapping per stack, returned to the kernel when
//! no longer hot.
//!
//! Stacks come in classes of power-of-two capacity. A slot holds its class's capacity, the TCB area and the
//! guard, and nothing more (no rounding of the whole slot to a power of two), so small stacks pack densely
//! and share page-table pages: a 64 KiB stack takes a 136 KiB slot, 15 to a page-table page, where a
//! 256 KiB power-of-two slot fitted 8. Each class carves slots out of large `MAP_NORESERVE` regions
//! (one VMA for thousands of stacks), so 100,000+ coroutines stay far below `vm.max_map_count`, and only
//! touched pages cost memory. Every slot starts with a guard region installed with `MADV_GUARD_INSTALL`
//! (page-table markers, no VMA split); where the kernel lacks it, a `PROT_NONE` guard is used while the
//! mapping budget allows, plus a canary word at the stack limit checked at every switch. An overflow that
//! hits a guard is reported by the SIGSEGV handler in [`super::signals`].
//!
//! As in glibc, the top of a slot also holds the thread's TCB and static TLS (see [`super::thread`]), so a
//! thread's memory is one unit: kept hot for reuse, or discarded whole with `MADV_DONTNEED`.
//!
//! Classes of 2 MiB and more have a 1 MiB guard and slots in whole 2 MiB units (8 MiB stacks: 10 MiB slots)
//! that start 1 MiB past a 2 MiB boundary: a stack's hot top pages and the guard of the slot above then
//! share one page-table page instead of needing two.

use super::lock::Lock;
use super::sys::mem;
use corosensei::stack::{Stack, StackPointer};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

const MIN_CAP_SHIFT: u32 = 14; // 16 KiB, the smallest stack the shim gives
const MAX_CAP_SHIFT: u32 = 40; // 1 TiB
pub const CLASSES: usize = (MAX_CAP_SHIFT - MIN_CAP_SHIFT + 1) as usize;
/// Room every slot has above its class capacity for a thread's TCB and static TLS: 8 KiB with its page
/// rounding for a program with little TLS of its own on glibc 2.31 to 2.43; the real size is learned at
/// start-up (`identity::tls_reserve`), and a larger reserve counts against the capacity.
const TOP_RESERVE: usize = 8 << 10;
const SMALL_GUARD: usize = 64 << 10;
const LARGE_GUARD: usize = 1 << 20;
const TWO_MIB: usize = 2 << 20;
/// Classes of at least this capacity get the large guard and whole 2 MiB units.
const LARGE_CAP: usize = TWO_MIB;
/// PROT_NONE guards (one extra VMA each) allowed when MADV_GUARD_INSTALL is unavailable.
const MPROTECT_GUARD_BUDGET: usize = 16_384;
const CANARY: u64 = 0xA5C0_57AC_CA9A_17E5;

static MPROTECT_GUARDS: AtomicUsize = AtomicUsize::new(0);
/// Slots carved without any guard (kernel without MADV_GUARD_INSTALL and the PROT_NONE budget spent).
pub static UNGUARDED: AtomicUsize = AtomicUsize::new(0);
/// Whether the kernel takes MADV_GUARD_INSTALL (assumed until it refuses).
static GUARD_MARKERS: AtomicBool = AtomicBool::new(true);

/// One slot of a class region: `[start, start + guard)` is the guard, the rest is stack (and, at the top,
/// possibly a TCB).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub class: u8,
    pub start: usize,
    pub end: usize,
    pub guard: usize,
}

impl Slot {
    /// Lowest usable stack address.
    pub fn low(&self) -> usize {
        self.start + self.guard
    }
}

/// A coroutine stack: `[limit, base)` is usable, growing down from `base`.
pub struct CoStack {
    base: usize,
    limit: usize,
    /// Size the program asked for (reported on overflow).
    pub requested: usize,
    /// The guard region below the stack, if the runtime owns one.
    pub guard: Option<(usize, usize)>,
    /// True when the slot has no guard markers (old kernel): a canary word at the limit stands in, checked
    /// at every switch. Not used otherwise, since writing it would commit the stack's lowest page.
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

    /// The stack part of `slot`: everything between its guard and `top` (where the TCB area begins).
    pub fn in_slot(slot: Slot, top: usize, requested: usize) -> CoStack {
        let canary = !GUARD_MARKERS.load(Ordering::Relaxed);
        let s =
            CoStack { base: top & !63, limit: slot.low(), requested, guard: Some((slot.start, slot.guard)), canary };
        if canary {
            // SAFETY: the canary word is the first word of the slot's usable stack.
            unsafe { (s.limit as *mut u64).write(CANARY) };
        }
        s
    }

    /// A stack in memory the program supplied; the program owns it and its guard, if any.
    pub fn user(low: usize, size: usize) -> CoStack {
        let base = (low + size) & !15;
        let limit = (low + 15) & !15;
        CoStack { base, limit, requested: size, guard: None, canary: false }
    }
}

/// False once something wrote over the canary word at the limit of a runtime-owned stack (whose lowest
/// usable address is `low`): the stack overflowed past its guard or the guard is missing.
#[inline]
pub fn canary_intact_at(low: usize) -> bool {
    // SAFETY: the canary word is the first word of a runtime-owned stack, mapped for the process's life.
    unsafe { (low as *const u64).read() == CANARY }
}

fn class_capacity(class: usize) -> usize {
    1usize << (class as u32 + MIN_CAP_SHIFT)
}

fn class_guard(class: usize) -> usize {
    if class_capacity(class) >= LARGE_CAP { LARGE_GUARD } else { SMALL_GUARD }
}

fn class_slot_size(class: usize) -> usize {
    let size = class_capacity(class) + TOP_RESERVE + class_guard(class);
    if class_capacity(class) >= LARGE_CAP { size.next_multiple_of(TWO_MIB) } else { size }
}

/// The smallest class whose slots hold a guard, `usable` bytes of stack and `reserve` bytes on top.
pub fn class_for(usable: usize, reserve: usize) -> Option<usize> {
    let need = usable.max(1 << MIN_CAP_SHIFT).checked_add(reserve.saturating_sub(TOP_RESERVE))?;
    let class = need.checked_next_power_of_two()?.trailing_zeros().saturating_sub(MIN_CAP_SHIFT) as usize;
    (class < CLASSES).then_some(class)
}

struct Class {
    /// Next never-used slot in the current region, and the region's end.
    next: usize,
    end: usize,
    /// Slots whose pages were given back (they read as zero).
    cold: Vec<usize>,
}

pub struct StackPool {
    classes: [Lock<Class>; CLASSES],
}

impl Default for StackPool {
    fn default() -> Self {
        Self::new()
    }
}

/// The process's coroutine stacks.
static POOL: StackPool = StackPool::new();

/// The process's stack pool.
#[inline]
pub fn pool() -> &'static StackPool {
    &POOL
}

impl StackPool {
    pub const fn new() -> StackPool {
        StackPool { classes: [const { Lock::new(Class { next: 0, end: 0, cold: Vec::new() }) }; CLASSES] }
    }

    /// A slot of `class` whose memory reads as zero, or None if the address space is exhausted (EAGAIN).
    pub fn take(&self, class: usize) -> Option<Slot> {
        let slot_size = class_slot_size(class);
        let guard = class_guard(class);
        let mut c = self.classes[class].lock();
        let start = match c.cold.pop() {
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
        };
        Some(Slot { class: class as u8, start, end: start + slot_size, guard })
    }

    /// Gives a slot's pages back to the kernel and keeps the slot for reuse (its guard stays).
    pub fn give_back(&self, slot: Slot) {
        mem::discard(slot.low() as *mut u8, slot.end - slot.low());
        self.classes[slot.class as usize].lock().cold.push(slot.start);
    }
}

/// Reserves a region for slots of `slot_size`; returns the first slot address and the region end.
fn new_region(slot_size: usize) -> Option<(usize, usize)> {
    let region = (slot_size * 256).clamp(1 << 32, 1 << 46);
    let len = region + TWO_MIB * 2;
    let p = mem::reserve(len).ok()? as usize;
    let in_two_mib_units = slot_size.is_multiple_of(TWO_MIB);
    let start = if in_two_mib_units { ((p + TWO_MIB - 1) & !(TWO_MIB - 1)) + TWO_MIB / 2 } else { p };
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
    fn classes_hold_what_is_asked() {
        for usable in [1, 16 << 10, 64 << 10, 1 << 20, 8 << 20, 100 << 20] {
            for reserve in [0, 8192, 64 << 10] {
                let c = class_for(usable, reserve).unwrap();
                assert!(class_slot_size(c) >= usable + reserve + class_guard(c), "{usable} + {reserve}");
            }
        }
        assert!(class_for(usize::MAX / 2, 0).is_none());
        // Slots fit what they hold: a 64 KiB stack with its TCB and guard in 136 KiB, 8 MiB in 10 MiB.
        assert_eq!(class_slot_size(class_for(64 << 10, 8192).unwrap()), 136 << 10);
        assert_eq!(class_slot_size(class_for(8 << 20, 8192).unwrap()), 10 << 20);
        assert_eq!(class_slot_size(class_for(8 << 20, 0).unwrap()), 10 << 20);
    }

    #[test]
    fn slots_are_usable_and_reused() {
        let pool = StackPool::new();
        let class = class_for(8 << 20, 8192).unwrap();
        let slot = pool.take(class).unwrap();
        let s = CoStack::in_slot(slot, slot.end - 8192, 8 << 20);
        assert!(s.size() >= 8 << 20);
        // SAFETY: both ends lie in the slot's usable part.
        unsafe {
            ((s.base - 8) as *mut u64).write(1);
            ((s.low() + 64) as *mut u64).write(1);
        }
        pool.give_back(slot);
        let again = pool.take(class).unwrap();
        assert_eq!(again, slot, "given-back slot reused");
        // SAFETY: as above; discarded pages read as zero.
        assert_eq!(unsafe { ((s.base - 8) as *const u64).read() }, 0);
    }

    #[test]
    fn many_stacks_few_mappings() {
        let pool = StackPool::new();
        let class = class_for(256 << 10, 0).unwrap();
        let slots: Vec<_> = (0..2000).map(|_| pool.take(class).unwrap()).collect();
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap().lines().count();
        assert!(maps < 1000, "{maps} mappings for 2000 stacks");
        for s in slots {
            pool.give_back(s);
        }
    }
}
