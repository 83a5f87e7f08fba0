//! Code addresses to names, and to file and line where debug information exists: each object's full
//! symbol table (`.symtab`, which has the program's static functions that `dladdr` cannot see) and its
//! DWARF line tables (through the `addr2line` crate), read once from its file or from its separate debug
//! file (`/usr/lib/debug/.build-id/xx/yyyy.debug`, as Debian's -dbg packages install them); `dladdr` when
//! the file says nothing. Rust names are demangled.

use super::super::lock::Lock;
use addr2line::gimli;
use std::borrow::Cow;
use std::os::unix::fs::FileExt;

/// Debug sections, read once and kept for the life of the process (as the objects' tables are).
type Reader = gimli::EndianSlice<'static, gimli::LittleEndian>;

/// What one object's files say: its functions, sorted by address (as linked: add the load bias for a
/// shared object), and its line tables.
struct Object {
    position_independent: bool,
    functions: Vec<(u64, u64, String)>,
    /// The file with the DWARF sections, read the first time a line is asked for (the stall report never
    /// asks: it costs the debug sections' size in memory).
    dwarf_file: Option<String>,
    lines: Option<Option<addr2line::Context<Reader>>>,
}

/// Objects by their load address (only the thread listing and the stall report use them, never a signal
/// handler).
static OBJECTS: Lock<Vec<(usize, Object)>> = Lock::new(Vec::new());

/// `function+0xoffset (object)` for a code address; `first` says it is where a thread is now, not a return
/// address (a return address is looked up one byte back, inside the call: a call can be a function's last
/// instruction).
pub fn describe(addr: usize, first: bool) -> String {
    describe_as(addr, first, false)
}

/// Like [`describe`], with ` at file:line` added where the object has line tables.
pub fn describe_with_line(addr: usize, first: bool) -> String {
    describe_as(addr, first, true)
}

fn describe_as(addr: usize, first: bool, with_line: bool) -> String {
    let Some(info) = dl_info(addr) else { return format!("{addr:#x}") };
    // SAFETY: dladdr's strings are NUL-terminated and live as long as the object stays loaded.
    let path = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) }.to_string_lossy().into_owned();
    let name = path.rsplit('/').next().unwrap_or(&path).to_string();
    let base = info.dli_fbase as usize;
    let lookup = if first { addr } else { addr.saturating_sub(1) };
    let mut objects = OBJECTS.lock();
    let index = match objects.iter().position(|(b, _)| *b == base) {
        Some(i) => i,
        None => {
            objects.push((base, read_object(base, &path)));
            objects.len() - 1
        }
    };
    let object = &mut objects[index].1;
    let key = if object.position_independent { (lookup - base) as u64 } else { lookup as u64 };
    if with_line && object.lines.is_none() {
        object.lines = Some(object.dwarf_file.as_deref().and_then(Elf::open).and_then(|f| f.line_context()));
    }
    let line = match (&object.lines, with_line) {
        (Some(Some(ctx)), true) => source_line(ctx, key).unwrap_or_default(),
        _ => String::new(),
    };
    let at = object.functions.partition_point(|f| f.0 <= key);
    if at > 0 {
        let (start, size, function) = &object.functions[at - 1];
        if key < start + (*size).max(1) {
            let offset = key - start + (addr - lookup) as u64;
            return format!("{}+{offset:#x} ({name}){line}", demangle(function));
        }
    }
    if info.dli_sname.is_null() {
        return format!("{:#x} ({name}){line}", addr - base);
    }
    // SAFETY: as above.
    let sym = unsafe { std::ffi::CStr::from_ptr(info.dli_sname) }.to_string_lossy();
    format!("{}+{:#x} ({name}){line}", demangle(&sym), addr - info.dli_saddr as usize)
}

/// ` at file:line` of `key` in the function the symbol table names: the outermost of the functions inlined
/// there (gdb lists the inlined ones as frames of their own).
fn source_line(ctx: &addr2line::Context<Reader>, key: u64) -> Option<String> {
    let mut frames = ctx.find_frames(key).skip_all_loads().ok()?;
    let mut last = None;
    while let Ok(Some(frame)) = frames.next() {
        if let Some(addr2line::Location { file: Some(file), line: Some(line), .. }) = frame.location {
            last = Some(format!(" at {file}:{line}"));
        }
    }
    last
}

