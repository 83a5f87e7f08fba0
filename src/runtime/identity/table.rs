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
//! its key table `__pthread_keys`.
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
    pub facts: &'static [(&'static str, Expect)],
}

impl Entry {
    pub fn expect(&self, fact: &str) -> Option<Expect> {
        self.facts.iter().find(|(n, _)| *n == fact).map(|&(_, e)| e)
    }
}

/// `__wrefs` moved from 36 to 28 in 2.41 (`__g_refs` removed), and the change was backported to the
/// 2.38–2.40 stable branches: builds of those differ, and the probe decides.
const WREFS_EITHER: Expect = OneOf(&[36, 28]);

/// Descriptor fields that did not move from 2.31 to 2.43.
macro_rules! stable_descriptor {
    () => {
        [
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
        ]
    };
}

const fn concat<const A: usize, const B: usize, const N: usize>(
    a: [(&'static str, Expect); A],
    b: [(&'static str, Expect); B],
) -> [(&'static str, Expect); N] {
    let mut out = [("", Absent); N];
    let mut i = 0;
    while i < A {
        out[i] = a[i];
        i += 1;
    }
    while i < N {
        out[i] = b[i - A];
        i += 1;
    }
    out
}

const DEBIAN_11: [(&str, Expect); 33] = concat(
    stable_descriptor!(),
    [
        ("size", Is(2304)),
        ("user_stack", Is(1554)),
        ("stack_mode", Absent),
        ("joinid", Is(1576)),
        ("joinstate", Absent),
        ("result", Is(1584)),
        ("start_routine", Is(1600)),
        ("rseq", Absent),
        ("tls.size", Is(0x90)),
        ("tls.errno", Is(0x10)),
        ("tls.resp", Is(0x08)),
        ("tls.h_errno", Is(0x74)),
        ("tls.dlerror", Absent),
        ("tcache", Is(0x40)),
        ("tcache.shutting_down", Is(8)),
        ("tcache.disabled", Absent),
        ("tcache.arena", Is(0x50)),
        ("tcache.dummy", Is(0)),
        ("tcache.bins", Is(64)),
        ("tcache.safe_linking", Is(0)),
        ("cond.wrefs", Is(36)),
        ("keys.exported", Is(0)),
        ("keys.found", Is(1)),
    ],
);

const RHEL_9: [(&str, Expect); 24] = concat(
    stable_descriptor!(),
    [
        ("user_stack", Is(1554)),
        ("stack_mode", Absent),
        ("joinid", Is(1576)),
        ("joinstate", Absent),
        ("result", Is(1584)),
        ("start_routine", Is(1600)),
        ("tcache.shutting_down", Is(8)),
        ("tcache.disabled", Absent),
        ("tcache.dummy", Is(0)),
        ("tcache.bins", Is(64)),
        ("tcache.safe_linking", Is(1)),
        ("cond.wrefs", WREFS_EITHER),
        ("keys.exported", Is(1)),
        ("keys.found", Is(1)),
    ],
);

/// Ubuntu 22.04's 2.35 (upstream 2.35 has the same descriptor: 128-byte `sigmask`, unused `pid` and
/// cpuclock fields, and separate cancel state and type, all gone in 2.36).
const UBUNTU_22_04: [(&str, Expect); 33] = concat(
    stable_descriptor!(),
    [
        ("size", Is(2496)),
        ("user_stack", Is(1554)),
        ("stack_mode", Absent),
        ("joinid", Is(1576)),
        ("joinstate", Absent),
        ("result", Is(1584)),
        ("start_routine", Is(1600)),
        ("rseq", Is(2464)),
        ("tls.size", Is(0x90)),
        ("tls.errno", Is(0x10)),
        ("tls.resp", Is(0x08)),
        ("tls.h_errno", Is(0x74)),
        ("tls.dlerror", Is(0x40)),
        ("tcache", Is(0x48)),
        ("tcache.shutting_down", Is(8)),
        ("tcache.disabled", Absent),
        ("tcache.arena", Is(0x58)),
        ("tcache.dummy", Is(0)),
        ("tcache.bins", Is(64)),
        ("tcache.safe_linking", Is(1)),
        ("cond.wrefs", WREFS_EITHER),
        ("keys.exported", Is(1)),
        ("keys.found", Is(1)),
    ],
);

const DEBIAN_12: [(&str, Expect); 33] = concat(
    stable_descriptor!(),
    [
        ("size", Is(2368)),
        ("user_stack", Is(1554)),
        ("stack_mode", Absent),
        ("joinid", Is(1568)),
        ("joinstate", Absent),
        ("result", Is(1576)),
        ("start_routine", Is(1592)),
        ("rseq", Is(2336)),
        ("tls.size", Is(0x90)),
        ("tls.errno", Is(0x10)),
        ("tls.resp", Is(0x08)),
        ("tls.h_errno", Is(0x74)),
        ("tls.dlerror", Is(0x40)),
        ("tcache", Is(0x48)),
        ("tcache.shutting_down", Is(8)),
        ("tcache.disabled", Absent),
        ("tcache.arena", Is(0x58)),
        ("tcache.dummy", Is(0)),
        ("tcache.bins", Is(64)),
        ("tcache.safe_linking", Is(1)),
        ("cond.wrefs", WREFS_EITHER),
        ("keys.exported", Is(1)),
        ("keys.found", Is(1)),
    ],
);

const UBUNTU_24_04: [(&str, Expect); 33] = concat(
    stable_descriptor!(),
    [
        ("size", Is(2368)),
        ("user_stack", Is(1554)),
        ("stack_mode", Absent),
        ("joinid", Is(1568)),
        ("joinstate", Absent),
        ("result", Is(1576)),
        ("start_routine", Is(1592)),
        ("rseq", Is(2336)),
        ("tls.size", Is(0x88)),
        ("tls.errno", Is(0x10)),
        ("tls.resp", Is(0x08)),
        ("tls.h_errno", Is(0x60)),
        ("tls.dlerror", Is(0x40)),
        ("tcache", Is(0x48)),
        ("tcache.shutting_down", Is(8)),
        ("tcache.disabled", Absent),
        ("tcache.arena", Is(0x58)),
        ("tcache.dummy", Is(0)),
        ("tcache.bins", Is(64)),
        ("tcache.safe_linking", Is(1)),
        ("cond.wrefs", WREFS_EITHER),
        ("keys.exported", Is(1)),
        ("keys.found", Is(1)),
    ],
);

const DEBIAN_13: [(&str, Expect); 33] = concat(
    stable_descriptor!(),
    [
        ("size", Is(2368)),
        ("user_stack", Is(1554)),
        ("stack_mode", Absent),
        ("joinid", Is(1568)),
        ("joinstate", Absent),
        ("result", Is(1576)),
        ("start_routine", Is(1592)),
        ("rseq", InStaticTls),
        ("tls.size", Is(0x88)),
        ("tls.errno", Is(0x28)),
        ("tls.resp", Is(0x20)),
        ("tls.h_errno", Is(0x60)),
        ("tls.dlerror", Is(0x40)),
        ("tcache", Is(0x48)),
        ("tcache.shutting_down", Is(8)),
        ("tcache.disabled", Absent),
        ("tcache.arena", Is(0x58)),
        ("tcache.dummy", Is(0)),
        ("tcache.bins", Is(64)),
        ("tcache.safe_linking", Is(1)),
        ("cond.wrefs", Is(28)),
        ("keys.exported", Is(1)),
        ("keys.found", Is(1)),
    ],
);

/// 2.42: `user_stack` became the int `stack_mode` (2 = the user's stack) and joinid/result moved back by
/// 8; the thread cache grew to 76 bins.
const GLIBC_2_42: [(&str, Expect); 33] = concat(
    stable_descriptor!(),
    [
        ("size", Is(2368)),
        ("user_stack", Absent),
        ("stack_mode", Is(1556)),
        ("joinid", Is(1576)),
        ("joinstate", Absent),
        ("result", Is(1584)),
        ("start_routine", Is(1600)),
        ("rseq", InStaticTls),
        ("tls.size", Is(0x88)),
        ("tls.errno", Is(0x28)),
        ("tls.resp", Is(0x20)),
        ("tls.h_errno", Is(0x60)),
        ("tls.dlerror", Is(0x40)),
        ("tcache", Is(0x48)),
        ("tcache.shutting_down", Is(8)),
        ("tcache.disabled", Absent),
        ("tcache.arena", Is(0x58)),
        ("tcache.dummy", Is(0)),
        ("tcache.bins", Is(76)),
        ("tcache.safe_linking", Is(1)),
        ("cond.wrefs", Is(28)),
        ("keys.exported", Is(1)),
        ("keys.found", Is(1)),
    ],
);

/// 2.43: `joinstate` (an enum the kernel clears at exit) replaces joinid and the tid's role in joining;
/// a thread without a cache points at a read-only dummy, disabling it means pointing at the dummy's
/// `disabled` member, and `tcache_shutting_down` is gone.
const DEBIAN_SID_2_43: [(&str, Expect); 33] = concat(
    stable_descriptor!(),
    [
        ("size", Is(2368)),
        ("user_stack", Absent),
        ("stack_mode", Is(1556)),
        ("joinid", Absent),
        ("joinstate", Is(1576)),
        ("result", Is(1584)),
        ("start_routine", Is(1600)),
        ("rseq", InStaticTls),
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
        ("tcache.bins", Is(76)),
        ("tcache.safe_linking", Is(1)),
        ("cond.wrefs", Is(28)),
        ("keys.exported", Is(1)),
        ("keys.found", Is(1)),
    ],
);

/// Every known release, oldest first.
pub static ENTRIES: &[Entry] = &[
    Entry { version: (2, 31), name: "Debian 11", tested: true, facts: &DEBIAN_11 },
    Entry { version: (2, 34), name: "RHEL 9", tested: false, facts: &RHEL_9 },
    Entry { version: (2, 35), name: "Ubuntu 22.04", tested: false, facts: &UBUNTU_22_04 },
    Entry { version: (2, 36), name: "Debian 12", tested: true, facts: &DEBIAN_12 },
    Entry { version: (2, 39), name: "Ubuntu 24.04", tested: false, facts: &UBUNTU_24_04 },
    Entry { version: (2, 41), name: "Debian 13", tested: true, facts: &DEBIAN_13 },
    Entry { version: (2, 42), name: "glibc 2.42", tested: false, facts: &GLIBC_2_42 },
    Entry { version: (2, 43), name: "Debian sid", tested: true, facts: &DEBIAN_SID_2_43 },
];

/// Facts whose value is a meaning, not a place: a glibc newer than the table must have the newest
/// release's value, while its offsets may move.
pub const SEMANTIC: &[&str] = &["tcache.dummy", "tcache.safe_linking", "keys.exported", "keys.found"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_ordered_and_have_no_duplicate_facts() {
        for w in ENTRIES.windows(2) {
            assert!(w[0].version < w[1].version);
        }
        for e in ENTRIES {
            for (i, (n, _)) in e.facts.iter().enumerate() {
                assert!(!n.is_empty(), "{}: unfilled fact", e.name);
                assert!(e.facts[i + 1..].iter().all(|(m, _)| m != n), "{}: {n} twice", e.name);
            }
        }
    }
}
