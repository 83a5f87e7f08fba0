//! Helper OS threads for calls that must really block in the kernel — because something outside the
//! process is to wake them there (a futex shared with another process), or because nothing can be
//! polled. The coroutine parks while a helper makes the call; a plain thread simply makes it itself.
//! Helpers are made on demand and kept for reuse once idle.

use super::lock::Lock;
use super::parking_lot::{self, Interrupt, Parked};
use super::sys::futex;
use super::worker;
use core::sync::atomic::{AtomicU32, Ordering};
use std::ffi::c_void;

type Job = Box<dyn FnOnce() + Send>;

struct Helper {
    /// 1 when a job is waiting for this helper.
    has_job: AtomicU32,
    job: Lock<Option<Job>>,
}

static IDLE: Lock<Vec<&'static Helper>> = Lock::new(Vec::new());

extern "C" fn helper_main(arg: *mut c_void) -> *mut c_void {
    // SAFETY: arg is a leaked &'static Helper; GS is cleared so hooks see a plain thread.
    let h: &'static Helper = unsafe { &*(arg as *const Helper) };
    unsafe { super::sys::fsgs::set_gs_base(0) };
    loop {
        while h.has_job.load(Ordering::Acquire) == 0 {
            futex::wait(&h.has_job, 0, None);
        }
        let job = h.job.lock().take();
        h.has_job.store(0, Ordering::Release);
        if let Some(job) = job {
            job();
        }
        IDLE.lock().push(h);
    }
}

fn helper() -> Option<&'static Helper> {
    if let Some(h) = IDLE.lock().pop() {
        return Some(h);
    }
    let h: &'static Helper = Box::leak(Box::new(Helper { has_job: AtomicU32::new(0), job: Lock::new(None) }));
    // SAFETY: the helper record lives for the process.
    unsafe { super::thread::start_os_thread(helper_main, h as *const Helper as *mut c_void) }.then_some(h)
}

/// Runs `call` on a helper OS thread while the calling coroutine parks, and returns its result. A plain
/// thread (or if no helper can be started) runs it directly.
pub fn run<R: Send + 'static>(call: impl FnOnce() -> R + Send + 'static) -> R {
    if worker::current_task().is_none() {
        return call();
    }
    let Some(h) = helper() else { return call() };
    struct Done<R> {
        result: Lock<Option<R>>,
        finished: AtomicU32,
    }
    let done: &'static Done<R> = Box::leak(Box::new(Done { result: Lock::new(None), finished: AtomicU32::new(0) }));
    let key = done as *const Done<R> as usize;
    *h.job.lock() = Some(Box::new(move || {
        let r = call();
        *done.result.lock() = Some(r);
        done.finished.store(1, Ordering::Release);
        parking_lot::unpark_all(key, 0);
    }));
    h.has_job.store(1, Ordering::Release);
    futex::wake(&h.has_job, 1);
    while done.finished.load(Ordering::Acquire) == 0 {
        let finished = &done.finished;
        if parking_lot::park(key, 0, || finished.load(Ordering::Acquire) == 0, || {}, None, Interrupt::No)
            == Parked::Invalid
        {
            break;
        }
    }
    let r = done.result.lock().take().expect("helper stored the result");
    // SAFETY: the helper no longer touches `done` after setting `finished` (its unpark uses the address
    // only as a key), and only this coroutine frees it.
    drop(unsafe { Box::from_raw(done as *const Done<R> as *mut Done<R>) });
    r
}
