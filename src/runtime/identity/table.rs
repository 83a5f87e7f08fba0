//! What each known glibc release looks like, for [`super::layout`] to cross-check what it learned from
//! libc's exports and the start-up probes, and to supply what neither can see.
//!
//! Offsets are in bytes (x86-64). Descriptor fields are offsets in `struct pthread`; `tls.*` are offsets in
//! libc.so.6's own TLS block (`tls.size` its size); `rseq` is `__rseq_offset` (from the thread pointer:
//! positive inside the descriptor, negative in static TLS from 2.41 on); `tcache` is the offset of
//! malloc's thread-cache pointer in that block, `tcache.shutting_down` and `tcache.disabled` are relative
//! to it (the flag that stops a cache being made before 2.43, the "disabled" dummy from 2.43 on);
//! `tcache.dummy` is 1 when a thread without a cache points at a read-only dummy instead of NULL (2.43);
//! `cond.wrefs` is the offset of `__wrefs` in `pthread_cond_t`; `keys.exported` whether libc exports
//! its key table `__pthread_keys`; `join.clock_checked` whether the timed joins refuse other clocks than
//! CLOCK_REALTIME and CLOCK_MONOTONIC before anything else (2.32 on; 2.31 waits on any clock).
//!
//! Values come from each release's own debug info (`gdb ptype /o`, libc6-dbg) and a probe program run in
//! it (`shared/notes/glibc-layouts.md`); Ubuntu 22.04/24.04 were measured the same way from Ubuntu's
//! packages. The RHEL 9 entry is derived from upstream 2.34's sources (descriptor fields that did not move
//! between 2.31 and 2.35); Red Hat backports much into its 2.34, so the fields its backports could have
//! moved (descriptor size, rseq, libc's TLS block) are left to the probes.

