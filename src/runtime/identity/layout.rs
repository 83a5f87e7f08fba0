//! The glibc layout the identity code works with, learned at start-up: what libc exports (`_thread_db_*`
//! descriptors, `__rseq_offset`, TLS symbols), what the probes of [`super::probe`] observed, cross-checked
//! against the release's entry in [`super::table`], which also supplies what no probe can see.
//!
//! Policy: a release in the table runs when every fact agrees with its entry. A glibc newer than the
//! newest entry runs when every fact was found unambiguously (or a probe confirmed the table's value) and
//! agrees with the newest entry: its layout then did not change, and the newest release's meanings
//! (which no probe sees) are taken to hold. Anything else passes through, with one line naming the fact
//! and both values.

use super::probe::{self, Observations};
use super::table::{Entry, Expect, entries};
use std::fmt::Write;

/// What the observations say about one fact.
#[derive(Clone, Debug, PartialEq)]
pub enum Evidence {
    /// Found, unambiguously.
    Found(i64),
    /// Several places fit.
    Candidates(Vec<i64>),
    /// This glibc has no such field or symbol.
    Absent,
    /// Nothing observed shows it (the table must say, and a probe may confirm).
    Unknown,
    /// The export and the probe disagree, or the probe saw something impossible.
    Wrong(String),
}

/// Where a fact's final value came from (for `asyncshim doctor`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Source {
    Observed,
    Table,
    TableConfirmed,
}

pub struct Fact {
    pub name: &'static str,
    pub evidence: Evidence,
    pub value: Option<i64>,
    pub source: Source,
}

/// A learned layout the runtime can work with.
pub struct Layout {
    pub pthread_size: usize,
    pub list: usize,
    pub tid: usize,
    pub robust_head: usize,
    pub cleanup_jmp_buf: usize,
    pub cancelhandling: usize,
    pub specific_1stblock: usize,
    pub specific: usize,
    pub specific_used: usize,
    pub user_stack: UserStack,
    pub join: Join,
    pub result: usize,
    pub stackblock: usize,
    pub res: usize,
    /// `__rseq_offset` and the length glibc registered (0: not registered), when glibc registers rseq.
    pub rseq: Option<(isize, u32)>,
    /// libc's TLS block, from the thread pointer, and its size.
    pub libc_tls: isize,
    pub libc_tls_size: usize,
    pub tls_resp: usize,
    pub malloc: Malloc,
    pub cond_wrefs: usize,
    pub keys: usize,
    pub static_size: usize,
    pub static_align: usize,
    /// The timed joins refuse a clock other than CLOCK_REALTIME and CLOCK_MONOTONIC up front (2.32 on);
    /// before, glibc waits on any clock `clock_gettime` knows and answers EINVAL only for one it does not,
    /// and only while the target runs.
    pub join_checks_clock: bool,
}

/// How the descriptor says "the stack is the user's, do not free it".
#[derive(Clone, Copy, Debug)]
pub enum UserStack {
    /// `bool user_stack` (to 2.41).
    Flag(usize),
    /// `enum allocate_stack_mode_t stack_mode`, ALLOCATE_GUARD_USER = 2 (2.42 on).
    Mode(usize),
}

/// How the descriptor records joinability.
#[derive(Clone, Copy, Debug)]
pub enum Join {
    /// `struct pthread *joinid`: NULL joinable, the thread itself when detached (to 2.42).
    Id(usize),
    /// `unsigned int joinstate`: THREAD_STATE_JOINABLE 2, THREAD_STATE_DETACHED 3 (2.43 on).
    State(usize),
}

/// malloc's per-thread cache, as the runtime handles it.
#[derive(Clone, Copy, Debug)]
pub struct Malloc {
    /// Offset of the `tcache` pointer in libc's TLS block.
    pub tcache: usize,
    /// What the pointer holds while a thread has no cache yet (NULL, or the address of a dummy).
    pub none: usize,
    pub hold: Hold,
    /// Offset of `thread_arena` in libc's TLS block.
    pub arena: usize,
    pub bins: usize,
    pub safe_linking: bool,
}

/// How to keep malloc from making a thread a cache.
#[derive(Clone, Copy, Debug)]
pub enum Hold {
    /// Set the byte `tcache_shutting_down` at this offset of libc's TLS block (to 2.42).
    Flag(usize),
    /// Point the cache at the read-only "disabled" dummy at this address (2.43 on).
    Disabled(usize),
}

