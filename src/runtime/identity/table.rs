//! What each known glibc release looks like, for [`super::layout`] to cross-check what it learned from
//! libc's exports and the start-up probes, and to supply what neither can see. The values are in
//! `glibc-layouts.txt` beside this file, one row a fact and one column a release, so that what releases
//! share and where they differ reads across a row; this file reads it.
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
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Expect {
    Is(i64),
    /// Either value is right for this release (a change backported to some builds of it).
    OneOf([i64; 2]),
    /// The release has no such field or symbol.
    Absent,
    /// Some negative value: the rseq area in static TLS (2.41 on), whose offset depends on the TLS of
    /// the modules loaded before libc (the program's, this library's).
    InStaticTls,
}

pub struct Entry {
    pub version: (u32, u32),
    /// Who ships it (for messages and `asyncshim doctor`).
    pub name: &'static str,
    /// Run here (in a chroot of that release) rather than only derived.
    pub tested: bool,
    /// Its column in the table's rows.
    column: usize,
}

impl Entry {
    /// What the table says of `fact` for this release (None: nothing, the probes decide).
    pub fn expect(&self, fact: &str) -> Option<Expect> {
        cell(row(fact)?.nth(self.column)?)
    }
}

const TABLE: &str = include_str!("glibc-layouts.txt");

/// The table's rows: a name and its cells (comment and blank lines left out).
fn rows() -> impl Iterator<Item = (&'static str, impl Iterator<Item = &'static str>)> {
    TABLE.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).map(|l| {
        let mut cells = l.split('|').map(str::trim);
        (cells.next().unwrap_or_default(), cells)
    })
}

fn row(name: &str) -> Option<impl Iterator<Item = &'static str>> {
    rows().find(|(n, _)| *n == name).map(|(_, cells)| cells)
}

/// One cell; `?`, or anything the grammar does not know, says nothing (the unit tests keep the table free
/// of the latter).
fn cell(s: &str) -> Option<Expect> {
    let num = |s: &str| match s.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    };
    match s {
        "none" => Some(Expect::Absent),
        "static-tls" => Some(Expect::InStaticTls),
        _ => match s.split_once(" or ") {
            Some((a, b)) => Some(Expect::OneOf([num(a)?, num(b)?])),
            None => num(s).map(Expect::Is),
        },
    }
}

/// Every known release, oldest first: the table's `version`, `name` and `tested` rows.
pub fn entries() -> &'static [Entry] {
    static ENTRIES: std::sync::OnceLock<Vec<Entry>> = std::sync::OnceLock::new();
    let entries: &'static Vec<Entry> = crate::runtime::lazy::get_or_init(&ENTRIES, || {
        let (Some(versions), Some(names), Some(tested)) = (row("version"), row("name"), row("tested")) else {
            return Vec::new();
        };
        versions
            .zip(names)
            .zip(tested)
            .enumerate()
            .filter_map(|(column, ((v, name), tested))| {
                let (major, minor) = v.split_once('.')?;
                let version = (major.parse().ok()?, minor.parse().ok()?);
                Some(Entry { version, name, tested: tested == "yes", column })
            })
            .collect()
    });
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::identity::layout::FACTS;

    #[test]
    fn releases_are_ordered_and_every_row_has_a_cell_each() {
        let releases = entries();
        assert_eq!(releases.len(), row("version").unwrap().count(), "a release column the header rows do not parse");
        for w in releases.windows(2) {
            assert!(w[0].version < w[1].version);
        }
        for (name, cells) in rows() {
            assert_eq!(cells.count(), releases.len(), "row {name}");
        }
    }

    #[test]
    fn every_row_is_a_fact_said_once_with_cells_that_parse() {
        let names: Vec<&str> = rows().map(|(n, _)| n).collect();
        for (i, n) in names.iter().enumerate() {
            assert!(!names[i + 1..].contains(n), "{n} twice");
            assert!(["version", "name", "tested"].contains(n) || FACTS.contains(n), "{n} is not a fact");
        }
        for &fact in FACTS {
            for (e, c) in entries().iter().zip(row(fact).unwrap_or_else(|| panic!("no row {fact}"))) {
                assert!(c == "?" || cell(c).is_some(), "{fact} of {}: {c}", e.name);
            }
        }
    }

    #[test]
    fn tested_releases_have_every_fact() {
        for e in entries().iter().filter(|e| e.tested) {
            for name in FACTS {
                assert!(e.expect(name).is_some(), "{} has no {name}", e.name);
            }
        }
    }

    #[test]
    fn cells_read_as_the_grammar_says() {
        assert_eq!(cell("0x90"), Some(Expect::Is(0x90)));
        assert_eq!(cell("2304"), Some(Expect::Is(2304)));
        assert_eq!(cell("36 or 28"), Some(Expect::OneOf([36, 28])));
        assert_eq!(cell("none"), Some(Expect::Absent));
        assert_eq!(cell("static-tls"), Some(Expect::InStaticTls));
        assert_eq!(cell("?"), None);
    }
}
