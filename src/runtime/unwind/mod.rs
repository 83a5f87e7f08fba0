//! Exact call stacks of the program's threads, parked or stuck: DWARF call-frame information (the loaded
//! objects' `.eh_frame`, found through `.eh_frame_hdr`) walked by the `framehop` crate from a set of saved
//! registers, with every stack read through [`sys::peek`], which never faults (a thread may move on while
//! its stack is read, and a register the walk starts without is a guess: the walk then ends early).
//!
//! Where the registers come from:
//! - a parked coroutine: [`capture_here`] records them in [`Task::switch_out`] just before the switch, at a
//!   point the call-frame information describes (the whole caller chain stays intact while it is parked);
//! - a coroutine holding a worker in a system call: the kernel's `/proc/self/task/TID/syscall` (stack and
//!   instruction pointer; the frame pointer is not known there, so a walk that needs a caller's frame
//!   pointer before any frame restored it ends at that frame).
//!
//! Used by the stall report ([`super::monitor`]), the thread listing ([`listing`]) and the stack-overflow
//! report ([`fault`]), all on the monitor thread (the walk allocates: never in a signal handler).
//!
//! [`Task::switch_out`]: super::task::Task::switch_out

pub mod debugger;
pub mod fault;
pub mod listing;
pub mod symbols;

use super::lock::Lock;
use super::sys;
use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{ExplicitModuleSectionInfo, Module, Unwinder};

/// The registers a walk starts from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Regs {
    pub pc: usize,
    pub sp: usize,
    /// 0 when not known.
    pub bp: usize,
}

/// The caller's registers at the point of this call (inlined: the point lies in the caller's own code,
/// where its call-frame information holds).
#[inline(always)]
pub fn capture_here() -> Regs {
    let (pc, sp, bp): (usize, usize, usize);
    // SAFETY: reads three registers; touches no memory and no flags.
    unsafe {
        core::arch::asm!(
            "lea {pc}, [rip]",
            "mov {sp}, rsp",
            "mov {bp}, rbp",
            pc = out(reg) pc,
            sp = out(reg) sp,
            bp = out(reg) bp,
            options(nomem, nostack, preserves_flags)
        )
    };
    Regs { pc, sp, bp }
}

/// Section bytes inside a loaded object (mapped for as long as the object stays loaded; an object that
/// goes away is noticed through the loader's counters before the next walk).
#[derive(Default)]
struct Mapped(&'static [u8]);

impl core::ops::Deref for Mapped {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0
    }
}

struct Loaded {
    /// The loader's load and unload counters when the modules were read.
    generation: (u64, u64),
    unwinder: UnwinderX86_64<Mapped>,
    cache: CacheX86_64,
}

static LOADED: Lock<Option<Loaded>> = Lock::new(None);

/// The return addresses of the stack that `regs` describe, innermost first (the first entry is `regs.pc`
/// itself), at most `max`.
pub fn backtrace(regs: Regs, max: usize) -> Vec<usize> {
    let mut loaded = LOADED.lock();
    let generation = loader_generation();
    if loaded.as_ref().is_none_or(|l| l.generation != generation) {
        let mut unwinder = UnwinderX86_64::new();
        for m in modules() {
            unwinder.add_module(m);
        }
        *loaded = Some(Loaded { generation, unwinder, cache: CacheX86_64::new() });
    }
    let Some(l) = loaded.as_mut() else { return Vec::new() };
    let mut read = |addr: u64| sys::peek::word(addr as usize).ok_or(());
    let start = UnwindRegsX86_64::new(regs.pc as u64, regs.sp as u64, regs.bp as u64);
    let mut frames = l.unwinder.iter_frames(regs.pc as u64, start, &mut l.cache, &mut read);
    let mut out = Vec::new();
    while out.len() < max {
        match frames.next() {
            Ok(Some(f)) if f.address() != 0 => out.push(f.address() as usize),
            _ => break,
        }
    }
    out
}

/// The frames of `backtrace(regs)` that say something about the program, described: the runtime's own
/// frames on top (the parking machinery) are folded into the hook the program called, and the walk ends
/// at the runtime's thread entry (below it lie the coroutine's start-up frames). `with_lines` adds file and
/// line where debug information exists.
pub fn program_frames(regs: Regs, max: usize, with_lines: bool) -> Vec<String> {
    let frames = backtrace(regs, max + 24);
    let ours = symbols::dl_info(program_frames as *const () as usize).map(|i| i.dli_fbase as usize);
    let in_runtime = |a: usize| symbols::dl_info(a).map(|i| i.dli_fbase as usize) == ours;
    let leading = frames.iter().take_while(|&&a| in_runtime(a)).count();
    let first = if leading == frames.len() { 0 } else { leading.saturating_sub(1) };
    let mut out = Vec::new();
    for (i, &a) in frames.iter().enumerate().skip(first) {
        let d = if with_lines { symbols::describe_with_line(a, i == 0) } else { symbols::describe(a, i == 0) };
        if d.starts_with("asyncshim_thread_entry+") || out.len() == max {
            break;
        }
        out.push(d);
    }
    out
}

/// The loader's counters of objects loaded and unloaded so far (they change with every dlopen/dlclose).
fn loader_generation() -> (u64, u64) {
    unsafe extern "C" fn first(info: *mut libc::dl_phdr_info, _: usize, out: *mut libc::c_void) -> i32 {
        // SAFETY: the loader passes a valid info; `out` is the tuple below.
        unsafe { *(out as *mut (u64, u64)) = ((*info).dlpi_adds, (*info).dlpi_subs) };
        1
    }
    let mut g = (0u64, 0u64);
    // SAFETY: the callback only reads the info it is given.
    unsafe { libc::dl_iterate_phdr(Some(first), &mut g as *mut _ as *mut libc::c_void) };
    g
}

