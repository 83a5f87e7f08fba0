//! io_uring, for two things: futex waits the kernel makes on a thread's behalf without blocking it
//! (IORING_OP_FUTEX_WAIT, Linux 6.7+; [`Ring::for_futex_waits`]), and the netpoller's readiness source
//! (multishot IORING_OP_POLL_ADD, one per watched fd; [`Ring::for_netpoll`], described there). For futex waits: A wait queued this way is an ordinary futex waiter to the kernel —
//! another process's FUTEX_WAKE counts and wakes it exactly like a sleeping thread — and its completion
//! says whether it was woken (0), found the word changed (-EAGAIN) or was cancelled (-ECANCELED).
//!
//! The ring belongs to the thread that makes it, its only submitter, which also waits for completions
//! (IORING_SETUP_SINGLE_ISSUER and DEFER_TASKRUN, 6.1+): the kernel's work for a completion runs there
//! when it waits, so no other thread is ever interrupted for it (a thread with io_uring work pending sees
//! its blocking system calls interrupted, some with EINTR). The ring is mapped once
//! (IORING_FEAT_SINGLE_MMAP, 5.4+) and the kernel keeps completions that do not fit (IORING_FEAT_NODROP,
//! 5.5+), so a completion is never lost however many waits are queued.

use super::syscall::{Errno, syscall2, syscall4, syscall6};
use core::sync::atomic::{AtomicU32, Ordering};

const SYS_IO_URING_SETUP: libc::c_long = 425;
const SYS_IO_URING_ENTER: libc::c_long = 426;
const SYS_IO_URING_REGISTER: libc::c_long = 427;

const IORING_SETUP_CQSIZE: u32 = 1 << 3;
const IORING_SETUP_CLAMP: u32 = 1 << 4;
const IORING_SETUP_SINGLE_ISSUER: u32 = 1 << 12;
const IORING_SETUP_DEFER_TASKRUN: u32 = 1 << 13;
const IORING_FEAT_SINGLE_MMAP: u32 = 1 << 0;
const IORING_FEAT_NODROP: u32 = 1 << 1;
const IORING_ENTER_GETEVENTS: usize = 1;
const IORING_ENTER_EXT_ARG: usize = 1 << 3;
const IORING_REGISTER_PROBE: usize = 8;
const IORING_REGISTER_SYNC_CANCEL: usize = 24;
const IORING_SQ_CQ_OVERFLOW: u32 = 1 << 1;
const IORING_POLL_ADD_MULTI: u32 = 1;
/// A completion says more will follow from the same request (a multishot poll still armed).
pub const IORING_CQE_F_MORE: u32 = 1 << 1;
const IO_URING_OP_SUPPORTED: u16 = 1;

const IORING_OP_NOP: u8 = 0;
const IORING_OP_POLL_ADD: u8 = 6;
const IORING_OP_ASYNC_CANCEL: u8 = 14;
const IORING_OP_FUTEX_WAIT: u8 = 51;

/// futex2 flags: a 32-bit word; process-private.
const FUTEX2_SIZE_U32: u32 = 0x02;
const FUTEX2_PRIVATE: u32 = 128;

/// Submission slots: each submission is handed to the kernel at once, so few are ever in use.
const SQ_ENTRIES: u32 = 64;
/// Completion slots (more are kept by the kernel if needed, with NODROP).
const CQ_ENTRIES: u32 = 4096;
/// The netpoller's: arms, cancellations and wake-ups, each handed in at once.
const NETPOLL_SQ_ENTRIES: u32 = 64;
/// Room for the readiness of many fds between two reaps (a multishot poll whose completion finds no room
/// ends; the netpoller arms it again).
const NETPOLL_CQ_ENTRIES: u32 = 16384;

#[repr(C)]
#[derive(Default)]
struct SqOffsets {
    head: u32,
    tail: u32,
    ring_mask: u32,
    ring_entries: u32,
    flags: u32,
    dropped: u32,
    array: u32,
    resv1: u32,
    user_addr: u64,
}

#[repr(C)]
#[derive(Default)]
struct CqOffsets {
    head: u32,
    tail: u32,
    ring_mask: u32,
    ring_entries: u32,
    overflow: u32,
    cqes: u32,
    flags: u32,
    resv1: u32,
    user_addr: u64,
}