pub fn dl_info(addr: usize) -> Option<libc::Dl_info> {
    // SAFETY: dladdr only reads the loader's tables; info is a valid out-buffer.
    let mut info: libc::Dl_info = unsafe { core::mem::zeroed() };
    // SAFETY: as above.
    (unsafe { libc::dladdr(addr as *const libc::c_void, &mut info) } != 0 && !info.dli_fname.is_null()).then_some(info)
}

/// Rust names (either mangling) demangled, without the hash; other names unchanged.
pub fn demangle(name: &str) -> String {
    addr2line::demangle_auto(Cow::Borrowed(name), None).into_owned()
}

fn read_object(base: usize, path: &str) -> Object {
    // The main program's name as the loader knows it can be relative or empty: its file is /proc/self/exe.
    // SAFETY: getauxval reads the auxiliary vector.
    let main_phdr = unsafe { libc::getauxval(libc::AT_PHDR) } as usize;
    let main = dl_info(main_phdr).map(|i| i.dli_fbase as usize) == Some(base);
    let path = if main { "/proc/self/exe".to_string() } else { path.to_string() };
    let file = Elf::open(&path);
    let debug = file.as_ref().and_then(|f| f.build_id()).and_then(|id| {
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let debug_path = format!("/usr/lib/debug/.build-id/{}/{}.debug", hex.get(..2)?, hex.get(2..)?);
        Some((Elf::open(&debug_path)?, debug_path))
    });
    let with = |f: &dyn Fn(&Elf) -> bool| {
        debug.as_ref().filter(|d| f(&d.0)).map(|d| (&d.0, d.1.clone())).or(file.as_ref().map(|f| (f, path.clone())))
    };
    let symbols = with(&|d| d.section_index(".symtab").is_some());
    let dwarf = with(&|d| d.section_index(".debug_info").is_some());
    Object {
        position_independent: file.as_ref().is_none_or(|f| f.position_independent),
        functions: symbols.map(|s| s.0.functions()).unwrap_or_default(),
        dwarf_file: dwarf.map(|d| d.1),
        lines: None,
    }
}

/// An ELF file's section headers, for reading sections by name.
struct Elf {
    file: std::fs::File,
    position_independent: bool,
    /// (name, type, flags, offset, size, link)
    sections: Vec<(String, u32, u64, u64, u64, u32)>,
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}
fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}
fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from(u32_at(b, i)) | (u64::from(u32_at(b, i + 4)) << 32)
}

impl Elf {
    fn open(path: &str) -> Option<Elf> {
        let file = std::fs::File::open(path).ok()?;
        let mut ehdr = [0u8; 64];
        file.read_exact_at(&mut ehdr, 0).ok()?;
        if &ehdr[..4] != b"\x7fELF" || ehdr[4] != 2 || ehdr[5] != 1 {
            return None;
        }
        let position_independent = u16_at(&ehdr, 16) == 3; // ET_DYN
        let (shoff, shentsize, shnum, shstrndx) =
            (u64_at(&ehdr, 40), u16_at(&ehdr, 58) as usize, u16_at(&ehdr, 60) as usize, u16_at(&ehdr, 62) as usize);
        if shentsize < 64 || shnum == 0 || shnum > 1 << 16 || shstrndx >= shnum {
            return None;
        }
        let mut raw = vec![0u8; shentsize * shnum];
        file.read_exact_at(&mut raw, shoff).ok()?;
        let header = |i: usize| &raw[i * shentsize..(i + 1) * shentsize];
        let names_hdr = header(shstrndx);
        let mut names = vec![0u8; (u64_at(names_hdr, 32) as usize).min(1 << 20)];
        file.read_exact_at(&mut names, u64_at(names_hdr, 24)).ok()?;
        let sections = (0..shnum)
            .map(|i| {
                let h = header(i);
                let at = (u32_at(h, 0) as usize).min(names.len());
                let end = names[at..].iter().position(|&b| b == 0).map_or(names.len(), |n| at + n);
                let name = String::from_utf8_lossy(&names[at..end]).into_owned();
                (name, u32_at(h, 4), u64_at(h, 8), u64_at(h, 24), u64_at(h, 32), u32_at(h, 40))
            })
            .collect();
        Some(Elf { file, position_independent, sections })
    }

