//! The coroutine stack-overflow report: what a thread whose stack overflowed is told (which thread, its
//! stack size, how to raise it), and the alternate signal stack every worker has so the fault handler can
//! still run when a coroutine's stack is exhausted. A leaf: the fault handler (`fault`) and the worker's
//! canary check at every switch both report through here.

use crate::runtime::sys::{self, mem};

const ALT_STACK_SIZE: usize = 64 << 10;

/// Gives the calling OS thread an alternate signal stack, so an overflowed coroutine stack can still be
/// reported. Called by every worker at start.
pub fn alt_stack_for_this_thread() {
    let Ok(mem) = mem::reserve(ALT_STACK_SIZE) else { return };
    let ss = libc::stack_t { ss_sp: mem as *mut libc::c_void, ss_flags: 0, ss_size: ALT_STACK_SIZE };
    // SAFETY: the memory stays mapped for the life of the thread (never unmapped).
    unsafe { libc::sigaltstack(&ss, core::ptr::null_mut()) };
}

/// Prints the overflow report; also used when a canary check finds an overflow that skipped the guard.
pub fn report_overflow(name: &[u8], requested: usize, usable: usize) {
    let mut buf = [0u8; 512];
    let mut w = Writer { buf: &mut buf, len: 0 };
    w.put(b"asyncshim: stack overflow in thread \"");
    w.put(name);
    w.put(b"\": its stack is ");
    w.num(requested);
    w.put(b" bytes (");
    w.num(usable);
    w.put(
        b" usable). Raise it with ASYNCSHIM_STACK_SIZE=<bytes> (default for every thread, K/M/G suffixes) \
or pthread_attr_setstacksize() in the program.\n",
    );
    let len = w.len;
    sys::write_stderr(&buf[..len]);
}

/// Allocation-free formatting for signal context.
struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn put(&mut self, s: &[u8]) {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
    }
    fn num(&mut self, mut v: usize) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.put(&digits[i..]);
    }
}