#[repr(C)]
#[derive(Default)]
struct Params {
    sq_entries: u32,
    cq_entries: u32,
    flags: u32,
    sq_thread_cpu: u32,
    sq_thread_idle: u32,
    features: u32,
    wq_fd: u32,
    resv: [u32; 3],
    sq_off: SqOffsets,
    cq_off: CqOffsets,
}

/// The kernel's `struct io_uring_sqe`, with the fields the two operations used here need.
#[repr(C)]
struct Sqe {
    opcode: u8,
    flags: u8,
    ioprio: u16,
    fd: i32,
    off: u64,
    addr: u64,
    len: u32,
    op_flags: u32,
    user_data: u64,
    buf_index: u16,
    personality: u16,
    file_index: u32,
    addr3: u64,
    pad: u64,
}

#[repr(C)]
struct Cqe {
    user_data: u64,
    res: i32,
    flags: u32,
}

/// A mapped ring, used by the thread that made it only.
pub struct Ring {
    fd: i32,
    sq_head: *const AtomicU32,
    sq_tail: *const AtomicU32,
    sq_mask: u32,
    sq_array: *mut u32,
    sqes: *mut Sqe,
    cq_head: *const AtomicU32,
    cq_tail: *const AtomicU32,
    cq_mask: u32,
    cqes: *const Cqe,
    sq_flags: *const AtomicU32,
}

// SAFETY: the ring is shared memory of the process and an fd; a ring made for the netpoller is used by one
// thread at a time (its owner serialises every use with a lock), and a futex-wait ring by its maker only
// (the kernel refuses other submitters: SINGLE_ISSUER).
unsafe impl Send for Ring {}

fn mmap_ring(fd: i32, len: usize, offset: usize) -> Result<*mut u8, Errno> {
    // SAFETY: a fresh shared mapping of the ring fd at the kernel's documented offset; nothing is replaced.
    let r = unsafe {
        syscall6(
            libc::SYS_mmap,
            [
                0,
                len,
                (libc::PROT_READ | libc::PROT_WRITE) as usize,
                (libc::MAP_SHARED | libc::MAP_POPULATE) as usize,
                fd as usize,
                offset,
            ],
        )
    }?;
    Ok(r as *mut u8)
}

impl Ring {
    /// A ring that can make futex waits, or the reason there is none: io_uring missing, disabled
    /// (`kernel.io_uring_disabled`, seccomp: EPERM/ENOSYS), a kernel before 6.7 (no IORING_OP_FUTEX_WAIT)
    /// or without single-mapping rings.
    /// Only the calling thread may use it (submit, reap).
    pub fn for_futex_waits() -> Result<Ring, Errno> {
        let flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
        Self::setup(SQ_ENTRIES, CQ_ENTRIES, flags, &[IORING_OP_FUTEX_WAIT, IORING_OP_ASYNC_CANCEL])
    }

    /// A ring for the netpoller, or the reason there is none: io_uring missing or forbidden
    /// (`kernel.io_uring_disabled`, seccomp: EPERM/ENOSYS), or a kernel before 6.0 (no synchronous
    /// cancellation, which also means multishot polls, 5.13, and timed waits, 5.11, are there).
    ///
    /// Any thread may submit to it and wait on it (no SINGLE_ISSUER: the netpoller is polled by every
    /// worker and the monitor), one at a time except for [`Ring::wait`]. The kernel finishes a poll's
    /// completion in the thread that armed it (task work, signalled): that thread is interrupted briefly
    /// when the fd becomes ready, as a signal without handler would (system calls restart).
    pub fn for_netpoll() -> Result<Ring, Errno> {
        let ring = Self::setup(
            NETPOLL_SQ_ENTRIES,
            NETPOLL_CQ_ENTRIES,
            IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP,
            &[IORING_OP_NOP, IORING_OP_POLL_ADD, IORING_OP_ASYNC_CANCEL],
        )?;
        // A cancellation of nothing: ENOENT where synchronous cancellation exists (6.0+), EINVAL before.
        match ring.sync_cancel(u64::MAX - 1) {
            Err(Errno(libc::ENOENT)) => Ok(ring),
            r => {
                let _ = super::fd::close(ring.fd);
                Err(r.err().unwrap_or(Errno(libc::ENOSYS)))
            }
        }
    }