/// The outcome of learning: the facts, and either a layout to run with or the reason not to.
pub struct Learned {
    pub version: String,
    pub facts: Vec<Fact>,
    pub entry: Option<&'static Entry>,
    pub result: Result<Layout, String>,
    pub observations: Observations,
}

pub const FACTS: &[&str] = &[
    "size",
    "list",
    "tid",
    "robust_head",
    "cleanup_jmp_buf",
    "cancelhandling",
    "specific_1stblock",
    "specific",
    "specific_used",
    "user_stack",
    "stack_mode",
    "joinid",
    "joinstate",
    "result",
    "start_routine",
    "stackblock",
    "res",
    "rseq",
    "tls.size",
    "tls.errno",
    "tls.resp",
    "tls.h_errno",
    "tls.dlerror",
    "tcache",
    "tcache.shutting_down",
    "tcache.disabled",
    "tcache.arena",
    "tcache.dummy",
    "tcache.bins",
    "tcache.safe_linking",
    "cond.wrefs",
    "keys.exported",
    "keys.found",
    "join.clock_checked",
];

const MAGIC_KEY_DATA: u64 = probe::MAGIC_KEY_DATA as u64;
const MAGIC_RESULT: u64 = probe::MAGIC_RESULT as u64;
const THREAD_STATE_JOINABLE: u32 = 2;
const THREAD_STATE_DETACHED: u32 = 3;
const ALLOCATE_GUARD_USER: u32 = 2;

fn words(s: &[u8]) -> impl Iterator<Item = (usize, u64)> + '_ {
    s.chunks_exact(8).enumerate().map(|(i, c)| (i * 8, u64::from_ne_bytes(c.try_into().unwrap())))
}
fn word_at(s: &[u8], off: usize) -> Option<u64> {
    s.get(off..off + 8).map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
}
fn u32_at(s: &[u8], off: usize) -> Option<u32> {
    s.get(off..off + 4).map(|c| u32::from_ne_bytes(c.try_into().unwrap()))
}

fn one_of(found: Vec<i64>) -> Evidence {
    match found.len() {
        0 => Evidence::Unknown,
        1 => Evidence::Found(found[0]),
        _ => Evidence::Candidates(found),
    }
}

/// An exported value and a probed one, reconciled.
fn both(export: Option<i64>, probed: Evidence) -> Evidence {
    match (export, probed) {
        (None, p) => p,
        (Some(e), Evidence::Unknown) => Evidence::Found(e),
        (Some(e), Evidence::Found(p)) if p == e => Evidence::Found(e),
        (Some(e), Evidence::Candidates(c)) if c.contains(&e) => Evidence::Found(e),
        (Some(e), Evidence::Found(p)) => Evidence::Wrong(format!("exported {e}, probed {p}")),
        (Some(e), Evidence::Candidates(c)) => Evidence::Wrong(format!("exported {e}, probed {c:?}")),
        (Some(_), p) => p,
    }
}

struct Evidencer<'a> {
    o: &'a Observations,
    done: Vec<(&'static str, Evidence)>,
}