    fn section_index(&self, name: &str) -> Option<usize> {
        self.sections.iter().position(|s| s.0 == name)
    }

    /// A section's bytes (None when absent, compressed or empty in this file).
    fn read(&self, index: usize) -> Option<Vec<u8>> {
        let &(_, kind, flags, offset, size, _) = self.sections.get(index)?;
        // SHT_NOBITS (8) has no bytes here; SHF_COMPRESSED (0x800) would need inflating.
        if kind == 8 || flags & 0x800 != 0 || size == 0 || size > 1 << 31 {
            return None;
        }
        let mut buf = vec![0u8; size as usize];
        self.file.read_exact_at(&mut buf, offset).ok()?;
        Some(buf)
    }

    fn build_id(&self) -> Option<Vec<u8>> {
        let note = self.read(self.section_index(".note.gnu.build-id")?)?;
        let (namesz, descsz) = (u32_at(&note, 0) as usize, u32_at(&note, 4) as usize);
        let desc = 12 + namesz.next_multiple_of(4);
        note.get(desc..desc + descsz).map(<[u8]>::to_vec)
    }

    /// The functions of `.symtab`, else of `.dynsym`.
    fn functions(&self) -> Vec<(u64, u64, String)> {
        let Some(symtab) = self.section_index(".symtab").or_else(|| self.section_index(".dynsym")) else {
            return Vec::new();
        };
        let (Some(syms), Some(strs)) = (self.read(symtab), self.read(self.sections[symtab].5 as usize)) else {
            return Vec::new();
        };
        let mut functions = Vec::new();
        for sym in syms.chunks_exact(24) {
            let (name, info, shndx, value, len) =
                (u32_at(sym, 0) as usize, sym[4], u16_at(sym, 6), u64_at(sym, 8), u64_at(sym, 16));
            // STT_FUNC (2) or STT_GNU_IFUNC (10), defined here.
            if !matches!(info & 0xf, 2 | 10) || shndx == 0 || value == 0 || name >= strs.len() {
                continue;
            }
            let end = strs[name..].iter().position(|&b| b == 0).map_or(strs.len(), |n| name + n);
            functions.push((value, len, String::from_utf8_lossy(&strs[name..end]).into_owned()));
        }
        functions.sort_by_key(|f| (f.0, std::cmp::Reverse(f.1)));
        functions.dedup_by_key(|f| f.0);
        functions
    }

    fn line_context(&self) -> Option<addr2line::Context<Reader>> {
        let load = |id: gimli::SectionId| -> Result<Reader, gimli::Error> {
            let bytes = self.section_index(id.name()).and_then(|i| self.read(i)).unwrap_or_default();
            Ok(gimli::EndianSlice::new(Box::leak(bytes.into_boxed_slice()), gimli::LittleEndian))
        };
        let dwarf = gimli::Dwarf::load(load).ok()?;
        addr2line::Context::from_dwarf(dwarf).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_names_read_plainly() {
        assert_eq!(demangle("_ZN4core3fmt5write17h0123456789abcdefE"), "core::fmt::write");
        assert_eq!(
            demangle("_ZN9asyncshim7runtime4task4Task10switch_out17h0123456789abcdefE"),
            "asyncshim::runtime::task::Task::switch_out"
        );
        assert_eq!(demangle("read"), "read");
    }

    #[inline(never)]
    fn a_static_function() -> usize {
        core::hint::black_box(a_static_function as *const () as usize)
    }

    #[test]
    fn finds_functions_dladdr_cannot_and_their_lines() {
        let addr = a_static_function();
        let d = describe_with_line(addr + 1, true);
        assert!(d.contains("a_static_function+0x1 ("), "{d}");
        assert!(d.contains(" at ") && d.contains(".rs:"), "{d}");
    }
}
