//! Why a coroutine waits: the one typed reason every park carries (see `park`). A leaf, so that the
//! statistics' counters, the convoy detector and the thread listing can name a wait without importing the
//! park machinery.

/// Why a coroutine waits: the typed reason every park carries, counted in the statistics, read by the
/// convoy detector and shown by the thread listing (as its index + 1 in `Task::waiting_for`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum WaitReason {
    FdRead,
    FdWrite,
    Poll,
    /// A sleep (the object is its deadline), or a wait for a signal (sigsuspend, sigwait: object 0).
    Sleep,
    Mutex,
    Cond,
    RwLock,
    Semaphore,
    Barrier,
    Futex,
    Once,
    Join,
    Offload,
}

impl WaitReason {
    pub const COUNT: usize = 13;
    const ALL: [WaitReason; WaitReason::COUNT] = [
        WaitReason::FdRead,
        WaitReason::FdWrite,
        WaitReason::Poll,
        WaitReason::Sleep,
        WaitReason::Mutex,
        WaitReason::Cond,
        WaitReason::RwLock,
        WaitReason::Semaphore,
        WaitReason::Barrier,
        WaitReason::Futex,
        WaitReason::Once,
        WaitReason::Join,
        WaitReason::Offload,
    ];

    /// The reason with this index (`reason as usize`), for readers of `Task::waiting_for`.
    pub fn from_index(i: usize) -> Option<WaitReason> {
        Self::ALL.get(i).copied()
    }

    /// A wait for a lock some other thread holds (what the convoy detector watches).
    pub fn is_lock_wait(self) -> bool {
        matches!(self, WaitReason::Mutex | WaitReason::Cond | WaitReason::RwLock | WaitReason::Futex)
    }
}