impl Evidencer<'_> {
    fn get(&mut self, name: &'static str) -> Evidence {
        if let Some((_, e)) = self.done.iter().find(|(n, _)| *n == name) {
            return e.clone();
        }
        let e = self.compute(name);
        self.done.push((name, e.clone()));
        e
    }

    fn export(&self, name: &str) -> Option<i64> {
        self.o.thread_db.iter().find(|(n, _)| *n == name).map(|&(_, v)| v as i64)
    }

    fn compute(&mut self, name: &'static str) -> Evidence {
        let o = self.o;
        let thread = o.thread_error.is_none() && o.tp != 0;
        let start = &o.copies.at_start[..];
        let tp = o.tp as u64;
        match name {
            "size" => {
                let probed = if thread && o.static_align <= 64 {
                    Evidence::Found((o.top - o.tp) as i64)
                } else {
                    Evidence::Unknown
                };
                both(o.sizeof_pthread.map(i64::from), probed)
            }
            "list" | "cancelhandling" => self.export(name).map_or(Evidence::Unknown, Evidence::Found),
            "tid" if thread => {
                let found = (0..start.len()).step_by(4).filter(|&i| u32_at(start, i) == Some(o.tid as u32));
                both(self.export("tid"), one_of(found.map(|i| i as i64).collect()))
            }
            "robust_head" => o.robust_head.map_or(Evidence::Unknown, |v| Evidence::Found(v as i64)),
            "cleanup_jmp_buf" if thread => match &o.copies.after_register_cancel {
                Some(reg) => one_of(
                    words(reg)
                        .filter(|&(i, w)| {
                            w == o.cancel_buf as u64 && word_at(&o.copies.after_setspecific, i) != Some(w)
                        })
                        .map(|(i, _)| i as i64)
                        .collect(),
                ),
                None => Evidence::Unknown,
            },
            "specific_1stblock" if thread => match o.key {
                Some(k) if k < 32 => one_of(
                    words(&o.copies.after_setspecific)
                        .filter(|&(i, w)| w == MAGIC_KEY_DATA && i >= 8 + 16 * k as usize)
                        .map(|(i, _)| (i - 8 - 16 * k as usize) as i64)
                        .collect(),
                ),
                _ => Evidence::Unknown,
            },
            "specific_used" if thread => match (self.get("specific_1stblock"), o.key) {
                (Evidence::Found(first), Some(k)) => {
                    let slot = first as usize + 16 * k as usize;
                    one_of(
                        (0..start.len())
                            .filter(|&i| !(slot..slot + 16).contains(&i))
                            .filter(|&i| start[i] == 0 && o.copies.after_setspecific[i] == 1)
                            .map(|i| i as i64)
                            .collect(),
                    )
                }
                _ => Evidence::Unknown,
            },
            "specific" => {
                let probed = match self.get("specific_1stblock") {
                    Evidence::Found(first) if thread => {
                        one_of(words(start).filter(|&(_, w)| w == tp + first as u64).map(|(i, _)| i as i64).collect())
                    }
                    _ => Evidence::Unknown,
                };
                both(self.export("specific"), probed)
            }
            "joinid" | "joinstate" if thread => {
                // Until 2.42 pthread_detach stores the descriptor's own address in `joinid`; from 2.43 it
                // moves `joinstate` from JOINABLE to DETACHED.
                let (before, after) = (&o.copies.before_detach[..], &o.copies.after_detach[..]);
                let by_id: Vec<i64> = words(after)
                    .filter(|&(i, w)| w == tp && word_at(before, i) == Some(0))
                    .map(|(i, _)| i as i64)
                    .collect();
                let by_state: Vec<i64> = (0..after.len())
                    .step_by(4)
                    .filter(|&i| {
                        u32_at(before, i) == Some(THREAD_STATE_JOINABLE)
                            && u32_at(after, i) == Some(THREAD_STATE_DETACHED)
                    })
                    .map(|i| i as i64)
                    .collect();
                match (name, by_id.is_empty(), by_state.is_empty()) {
                    ("joinid", false, _) => one_of(by_id),
                    ("joinstate", true, false) => one_of(by_state),
                    (_, true, true) => Evidence::Unknown,
                    _ => Evidence::Absent,
                }
            }
            "result" if thread => {
                one_of(words(&o.copies.after_join).filter(|&(_, w)| w == MAGIC_RESULT).map(|(i, _)| i as i64).collect())
            }
            "start_routine" => {
                let probed = if thread {
                    one_of(words(start).filter(|&(_, w)| w == o.start_routine as u64).map(|(i, _)| i as i64).collect())
                } else {
                    Evidence::Unknown
                };
                both(self.export("start_routine"), probed)
            }
            "stackblock" if thread => one_of(
                words(start)
                    .filter(|&(i, w)| w == o.stack_low as u64 && word_at(start, i + 8) == Some(o.stack_size as u64))
                    .map(|(i, _)| i as i64)
                    .collect(),
            ),
            "res" if thread => {
                let off = o.resp_in_thread.wrapping_sub(o.tp);
                if off < start.len() { Evidence::Found(off as i64) } else { Evidence::Unknown }
            }
            "rseq" => match o.rseq {
                None => Evidence::Absent,
                Some((off, size)) if size > 0 && thread && !(0..4096).contains(&o.rseq_cpu_id) => {
                    Evidence::Wrong(format!("rseq area at {off} not updated by the kernel (cpu_id {})", o.rseq_cpu_id))
                }
                Some((off, _)) => Evidence::Found(off as i64),
            },
            "tls.size" if o.libc.tls_size > 0 => Evidence::Found(o.libc.tls_size as i64),
            "tls.errno" if o.libc.tls_block != 0 => Evidence::Found(o.errno_addr as i64 - o.libc.tls_block as i64),
            "tls.resp" | "tls.h_errno" | "tls.dlerror" if o.libc.tls_block != 0 => {
                match o.tls_symbols.iter().find(|(n, _)| *n == name).and_then(|&(_, a)| a) {
                    Some(a) => Evidence::Found(a as i64 - o.libc.tls_block as i64),
                    None => Evidence::Absent,
                }
            }
            "tcache" => o.tcache.map_or(Evidence::Unknown, |v| Evidence::Found(v as i64)),
            "tcache.bins" => o.tcache_bins.map_or(Evidence::Unknown, |v| Evidence::Found(v as i64)),
            "tcache.safe_linking" => o.safe_linking.map_or(Evidence::Unknown, |v| Evidence::Found(v as i64)),
            "tcache.dummy" => match o.tcache_initial {
                None => Evidence::Unknown,
                Some(0) => Evidence::Found(0),
                Some(v) if o.libc.contains(v) => Evidence::Found(1),
                Some(v) => Evidence::Wrong(format!("a new thread's cache pointer is {v:#x}")),
            },
            "tcache.shutting_down" | "tcache.disabled" => {
                let dummy_wanted = i64::from(name == "tcache.disabled");
                match self.get("tcache.dummy") {
                    Evidence::Found(d) if d == dummy_wanted => Evidence::Unknown,
                    Evidence::Found(_) => Evidence::Absent,
                    _ => Evidence::Unknown,
                }
            }
            "tcache.arena" => one_of(o.arena_candidates.iter().map(|&v| v as i64).collect()),
            "cond.wrefs" => one_of(o.cond_wrefs.iter().map(|&v| v as i64).collect()),
            "keys.exported" => Evidence::Found(o.keys_exported as i64),
            "keys.found" => Evidence::Found(o.keys_table.is_some() as i64),
            "join.clock_checked" => match o.self_join_cpu_clock {
                libc::EINVAL => Evidence::Found(1),
                libc::EDEADLK => Evidence::Found(0),
                0 => Evidence::Unknown,
                r => Evidence::Wrong(format!("a self-join on the CPU-time clock answered {r}")),
            },
            _ => Evidence::Unknown,
        }
    }

    /// Whether what was observed agrees with the table's `value` for a fact no probe located by itself:
    /// None when nothing can tell.
    fn confirm(&mut self, name: &str, value: i64) -> Option<bool> {
        let o = self.o;
        let start = &o.copies.at_start[..];
        let v = usize::try_from(value).ok()?;
        match name {
            "user_stack" if !start.is_empty() => Some(start.get(v) == Some(&1)),
            "stack_mode" if !start.is_empty() => Some(u32_at(start, v) == Some(ALLOCATE_GUARD_USER)),
            "list" if !start.is_empty() => {
                Some(matches!((word_at(start, v), word_at(start, v + 8)), (Some(a), Some(b)) if a != 0 && b != 0))
            }
            "tcache.shutting_down" | "tcache.disabled" => {
                let tcache = o.libc.tls_block + o.tcache?;
                let none = o.tcache_initial?;
                if name == "tcache.shutting_down" {
                    let flag = (tcache + v) as *mut u8;
                    // SAFETY: a byte of this thread's libc TLS block, put back as it was.
                    let was = unsafe { flag.read() };
                    // SAFETY: as above.
                    Some(probe::malloc_holds_off(tcache, none, |on| unsafe { flag.write(if on { 1 } else { was }) }))
                } else {
                    let slot = tcache as *mut usize;
                    // SAFETY: this thread's cache pointer, which malloc_holds_off saves and restores.
                    Some(probe::malloc_holds_off(tcache, none, |on| unsafe {
                        if on {
                            slot.write(none + v)
                        }
                    }))
                }
            }
            _ => None,
        }
    }
}

