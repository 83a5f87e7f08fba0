//! What the scheduler core holds of a thread's scheduling attributes: the record in each task
//! ([`TaskSched`]), the attributes themselves ([`Sched`]) with the kernel's pure rules about them, and
//! glibc's priority-protect bookkeeping ([`Tpp`]). A leaf (it imports only the runtime's lock and the
//! system-call layer's types), so that `task` holds the record without depending on the policy that
//! asks the kernel for its verdicts (the parent module) or on the priority-protect mutexes (`sync::pp`).

use crate::runtime::lock::Lock;
use crate::runtime::sys::sched;

/// Bytes of affinity mask kept (CPU_SETSIZE: 1024 CPUs).
pub const MASK_BYTES: usize = 128;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Sched {
    /// The policy without the reset-on-fork flag.
    pub policy: i32,
    pub priority: i32,
    pub nice: i32,
    pub reset_on_fork: bool,
    pub mask: [u8; MASK_BYTES],
    /// Bytes of mask the kernel uses (its `cpumask_size()`).
    pub mask_len: usize,
    /// What else `sched_getattr` reports: the deadline parameters, the utilisation clamps and their flags.
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
    pub util: (u32, u32),
    pub other_flags: u64,
    /// The I/O priority set with ioprio_set (None: none set since the process started, so the thread has
    /// what the initial thread had).
    pub ioprio: Option<i32>,
}

/// SCHED_DEADLINE.
pub const SCHED_DEADLINE: i32 = 6;

impl Sched {
    /// The policy as sched_getscheduler and pthread_getschedparam report it.
    pub fn policy_with_flags(&self) -> i32 {
        self.policy | if self.reset_on_fork { libc::SCHED_RESET_ON_FORK } else { 0 }
    }

    /// What `sched_getattr` of the thread reports (the kernel's form: a real-time thread's nice value is
    /// not shown, a fair one's priority is 0; deadline parameters only for SCHED_DEADLINE).
    pub fn as_attr(&self) -> sched::SchedAttr {
        let rt = self.policy == libc::SCHED_FIFO || self.policy == libc::SCHED_RR;
        let dl = self.policy == SCHED_DEADLINE;
        sched::SchedAttr {
            size: core::mem::size_of::<sched::SchedAttr>() as u32,
            policy: self.policy as u32,
            flags: self.other_flags | if self.reset_on_fork { sched::FLAG_RESET_ON_FORK } else { 0 },
            nice: if rt || dl { 0 } else { self.nice },
            priority: if rt { self.priority as u32 } else { 0 },
            // A fair thread's is its time slice (reported since Linux 6.12), a deadline one's its budget.
            runtime: if rt { 0 } else { self.runtime },
            deadline: if dl { self.deadline } else { 0 },
            period: if dl { self.period } else { 0 },
            util_min: self.util.0,
            util_max: self.util.1,
        }
    }

    /// What a thread created by one with these attributes starts with (the kernel's `sched_fork`).
    pub(super) fn inherited(mut self) -> Sched {
        if self.reset_on_fork {
            if self.policy == libc::SCHED_FIFO || self.policy == libc::SCHED_RR || self.policy == SCHED_DEADLINE {
                self.policy = libc::SCHED_OTHER;
                self.priority = 0;
                self.nice = 0;
            } else if self.nice < 0 {
                self.nice = 0;
            }
            self.reset_on_fork = false;
        }
        // The kernel's copy_io: a new thread has its creator's I/O priority when one of a class was set.
        if self.ioprio.is_some_and(|p| p >> 13 == 0) {
            self.ioprio = None;
        }
        self
    }
}

/// sched_get_priority_min/max(SCHED_FIFO) on Linux.
pub const FIFO_MIN: i32 = 1;
pub const FIFO_MAX: i32 = 99;

/// glibc's `struct priority_protection_data`: the highest ceiling the thread is raised to and how many
/// holds it has at each ceiling.
#[derive(Clone, Copy)]
pub struct Tpp {
    pub(crate) priomax: i32,
    pub(crate) priomap: [u32; (FIFO_MAX - FIFO_MIN + 1) as usize],
}

impl Default for Tpp {
    fn default() -> Self {
        Tpp { priomax: FIFO_MIN - 1, priomap: [0; (FIFO_MAX - FIFO_MIN + 1) as usize] }
    }
}

impl Tpp {
    /// The ceiling the thread is raised to (below FIFO_MIN: none).
    pub fn priomax(&self) -> i32 {
        self.priomax
    }
}

/// A thread's attributes: the kernel's view (None while they are still the process's initial ones, so
/// that creating a thread costs no system call), glibc's record of the policy and priority in the
/// descriptor (ATTR_FLAG_POLICY_SET / ATTR_FLAG_SCHED_SET: taken from the kernel the first time glibc
/// needs them, then kept, as `pthread_getschedparam` reports them), and the priority-protect mutexes it
/// holds (glibc's `tpp`, see `sync::pp`).
pub struct TaskSched(pub(super) Lock<State>);

pub(super) struct State {
    pub(super) kernel: Option<Sched>,
    pub(super) glibc_policy: Option<i32>,
    pub(super) glibc_priority: Option<i32>,
    pub(super) tpp: Option<Tpp>,
}

impl Default for TaskSched {
    fn default() -> Self {
        Self::new()
    }
}

impl TaskSched {
    pub const fn new() -> TaskSched {
        TaskSched(Lock::new(State { kernel: None, glibc_policy: None, glibc_priority: None, tpp: None }))
    }
}