    fn setup(sq_entries: u32, cq_entries: u32, flags: u32, ops: &[u8]) -> Result<Ring, Errno> {
        let mut p = Params { cq_entries, flags, ..Default::default() };
        // SAFETY: io_uring_setup reads and writes the params struct we own.
        let fd = unsafe { syscall2(SYS_IO_URING_SETUP, sq_entries as usize, &mut p as *mut Params as usize) }? as i32;
        let close = |e: Errno| {
            let _ = super::fd::close(fd);
            e
        };
        let need = IORING_FEAT_SINGLE_MMAP | IORING_FEAT_NODROP;
        if p.features & need != need {
            return Err(close(Errno(libc::ENOSYS)));
        }
        if !ops.iter().all(|&op| Self::supports(fd, op)) {
            return Err(close(Errno(libc::ENOSYS)));
        }
        let sq_len = p.sq_off.array as usize + p.sq_entries as usize * 4;
        let cq_len = p.cq_off.cqes as usize + p.cq_entries as usize * size_of::<Cqe>();
        let rings = mmap_ring(fd, sq_len.max(cq_len), 0).map_err(close)?;
        let sqes = mmap_ring(fd, p.sq_entries as usize * size_of::<Sqe>(), 0x1000_0000).map_err(close)?;
        // SAFETY: the offsets are the kernel's, inside the mapping just made; the mask words never change.
        unsafe {
            let at = |off: u32| rings.add(off as usize);
            Ok(Ring {
                fd,
                sq_head: at(p.sq_off.head) as *const AtomicU32,
                sq_tail: at(p.sq_off.tail) as *const AtomicU32,
                sq_mask: *(at(p.sq_off.ring_mask) as *const u32),
                sq_array: at(p.sq_off.array) as *mut u32,
                sqes: sqes as *mut Sqe,
                cq_head: at(p.cq_off.head) as *const AtomicU32,
                cq_tail: at(p.cq_off.tail) as *const AtomicU32,
                cq_mask: *(at(p.cq_off.ring_mask) as *const u32),
                cqes: at(p.cq_off.cqes) as *const Cqe,
                sq_flags: at(p.sq_off.flags) as *const AtomicU32,
            })
        }
    }

    /// Whether the ring's kernel knows operation `op` (IORING_REGISTER_PROBE, 5.6+).
    fn supports(fd: i32, op: u8) -> bool {
        const OPS: usize = 256;
        // 16-byte header, then 8 bytes per operation: op, resv, flags (u16), resv2 (u32).
        let mut probe = vec![0u8; 16 + OPS * 8];
        // SAFETY: the kernel writes at most OPS entries after the header into our buffer.
        let r = unsafe {
            syscall4(SYS_IO_URING_REGISTER, fd as usize, IORING_REGISTER_PROBE, probe.as_mut_ptr() as usize, OPS)
        };
        if r.is_err() {
            return false;
        }
        let last_op = probe[0];
        if op > last_op {
            return false;
        }
        let e = 16 + op as usize * 8;
        u16::from_ne_bytes([probe[e + 2], probe[e + 3]]) & IO_URING_OP_SUPPORTED != 0
    }

    /// The ring's fd.
    pub fn fd(&self) -> i32 {
        self.fd
    }

    /// Lets `relocate` give the ring another fd number (a duplicate of it, the original closed), which
    /// it returns; the mappings stay.
    pub fn relocate_fd(&mut self, relocate: impl FnOnce(i32) -> i32) {
        self.fd = relocate(self.fd);
    }