fn matches(v: i64, e: Expect) -> bool {
    match e {
        Expect::Is(x) => v == x,
        Expect::OneOf(xs) => xs.contains(&v),
        Expect::Absent => false,
        Expect::InStaticTls => v < 0,
    }
}

fn show(e: Expect) -> String {
    match e {
        Expect::Is(x) => x.to_string(),
        Expect::OneOf(xs) => xs.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(" or "),
        Expect::Absent => "none".into(),
        Expect::InStaticTls => "in static TLS (negative)".into(),
    }
}

/// Checks every fact against `entry`; `newer` applies the newer-than-the-table rules. Returns the final
/// values, or the problems (the first is what the pass-through line names).
fn check(ev: &mut Evidencer, entry: &Entry, newer: bool) -> Result<Vec<Fact>, Vec<String>> {
    let table = if newer { format!("table ({}.{})", entry.version.0, entry.version.1) } else { "table".into() };
    let mut facts = Vec::new();
    let mut problems = Vec::new();
    for &name in FACTS {
        let evidence = ev.get(name);
        let expect = entry.expect(name);
        let mut fact = |value, source| facts.push(Fact { name, evidence: evidence.clone(), value, source });
        match (&evidence, expect) {
            (Evidence::Wrong(why), _) => problems.push(format!("{name}: {why}")),
            (Evidence::Found(v), None) => fact(Some(*v), Source::Observed),
            (Evidence::Absent, None | Some(Expect::Absent)) => fact(None, Source::Observed),
            (Evidence::Unknown, Some(Expect::Absent)) => fact(None, Source::Table),
            (Evidence::Found(v), Some(Expect::Absent)) => problems.push(format!("{name} probed {v}, {table} none")),
            (Evidence::Found(v), Some(e)) if matches(*v, e) => fact(Some(*v), Source::Observed),
            (Evidence::Found(v), Some(e)) => problems.push(format!("{name} probed {v}, {table} {}", show(e))),
            (Evidence::Candidates(c), Some(e)) if newer => {
                problems.push(format!("{name} probed one of {c:?}, {table} {}", show(e)))
            }
            (Evidence::Candidates(c), Some(e)) => match c.iter().filter(|&&v| matches(v, e)).collect::<Vec<_>>()[..] {
                [v] => fact(Some(*v), Source::TableConfirmed),
                _ => problems.push(format!("{name} probed one of {c:?}, {table} {}", show(e))),
            },
            (Evidence::Absent, Some(e)) => problems.push(format!("{name} not found, {table} {}", show(e))),
            (Evidence::Unknown, Some(Expect::InStaticTls)) => {
                problems.push(format!("{name}: no probe for it, {table} in static TLS"))
            }
            (Evidence::Unknown, Some(e @ (Expect::Is(_) | Expect::OneOf(_)))) => {
                let value = match e {
                    Expect::Is(x) => x,
                    Expect::OneOf(xs) => xs[0],
                    Expect::Absent | Expect::InStaticTls => unreachable!(),
                };
                match ev.confirm(name, value) {
                    Some(true) => fact(Some(value), Source::TableConfirmed),
                    Some(false) => problems.push(format!("{name}: the probe contradicts {table} {value}")),
                    None if newer => problems.push(format!("{name}: no probe for it, {table} {value}")),
                    None => fact(Some(value), Source::Table),
                }
            }
            (Evidence::Candidates(c), None) => problems.push(format!("{name} probed one of {c:?}, not in the table")),
            (Evidence::Unknown, None) => problems.push(format!("{name}: no probe found it, not in the table")),
        }
    }
    if problems.is_empty() { Ok(facts) } else { Err(problems) }
}