/// What a release has for one fact.
#[derive(Clone, Copy, Debug)]
pub enum Expect {
    Is(i64),
    /// Either value is right for this release (a change backported to some builds of it).
    OneOf(&'static [i64]),
    /// The release has no such field or symbol.
    Absent,
    /// Some negative value: the rseq area in static TLS (2.41 on), whose offset depends on the TLS of
    /// the modules loaded before libc (the program's, this library's).
    InStaticTls,
}
use Expect::{Absent, InStaticTls, Is, OneOf};

pub struct Entry {
    pub version: (u32, u32),
    /// Who ships it (for messages and `asyncshim doctor`).
    pub name: &'static str,
    /// Run here (in a chroot of that release) rather than only derived.
    pub tested: bool,
    /// The facts, in groups that releases share.
    pub facts: &'static [&'static [(&'static str, Expect)]],
}

impl Entry {
    pub fn expect(&self, fact: &str) -> Option<Expect> {
        self.facts.iter().flat_map(|g| g.iter()).find(|(n, _)| *n == fact).map(|&(_, e)| e)
    }
}

type Group = &'static [(&'static str, Expect)];

/// Descriptor fields that did not move from 2.31 to 2.43.
const DESCRIPTOR: Group = &[
    ("list", Is(704)),
    ("tid", Is(720)),
    ("robust_head", Is(736)),
    ("cleanup_jmp_buf", Is(768)),
    ("cancelhandling", Is(776)),
    ("specific_1stblock", Is(784)),
    ("specific", Is(1296)),
    ("specific_used", Is(1552)),
    ("stackblock", Is(1680)),
    ("res", Is(1720)),
];

/// 2.31 to 2.35: `bool user_stack`, joinid and result after the unused `pid` and cpuclock fields.
const JOIN_2_31: Group = &[
    ("user_stack", Is(1554)),
    ("stack_mode", Absent),
    ("joinid", Is(1576)),
    ("joinstate", Absent),
    ("result", Is(1584)),
    ("start_routine", Is(1600)),
];

/// 2.36 to 2.41: the unused fields gone, everything from joinid on 8 bytes earlier.
const JOIN_2_36: Group = &[
    ("user_stack", Is(1554)),
    ("stack_mode", Absent),
    ("joinid", Is(1568)),
    ("joinstate", Absent),
    ("result", Is(1576)),
    ("start_routine", Is(1592)),
];

/// 2.42: `user_stack` became the int `stack_mode` (2 = the user's stack), joinid and result 8 bytes later.
const JOIN_2_42: Group = &[
    ("user_stack", Absent),
    ("stack_mode", Is(1556)),
    ("joinid", Is(1576)),
    ("joinstate", Absent),
    ("result", Is(1584)),
    ("start_routine", Is(1600)),
];

/// 2.43: `joinstate`, an enum the kernel clears at exit, replaces joinid and the tid's part in joining.
const JOIN_2_43: Group = &[
    ("user_stack", Absent),
    ("stack_mode", Is(1556)),
    ("joinid", Absent),
    ("joinstate", Is(1576)),
    ("result", Is(1584)),
    ("start_routine", Is(1600)),
];

/// libc's TLS block of 2.35 and 2.36 (2.31 lacks `__libc_dlerror_result` and has the malloc words 8
/// bytes earlier).
const TLS_2_35: Group = &[
    ("tls.size", Is(0x90)),
    ("tls.errno", Is(0x10)),
    ("tls.resp", Is(0x08)),
    ("tls.h_errno", Is(0x74)),
    ("tls.dlerror", Is(0x40)),
    ("tcache", Is(0x48)),
    ("tcache.arena", Is(0x58)),
];

/// libc's TLS block of 2.41 and 2.42.
const TLS_2_41: Group = &[
    ("tls.size", Is(0x88)),
    ("tls.errno", Is(0x28)),
    ("tls.resp", Is(0x20)),
    ("tls.h_errno", Is(0x60)),
    ("tls.dlerror", Is(0x40)),
    ("tcache", Is(0x48)),
    ("tcache.arena", Is(0x58)),
];

/// Until 2.42: a thread without a cache has a NULL pointer; `tcache_shutting_down` follows it.
const CACHE_FLAG: Group = &[("tcache.shutting_down", Is(8)), ("tcache.disabled", Absent), ("tcache.dummy", Is(0))];

/// 2.34 on: libpthread is part of libc, which exports its key table.
const KEYS_EXPORTED: Group = &[("keys.exported", Is(1)), ("keys.found", Is(1))];

const BINS_64_SAFE: Group = &[("tcache.bins", Is(64)), ("tcache.safe_linking", Is(1))];
const BINS_76_SAFE: Group = &[("tcache.bins", Is(76)), ("tcache.safe_linking", Is(1))];

/// `__wrefs` moved from 36 to 28 in 2.41 (`__g_refs` removed), and the change was backported to the
/// 2.38–2.40 stable branches: builds of those differ, and the probe decides.
const WREFS_EITHER: Group = &[("cond.wrefs", OneOf(&[36, 28]))];
const WREFS_28: Group = &[("cond.wrefs", Is(28))];

const DEBIAN_11: Group = &[
    ("size", Is(2304)),
    ("rseq", Absent),
    ("tls.size", Is(0x90)),
    ("tls.errno", Is(0x10)),
    ("tls.resp", Is(0x08)),
    ("tls.h_errno", Is(0x74)),
    ("tls.dlerror", Absent),
    ("tcache", Is(0x40)),
    ("tcache.arena", Is(0x50)),
    ("tcache.bins", Is(64)),
    ("tcache.safe_linking", Is(0)),
    ("cond.wrefs", Is(36)),
    ("keys.exported", Is(0)),
    ("keys.found", Is(1)),
];

/// Ubuntu 22.04's 2.35 (upstream 2.35 has the same descriptor: a 128-byte `sigmask`, unused `pid` and
/// cpuclock fields, and separate cancel state and type, all gone in 2.36).
const UBUNTU_22_04: Group = &[("size", Is(2496)), ("rseq", Is(2464))];
const DEBIAN_12: Group = &[("size", Is(2368)), ("rseq", Is(2336))];
const UBUNTU_24_04: Group = &[
    ("size", Is(2368)),
    ("rseq", Is(2336)),
    ("tls.size", Is(0x88)),
    ("tls.errno", Is(0x10)),
    ("tls.resp", Is(0x08)),
    ("tls.h_errno", Is(0x60)),
    ("tls.dlerror", Is(0x40)),
    ("tcache", Is(0x48)),
    ("tcache.arena", Is(0x58)),
];
const RSEQ_IN_STATIC_TLS: Group = &[("size", Is(2368)), ("rseq", InStaticTls)];

/// 2.43: a thread without a cache points at a read-only dummy, disabling it means pointing at the dummy's
/// `disabled` member, and `tcache_shutting_down` is gone.
const DEBIAN_SID_2_43: Group = &[
    ("tls.size", Is(0x80)),
    ("tls.errno", Is(0x30)),
    ("tls.resp", Is(0x28)),
    ("tls.h_errno", Is(0x58)),
    ("tls.dlerror", Is(0x48)),
    ("tcache", Is(0x20)),
    ("tcache.shutting_down", Absent),
    ("tcache.disabled", Is(8)),
    ("tcache.arena", Is(0x50)),
    ("tcache.dummy", Is(1)),
];

/// 2.31 validates a timed join's clock only while waiting for a running thread (and accepts any clock
/// `clock_gettime` knows); 2.32 refuses all but CLOCK_REALTIME and CLOCK_MONOTONIC first.
const CLOCK_UNCHECKED: Group = &[("join.clock_checked", Is(0))];
const CLOCK_CHECKED: Group = &[("join.clock_checked", Is(1))];

/// Every known release, oldest first.
pub static ENTRIES: &[Entry] = &[
    Entry {
        version: (2, 31),
        name: "Debian 11",
        tested: true,
        facts: &[DEBIAN_11, DESCRIPTOR, JOIN_2_31, CACHE_FLAG, CLOCK_UNCHECKED],
    },
    Entry {
        version: (2, 34),
        name: "RHEL 9",
        tested: false,
        facts: &[DESCRIPTOR, JOIN_2_31, CACHE_FLAG, BINS_64_SAFE, WREFS_EITHER, KEYS_EXPORTED, CLOCK_CHECKED],
    },
    Entry {
        version: (2, 35),
        name: "Ubuntu 22.04",
        tested: false,
        facts: &[
            UBUNTU_22_04,
            DESCRIPTOR,
            JOIN_2_31,
            TLS_2_35,
            CACHE_FLAG,
            BINS_64_SAFE,
            WREFS_EITHER,
            KEYS_EXPORTED,
            CLOCK_CHECKED,
        ],
    },
    Entry {
        version: (2, 36),
        name: "Debian 12",
        tested: true,
        facts: &[
            DEBIAN_12,
            DESCRIPTOR,
            JOIN_2_36,
            TLS_2_35,
            CACHE_FLAG,
            BINS_64_SAFE,
            WREFS_EITHER,
            KEYS_EXPORTED,
            CLOCK_CHECKED,
        ],
    },
    Entry {
        version: (2, 39),
        name: "Ubuntu 24.04",
        tested: false,
        facts: &[
            UBUNTU_24_04,
            DESCRIPTOR,
            JOIN_2_36,
            CACHE_FLAG,
            BINS_64_SAFE,
            WREFS_EITHER,
            KEYS_EXPORTED,
            CLOCK_CHECKED,
        ],
    },
    Entry {
        version: (2, 41),
        name: "Debian 13",
        tested: true,
        facts: &[
            RSEQ_IN_STATIC_TLS,
            DESCRIPTOR,
            JOIN_2_36,
            TLS_2_41,
            CACHE_FLAG,
            BINS_64_SAFE,
            WREFS_28,
            KEYS_EXPORTED,
            CLOCK_CHECKED,
        ],
    },
    Entry {
        version: (2, 42),
        name: "glibc 2.42",
        tested: false,
        facts: &[
            RSEQ_IN_STATIC_TLS,
            DESCRIPTOR,
            JOIN_2_42,
            TLS_2_41,
            CACHE_FLAG,
            BINS_76_SAFE,
            WREFS_28,
            KEYS_EXPORTED,
            CLOCK_CHECKED,
        ],
    },
    Entry {
        version: (2, 43),
        name: "Debian sid",
        tested: true,
        facts: &[
            DEBIAN_SID_2_43,
            RSEQ_IN_STATIC_TLS,
            DESCRIPTOR,
            JOIN_2_43,
            BINS_76_SAFE,
            WREFS_28,
            KEYS_EXPORTED,
            CLOCK_CHECKED,
        ],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_ordered_and_say_each_fact_once() {
        for w in ENTRIES.windows(2) {
            assert!(w[0].version < w[1].version);
        }
        for e in ENTRIES {
            let names: Vec<&str> = e.facts.iter().flat_map(|g| g.iter()).map(|(n, _)| *n).collect();
            for (i, n) in names.iter().enumerate() {
                assert!(!names[i + 1..].contains(n), "{}: {n} twice", e.name);
            }
        }
    }

    #[test]
    fn tested_releases_have_every_fact() {
        for e in ENTRIES.iter().filter(|e| e.tested) {
            for name in super::super::layout::FACTS {
                assert!(e.expect(name).is_some(), "{} has no {name}", e.name);
            }
        }
    }
}