    /// Queues one entry and hands it to the kernel.
    fn submit(&self, fill: impl FnOnce(&mut Sqe)) -> Result<(), Errno> {
        // SAFETY: ring words inside the mapping; only this submitter writes the tail and the slots it owns.
        unsafe {
            let tail = (*self.sq_tail).load(Ordering::Relaxed);
            let head = (*self.sq_head).load(Ordering::Acquire);
            if tail.wrapping_sub(head) > self.sq_mask {
                // Cannot happen with every entry submitted at once; say so rather than overwrite one.
                return Err(Errno(libc::EBUSY));
            }
            let i = tail & self.sq_mask;
            let sqe = &mut *self.sqes.add(i as usize);
            core::ptr::write_bytes(sqe as *mut Sqe, 0, 1);
            fill(sqe);
            self.sq_array.add(i as usize).write(i);
            (*self.sq_tail).store(tail.wrapping_add(1), Ordering::Release);
            loop {
                match syscall6(SYS_IO_URING_ENTER, [self.fd as usize, 1, 0, 0, 0, 0]) {
                    Ok(1) => return Ok(()),
                    Err(Errno(libc::EINTR)) => continue,
                    // EAGAIN/EBUSY: out of kernel memory or completions overflowing; try again shortly.
                    Err(Errno(libc::EAGAIN | libc::EBUSY)) | Ok(0) => {
                        let pause = AtomicU32::new(0);
                        super::futex::wait(&pause, 0, Some(super::time::monotonic_ns() + 50_000));
                        continue;
                    }
                    Ok(_) => return Ok(()),
                    Err(e) => {
                        // Take the entry back so the next submission does not hand it in twice.
                        (*self.sq_tail).store(tail, Ordering::Release);
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Starts a futex wait on the 32-bit word at `addr` while it holds `val`, for waiters whose bits
    /// intersect `mask`; `private` for a process-private futex. Its completion carries `user_data`.
    pub fn submit_futex_wait(
        &self,
        addr: usize,
        val: u32,
        mask: u32,
        private: bool,
        user_data: u64,
    ) -> Result<(), Errno> {
        self.submit(|sqe| {
            sqe.opcode = IORING_OP_FUTEX_WAIT;
            sqe.fd = (FUTEX2_SIZE_U32 | if private { FUTEX2_PRIVATE } else { 0 }) as i32;
            sqe.addr = addr as u64;
            sqe.off = val as u64;
            sqe.addr3 = mask as u64;
            sqe.user_data = user_data;
        })
    }

    /// Asks the kernel to cancel the request carrying `target`; this request's own completion carries
    /// `user_data`. The cancelled request completes either way (-ECANCELED, or its result if it finished).
    pub fn submit_cancel(&self, target: u64, user_data: u64) -> Result<(), Errno> {
        self.submit(|sqe| {
            sqe.opcode = IORING_OP_ASYNC_CANCEL;
            sqe.fd = -1;
            sqe.addr = target;
            sqe.user_data = user_data;
        })
    }

    /// Arms a multishot poll of `fd` for `events` (EPOLLIN, EPOLLOUT, ...; edge-triggered as io_uring's
    /// polls are unless asked otherwise): a completion carrying `user_data` and the ready bits each time
    /// the object signals readiness, and one at once if it is ready now; IORING_CQE_F_MORE on all but a
    /// last one (cancelled, or the poll ended for want of room in the completion queue).
    pub fn submit_poll_multishot(&self, fd: i32, events: u32, user_data: u64) -> Result<(), Errno> {
        self.submit(|sqe| {
            sqe.opcode = IORING_OP_POLL_ADD;
            sqe.fd = fd;
            sqe.op_flags = events;
            sqe.len = IORING_POLL_ADD_MULTI;
            sqe.user_data = user_data;
        })
    }

    /// A no-op whose completion (carrying `user_data`) is posted by this call: it wakes a thread waiting
    /// in [`Ring::wait`].
    pub fn submit_nop(&self, user_data: u64) -> Result<(), Errno> {
        self.submit(|sqe| {
            sqe.opcode = IORING_OP_NOP;
            sqe.user_data = user_data;
        })
    }

    /// Cancels the request carrying `user_data` now (IORING_REGISTER_SYNC_CANCEL, 6.0+): when this
    /// returns it is disarmed (its last completion may still be on its way). Err(ENOENT): none.
    /// Needs no exclusive use of the ring.
    pub fn sync_cancel(&self, user_data: u64) -> Result<(), Errno> {
        #[repr(C)]
        struct SyncCancel {
            addr: u64,
            fd: i32,
            flags: u32,
            timeout: [i64; 2],
            opcode: u8,
            pad: [u8; 7],
            pad2: [u64; 3],
        }
        // No timeout; matched by user data.
        let mut reg =
            SyncCancel { addr: user_data, fd: -1, flags: 0, timeout: [-1, -1], opcode: 0, pad: [0; 7], pad2: [0; 3] };
        loop {
            // SAFETY: the kernel reads the registration struct we own.
            let r = unsafe {
                syscall4(
                    SYS_IO_URING_REGISTER,
                    self.fd as usize,
                    IORING_REGISTER_SYNC_CANCEL,
                    &mut reg as *mut SyncCancel as usize,
                    1,
                )
            };
            match r {
                Err(Errno(libc::EINTR)) => continue,
                r => return r.map(|_| ()),
            }
        }
    }

    /// Cancels the request carrying `user_data` and returns only once the kernel has freed it, so the
    /// references it held (a poll's to its file) are dropped: a close after this is the object's last,
    /// as natively. [`Ring::sync_cancel`] alone does not give that: a cancelled poll is completed and
    /// freed by io_uring task work on the thread that submitted it, which may be another worker, later
    /// (a close meanwhile is not the last, and the object — a socket whose peer should see it gone —
    /// lives on until that thread runs it). The task work removes the request from the ring's cancel
    /// table, completes and frees it under the ring's lock, which `sync_cancel` takes too; so once a
    /// further `sync_cancel` finds nothing (ENOENT), the request is freed. The submitter is woken for its
    /// task work (TWA_SIGNAL; this ring has no DEFER_TASKRUN), and when it is this thread, the work ran
    /// on the way back from the first call. Err(ENOENT): there was none.
    pub fn sync_cancel_and_free(&self, user_data: u64) -> Result<(), Errno> {
        self.sync_cancel(user_data)?;
        let mut spins = 0u32;
        while self.sync_cancel(user_data).is_ok() {
            // The submitter has not run its task work yet: let it.
            spins += 1;
            if spins < 8 {
                super::sched_yield();
            } else {
                let pause = AtomicU32::new(0);
                super::futex::wait(&pause, 0, Some(super::time::monotonic_ns() + 20_000));
            }
        }
        Ok(())
    }

    /// Sleeps until a completion is there, at most `timeout_ns` (None: no limit); a signal ends it early.
    /// Reaps nothing ([`Ring::reap_now`] does). May run beside another thread's use of the ring.
    pub fn wait(&self, timeout_ns: Option<u64>) {
        #[repr(C)]
        struct GetEventsArg {
            sigmask: u64,
            sigmask_sz: u32,
            min_wait_usec: u32,
            ts: u64,
        }
        let ts = timeout_ns
            .map(|ns| libc::timespec { tv_sec: (ns / 1_000_000_000) as i64, tv_nsec: (ns % 1_000_000_000) as i64 });
        let arg = GetEventsArg {
            sigmask: 0,
            sigmask_sz: 0,
            min_wait_usec: 0,
            ts: ts.as_ref().map_or(0, |t| t as *const libc::timespec as u64),
        };
        // SAFETY: the argument struct and timespec live across the call; no signal mask is passed.
        let _ = unsafe {
            syscall6(
                SYS_IO_URING_ENTER,
                [
                    self.fd as usize,
                    0,
                    1,
                    IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
                    &arg as *const GetEventsArg as usize,
                    size_of::<GetEventsArg>(),
                ],
            )
        };
    }

    /// Hands up to `max` completions already there to `f` (user_data, result, flags) and frees their
    /// slots, without a system call unless completions were kept aside when the queue was full.
    /// Returns how many.
    pub fn reap_now(&self, max: usize, mut f: impl FnMut(u64, i32, u32)) -> usize {
        // SAFETY: ring words inside the mapping; the kernel writes the tail and the entries before it.
        unsafe {
            if (*self.sq_flags).load(Ordering::Acquire) & IORING_SQ_CQ_OVERFLOW != 0 {
                let _ = syscall6(SYS_IO_URING_ENTER, [self.fd as usize, 0, 0, IORING_ENTER_GETEVENTS, 0, 0]);
            }
            let mut head = (*self.cq_head).load(Ordering::Relaxed);
            let tail = (*self.cq_tail).load(Ordering::Acquire);
            let mut n = 0;
            while head != tail && n < max {
                let c = &*self.cqes.add((head & self.cq_mask) as usize);
                f(c.user_data, c.res, c.flags);
                head = head.wrapping_add(1);
                n += 1;
            }
            (*self.cq_head).store(head, Ordering::Release);
            n
        }
    }

    /// Waits until at least one completion is there (running the kernel's pending work for the ring),
    /// then hands each to `f` (user_data, result) and frees its slot.
    pub fn reap(&self, mut f: impl FnMut(u64, i32)) {
        // SAFETY: ring words inside the mapping; the kernel writes the tail and the entries before it.
        unsafe {
            // Runs the deferred work (posting completions, also those kept aside when the ring was full),
            // sleeping until there is a completion.
            let min =
                if (*self.cq_head).load(Ordering::Relaxed) == (*self.cq_tail).load(Ordering::Acquire) { 1 } else { 0 };
            let _ = syscall6(SYS_IO_URING_ENTER, [self.fd as usize, 0, min, IORING_ENTER_GETEVENTS, 0, 0]);
            let mut head = (*self.cq_head).load(Ordering::Relaxed);
            loop {
                let tail = (*self.cq_tail).load(Ordering::Acquire);
                if head == tail {
                    break;
                }
                while head != tail {
                    let c = &*self.cqes.add((head & self.cq_mask) as usize);
                    let (data, res) = (c.user_data, c.res);
                    head = head.wrapping_add(1);
                    (*self.cq_head).store(head, Ordering::Release);
                    f(data, res);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Reaps until `n` completions are in, keyed by user data.
    fn completions(ring: &Ring, n: usize) -> HashMap<u64, i32> {
        let mut got = HashMap::new();
        while got.len() < n {
            ring.reap(|data, res| {
                got.insert(data, res);
            });
        }
        got
    }

    /// Waits for and collects completions until `n` are in: (user_data, result, flags).
    fn netpoll_completions(ring: &Ring, n: usize) -> Vec<(u64, i32, u32)> {
        let mut got = Vec::new();
        while got.len() < n {
            ring.wait(Some(5_000_000_000));
            ring.reap_now(64, |d, r, f| got.push((d, r, f)));
        }
        got
    }

    #[test]
    fn netpoll_multishot_polls_report_each_edge_until_cancelled() {
        let Ok(ring) = Ring::for_netpoll() else {
            eprintln!("io_uring netpoll rings unavailable here: nothing to test");
            return;
        };
        let efd = super::super::eventfd::new().unwrap();
        let events = (libc::EPOLLIN | libc::EPOLLOUT) as u32;
        ring.submit_poll_multishot(efd, events, 7).unwrap();
        // Writable at once: one completion now, the poll still armed.
        let got = netpoll_completions(&ring, 1);
        assert_eq!(got[0].0, 7);
        assert_ne!(got[0].1 as u32 & libc::EPOLLOUT as u32, 0);
        assert_ne!(got[0].2 & IORING_CQE_F_MORE, 0);
        // Each write is an edge: another completion, readable now.
        super::super::eventfd::signal(efd);
        let got = netpoll_completions(&ring, 1);
        assert_eq!(got[0].0, 7);
        assert_ne!(got[0].1 as u32 & libc::EPOLLIN as u32, 0);
        assert_ne!(got[0].2 & IORING_CQE_F_MORE, 0);
        // A no-op wakes a waiter with its own completion.
        ring.submit_nop(9).unwrap();
        assert_eq!(netpoll_completions(&ring, 1)[0].0, 9);
        // Cancelled synchronously: its last completion says so, and nothing is left to cancel.
        ring.sync_cancel(7).unwrap();
        let got = netpoll_completions(&ring, 1);
        assert_eq!((got[0].0, got[0].1), (7, -libc::ECANCELED));
        assert_eq!(got[0].2 & IORING_CQE_F_MORE, 0);
        assert_eq!(ring.sync_cancel(7), Err(Errno(libc::ENOENT)));
        let _ = super::super::fd::close(efd);
        let _ = super::super::fd::close(ring.fd());
    }

    /// The ring, for a test whose threads take turns: one submits, then another cancels.
    struct TakingTurns(Ring);
    // SAFETY: the test's threads never submit or reap at the same time (a channel orders them).
    unsafe impl Sync for TakingTurns {}

    #[test]
    fn a_poll_cancelled_and_freed_holds_no_reference_a_close_must_wait_for() {
        let Ok(ring) = Ring::for_netpoll() else {
            eprintln!("io_uring netpoll rings unavailable here: nothing to test");
            return;
        };
        let ring = TakingTurns(ring);
        for round in 0..20u64 {
            let mut sv = [0i32; 2];
            // SAFETY: socketpair writes two fds into the array we own.
            assert_eq!(unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, sv.as_mut_ptr()) }, 0);
            let (armed_tx, armed_rx) = std::sync::mpsc::channel();
            let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
            std::thread::scope(|s| {
                // Another thread arms the poll, so the kernel frees it on that thread, which then sleeps.
                let (ring, fd) = (&ring, sv[1]);
                s.spawn(move || {
                    ring.0.submit_poll_multishot(fd, (libc::EPOLLIN | libc::EPOLLOUT) as u32, round).unwrap();
                    armed_tx.send(()).unwrap();
                    let _ = done_rx.recv();
                });
                armed_rx.recv().unwrap();
                ring.0.sync_cancel_and_free(round).unwrap();
                let _ = super::super::fd::close(sv[1]);
                // The close was the socket's last: its peer sees it gone at once, as natively.
                // SAFETY: a one-byte send from a buffer we own.
                let r = unsafe { libc::send(sv[0], b"x".as_ptr().cast(), 1, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) };
                let e = std::io::Error::last_os_error().raw_os_error();
                done_tx.send(()).unwrap();
                assert_eq!((r, e), (-1, Some(libc::EPIPE)), "round {round}: a send after the peer's close");
            });
            let _ = super::super::fd::close(sv[0]);
        }
        assert_eq!(ring.0.sync_cancel_and_free(0), Err(Errno(libc::ENOENT)));
        let _ = super::super::fd::close(ring.0.fd());
    }

    #[test]
    fn futex_waits_complete_as_the_kernel_decides() {
        let Ok(ring) = Ring::for_futex_waits() else {
            eprintln!("io_uring futex waits unavailable here: nothing to test");
            return;
        };
        let word = Box::leak(Box::new(AtomicU32::new(7)));
        let addr = word as *const AtomicU32 as usize;
        // A wait whose value does not match ends at once with EAGAIN.
        ring.submit_futex_wait(addr, 8, u32::MAX, false, 1).unwrap();
        assert_eq!(completions(&ring, 1)[&1], -libc::EAGAIN);
        // Two waits, one woken by a plain shared FUTEX_WAKE counting it, the other cancelled.
        ring.submit_futex_wait(addr, 7, u32::MAX, false, 2).unwrap();
        ring.submit_futex_wait(addr, 7, u32::MAX, false, 3).unwrap();
        // SAFETY: FUTEX_WAKE uses the address only as a key.
        let woke = unsafe { super::super::futex::futex_raw(addr, libc::FUTEX_WAKE, 1, 0, 0, 0) }.unwrap();
        assert_eq!(woke, 1, "the kernel counted one queued wait");
        ring.submit_cancel(3, 0).unwrap();
        let got = completions(&ring, 3);
        assert_eq!(got[&2], 0, "the first queued wait was woken");
        assert_eq!(got[&3], -libc::ECANCELED);
        // A private wait is woken by a private wake, not a shared one.
        ring.submit_futex_wait(addr, 7, u32::MAX, true, 4).unwrap();
        // SAFETY: as above.
        let woke =
            unsafe { super::super::futex::futex_raw(addr, libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG, 1, 0, 0, 0) }
                .unwrap();
        assert_eq!(woke, 1);
        assert_eq!(completions(&ring, 1)[&4], 0);
        let _ = super::super::fd::close(ring.fd());
    }
}