fn parse_version(v: &str) -> Option<(u32, u32)> {
    let mut it = v.split('.');
    Some((it.next()?.parse().ok()?, it.next()?.trim_end_matches(|c: char| !c.is_ascii_digit()).parse().ok()?))
}

/// A knob for the test of pass-through (`make test`): only in a library built with the `test-knobs`
/// feature, never in the release build. `ASYNCSHIM_TEST_GLIBC` holds comma-separated changes:
/// `version=2.44` (pretend another version), `drop-entry` (forget this version's table entry),
/// `FACT+N` (the probe of FACT answers N more).
#[cfg(feature = "test-knobs")]
fn simulate(
    mut version: String,
    mut entries: Vec<&'static Entry>,
    ev: &mut Evidencer,
) -> (String, Vec<&'static Entry>) {
    // SAFETY: getenv with a NUL-terminated name.
    let p = unsafe { libc::getenv(c"ASYNCSHIM_TEST_GLIBC".as_ptr()) };
    if p.is_null() {
        return (version, entries);
    }
    // SAFETY: getenv returns a NUL-terminated string.
    let spec = unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy().into_owned();
    for item in spec.split(',') {
        if let Some(v) = item.strip_prefix("version=") {
            version = v.to_string();
        } else if item == "drop-entry" {
            let mine = parse_version(&version);
            entries.retain(|e| Some(e.version) != mine);
        } else if let Some((name, delta)) = item.split_once('+')
            && let (Some(&name), Ok(delta)) = (FACTS.iter().find(|&&n| n == name), delta.parse::<i64>())
            && let Evidence::Found(v) = ev.get(name)
        {
            ev.done.retain(|(n, _)| *n != name);
            ev.done.push((name, Evidence::Found(v + delta)));
        }
    }
    (version, entries)
}