/// Every loaded object with call-frame information, as framehop modules.
fn modules() -> Vec<Module<Mapped>> {
    unsafe extern "C" fn each(info: *mut libc::dl_phdr_info, _: usize, out: *mut libc::c_void) -> i32 {
        // SAFETY: the loader passes a valid info whose headers stay mapped while the object is loaded;
        // `out` is the vector below.
        unsafe {
            if let Some(m) = module_of(&*info) {
                (*(out as *mut Vec<Module<Mapped>>)).push(m);
            }
        }
        0
    }
    let mut list: Vec<Module<Mapped>> = Vec::new();
    // SAFETY: the callback only reads the info it is given.
    unsafe { libc::dl_iterate_phdr(Some(each), &mut list as *mut _ as *mut libc::c_void) };
    list
}

/// # Safety
/// `info` must describe a loaded object (from dl_iterate_phdr).
unsafe fn module_of(info: &libc::dl_phdr_info) -> Option<Module<Mapped>> {
    let bias = info.dlpi_addr as usize;
    // SAFETY: the loader's program headers for this object.
    let phdrs = unsafe { core::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) };
    let loads: Vec<_> = phdrs.iter().filter(|p| p.p_type == libc::PT_LOAD).collect();
    let text = loads.iter().find(|p| p.p_flags & libc::PF_X != 0)?;
    let hdr = phdrs.iter().find(|p| p.p_type == libc::PT_GNU_EH_FRAME)?;
    let hdr_svma = hdr.p_vaddr as usize;
    // SAFETY: PT_GNU_EH_FRAME lies in a loaded segment.
    let hdr_bytes: &'static [u8] =
        unsafe { core::slice::from_raw_parts((bias + hdr_svma) as *const u8, hdr.p_memsz as usize) };
    let eh_frame_svma = eh_frame_address(hdr_bytes, hdr_svma)?;
    // .eh_frame runs to a zero terminator at the latest by the end of the segment that holds it.
    let seg = loads.iter().find(|p| (p.p_vaddr as usize..(p.p_vaddr + p.p_memsz) as usize).contains(&eh_frame_svma))?;
    let eh_frame_end = (seg.p_vaddr + seg.p_filesz) as usize;
    // SAFETY: inside a loaded segment's file-backed part.
    let eh_frame: &'static [u8] = unsafe {
        core::slice::from_raw_parts((bias + eh_frame_svma) as *const u8, eh_frame_end.checked_sub(eh_frame_svma)?)
    };
    let text_svma = text.p_vaddr..text.p_vaddr + text.p_memsz;
    let name = if info.dlpi_name.is_null() {
        String::new()
    } else {
        // SAFETY: the loader's NUL-terminated name.
        unsafe { std::ffi::CStr::from_ptr(info.dlpi_name) }.to_string_lossy().into_owned()
    };
    let section_info = ExplicitModuleSectionInfo {
        base_svma: 0,
        text_svma: Some(text_svma.clone()),
        eh_frame_svma: Some(eh_frame_svma as u64..eh_frame_end as u64),
        eh_frame: Some(Mapped(eh_frame)),
        eh_frame_hdr_svma: Some(hdr_svma as u64..(hdr_svma as u64 + hdr.p_memsz)),
        eh_frame_hdr: Some(Mapped(hdr_bytes)),
        ..Default::default()
    };
    let avma = bias as u64 + text_svma.start..bias as u64 + text_svma.end;
    Some(Module::new(name, avma, bias as u64, section_info))
}

/// Where `.eh_frame` starts, from the `.eh_frame_hdr` at `hdr_svma` (its second field, in the encoding
/// its first byte names: pc-relative or absolute 4 or 8 bytes, as linkers write it).
fn eh_frame_address(hdr: &[u8], hdr_svma: usize) -> Option<usize> {
    if hdr.len() < 8 || hdr[0] != 1 {
        return None;
    }
    let enc = hdr[1];
    let field_at = hdr_svma + 4;
    let value = match enc & 0x0f {
        0x0b => i32::from_le_bytes(hdr[4..8].try_into().ok()?) as i64,
        0x03 => u32::from_le_bytes(hdr[4..8].try_into().ok()?) as i64,
        0x04 | 0x0c if hdr.len() >= 12 => i64::from_le_bytes(hdr[4..12].try_into().ok()?),
        _ => return None,
    };
    match enc & 0x70 {
        0x00 => Some(value as usize),
        0x10 => Some((field_at as i64 + value) as usize),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn innermost(depth: u32) -> Vec<String> {
        if depth > 0 {
            return core::hint::black_box(innermost(depth - 1));
        }
        let regs = capture_here();
        backtrace(regs, 32).iter().enumerate().map(|(i, &a)| symbols::describe(a, i == 0)).collect()
    }

    #[test]
    fn walks_its_own_stack_exactly() {
        let frames = innermost(3);
        let ours = frames.iter().filter(|f| f.contains("innermost")).count();
        assert_eq!(ours, 4, "{frames:#?}");
        assert!(frames[..4].iter().all(|f| f.contains("innermost")), "{frames:#?}");
        // Down to the thread's start in libc.
        assert!(frames.last().is_some_and(|f| f.contains("libc.so")), "{frames:#?}");
    }
}