/// Learns the layout: observes, then decides. Called once, on the initial thread.
pub fn learn() -> Learned {
    let o = probe::observe();
    let version = o.version.clone();
    let entries: Vec<&'static Entry> = entries().iter().collect();
    let mut ev = Evidencer { o: &o, done: Vec::new() };
    for &name in FACTS {
        ev.get(name);
    }
    #[cfg(feature = "test-knobs")]
    let (version, entries) = simulate(version, entries, &mut ev);
    let (facts, entry, agreed) = decide(&version, &entries, &mut ev);
    drop(ev);
    let result = agreed.and_then(|()| build(&o, &facts)).map_err(|why| format!("glibc {version}: {why}"));
    Learned { version, facts, entry, result, observations: o }
}

type Decision = (Vec<Fact>, Option<&'static Entry>, Result<(), String>);

fn decide(version: &str, entries: &[&'static Entry], ev: &mut Evidencer) -> Decision {
    let observed = |ev: &mut Evidencer| {
        FACTS
            .iter()
            .map(|&name| {
                let evidence = ev.get(name);
                let value = if let Evidence::Found(v) = evidence { Some(v) } else { None };
                Fact { name, evidence, value, source: Source::Observed }
            })
            .collect::<Vec<_>>()
    };
    if let Some(why) = &ev.o.thread_error {
        return (observed(ev), None, Err(format!("the probe thread failed: {why}")));
    }
    let Some(v) = parse_version(version) else {
        return (observed(ev), None, Err(format!("cannot read the version {version:?}")));
    };
    let same: Vec<&'static Entry> = entries.iter().copied().filter(|e| e.version == v).collect();
    let newest = entries.iter().copied().max_by_key(|e| e.version);
    let (candidates, newer) = if !same.is_empty() {
        (same, false)
    } else if let Some(n) = newest.filter(|n| v > n.version) {
        (vec![n], true)
    } else {
        let known: Vec<String> = entries.iter().map(|e| format!("{}.{}", e.version.0, e.version.1)).collect();
        let why = format!("not in the layout table ({}), so its layout is not checked", known.join(", "));
        return (observed(ev), None, Err(why));
    };
    let mut best: Option<(Vec<String>, &'static Entry)> = None;
    for entry in candidates {
        match check(ev, entry, newer) {
            Ok(facts) => return (facts, Some(entry), Ok(())),
            Err(p) => {
                if best.as_ref().is_none_or(|(b, _)| p.len() < b.len()) {
                    best = Some((p, entry));
                }
            }
        }
    }
    let (problems, entry) = best.expect("at least one candidate entry");
    (observed(ev), Some(entry), Err(problems[0].clone()))
}

fn value(facts: &[Fact], name: &str) -> Option<i64> {
    facts.iter().find(|f| f.name == name).and_then(|f| f.value)
}

/// Turns agreed facts into the layout the runtime uses.
fn build(o: &Observations, facts: &[Fact]) -> Result<Layout, String> {
    let need = |name: &str| value(facts, name).map(|v| v as usize).ok_or_else(|| format!("{name} unknown"));
    let user_stack = match (value(facts, "user_stack"), value(facts, "stack_mode")) {
        (Some(off), None) => UserStack::Flag(off as usize),
        (None, Some(off)) => UserStack::Mode(off as usize),
        _ => return Err("neither user_stack nor stack_mode".into()),
    };
    let join = match (value(facts, "joinid"), value(facts, "joinstate")) {
        (Some(off), None) => Join::Id(off as usize),
        (None, Some(off)) => Join::State(off as usize),
        _ => return Err("neither joinid nor joinstate".into()),
    };
    let tcache = need("tcache")?;
    let none = o.tcache_initial.unwrap_or(0);
    let hold = match (value(facts, "tcache.shutting_down"), value(facts, "tcache.disabled")) {
        (Some(rel), None) => Hold::Flag(tcache + rel as usize),
        (None, Some(rel)) => Hold::Disabled(none + rel as usize),
        _ => return Err("no way to hold off a thread cache".into()),
    };
    let keys = o.keys_table.ok_or("libc's key table not found")?;
    let rseq = value(facts, "rseq").map(|off| {
        let size = o.rseq.map_or(0, |r| r.1);
        (off as isize, if size == 0 { 0 } else { size.max(32) })
    });
    if o.static_size == 0 {
        return Err("no static TLS size from ld.so".into());
    }
    Ok(Layout {
        pthread_size: need("size")?,
        list: need("list")?,
        tid: need("tid")?,
        robust_head: need("robust_head")?,
        cleanup_jmp_buf: need("cleanup_jmp_buf")?,
        cancelhandling: need("cancelhandling")?,
        specific_1stblock: need("specific_1stblock")?,
        specific: need("specific")?,
        specific_used: need("specific_used")?,
        user_stack,
        join,
        result: need("result")?,
        stackblock: need("stackblock")?,
        res: need("res")?,
        rseq,
        libc_tls: o.libc.tls_block as isize - o.main_tp as isize,
        libc_tls_size: need("tls.size")?,
        tls_resp: need("tls.resp")?,
        malloc: Malloc {
            tcache,
            none,
            hold,
            arena: need("tcache.arena")?,
            bins: need("tcache.bins")?,
            safe_linking: need("tcache.safe_linking")? != 0,
        },
        cond_wrefs: need("cond.wrefs")?,
        keys,
        static_size: o.static_size,
        static_align: o.static_align.max(64),
        join_checks_clock: need("join.clock_checked")? != 0,
    })
}

impl Learned {
    /// The report `asyncshim doctor` prints: verdict, version, every fact with where it came from.
    pub fn report(&self) -> String {
        let mut s = String::new();
        let o = &self.observations;
        let _ = writeln!(s, "glibc {} (libc {})", self.version, o.libc.name);
        match (&self.result, self.entry) {
            (Ok(_), Some(e)) => {
                let how = if parse_version(&self.version) == Some(e.version) {
                    format!("matches the table entry {}.{} ({})", e.version.0, e.version.1, e.name)
                } else {
                    format!("newer than the table; probes agree with {}.{} ({})", e.version.0, e.version.1, e.name)
                };
                let _ = writeln!(s, "layout: {how}");
            }
            (Ok(_), None) => {}
            (Err(why), _) => {
                let _ = writeln!(s, "layout: not usable: {why}");
            }
        }
        let _ = writeln!(s, "static TLS: {} bytes, aligned {}", o.static_size, o.static_align);
        let _ = writeln!(
            s,
            "facts (offsets in bytes; source: observed = exported or probed, table = from the table, confirmed = table value a probe agrees with):"
        );
        for f in &self.facts {
            let v = f.value.map_or_else(|| "none".to_string(), |v| v.to_string());
            let src = match (f.source, &f.evidence) {
                (Source::Observed, Evidence::Wrong(w)) => format!("WRONG: {w}"),
                (Source::Observed, Evidence::Candidates(c)) => format!("ambiguous: {c:?}"),
                (Source::Observed, Evidence::Unknown) => "not observed".into(),
                (Source::Observed, _) => "observed".into(),
                (Source::Table, _) => "table".into(),
                (Source::TableConfirmed, _) => "table, confirmed".into(),
            };
            let expected =
                self.entry.and_then(|e| e.expect(f.name)).map(|e| format!(" (table {})", show(e))).unwrap_or_default();
            let _ = writeln!(s, "  {:<22} {:>6}  {src}{expected}", f.name, v);
        }
        s
    }
}
