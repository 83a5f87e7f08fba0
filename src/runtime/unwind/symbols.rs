//! Code addresses to names: the object's full symbol table (`.symtab`, which has the program's static
//! functions that `dladdr` cannot see) read once from its file, else its dynamic symbols, else `dladdr`.

use super::super::lock::Lock;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// One object's functions, sorted by address (as linked: add the load bias for a shared object).
struct Table {
    position_independent: bool,
    functions: Vec<(u64, u64, String)>,
}

/// Tables by the object's load address.
static TABLES: Lock<Vec<(usize, Arc<Table>)>> = Lock::new(Vec::new());

/// `function+0xoffset (object)` for a code address; `first` says it is where a thread is now, not a return
/// address (a return address is looked up one byte back, inside the call: a call can be a function's last
/// instruction).
pub fn describe(addr: usize, first: bool) -> String {
    let Some(info) = dl_info(addr) else { return format!("{addr:#x}") };
    // SAFETY: dladdr's strings are NUL-terminated and live as long as the object stays loaded.
    let path = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) }.to_string_lossy().into_owned();
    let object = path.rsplit('/').next().unwrap_or(&path).to_string();
    let base = info.dli_fbase as usize;
    let lookup = if first { addr } else { addr.saturating_sub(1) };
    if let Some(table) = table(base, &path) {
        let key = if table.position_independent { (lookup - base) as u64 } else { lookup as u64 };
        let at = table.functions.partition_point(|f| f.0 <= key);
        if at > 0 {
            let (start, size, name) = &table.functions[at - 1];
            if key < start + (*size).max(1) {
                return format!("{}+{:#x} ({object})", demangle(name), key - start + (addr - lookup) as u64);
            }
        }
    }
    if info.dli_sname.is_null() {
        return format!("{:#x} ({object})", addr - base);
    }
    // SAFETY: as above.
    let sym = unsafe { std::ffi::CStr::from_ptr(info.dli_sname) }.to_string_lossy();
    format!("{}+{:#x} ({object})", demangle(&sym), addr - info.dli_saddr as usize)
}

/// Just the function's name (empty when unknown).
pub fn function_name(addr: usize, first: bool) -> String {
    let d = describe(addr, first);
    match d.find('+') {
        Some(i) if !d.starts_with("0x") => d[..i].to_string(),
        _ => String::new(),
    }
}

pub fn dl_info(addr: usize) -> Option<libc::Dl_info> {
    // SAFETY: dladdr only reads the loader's tables; info is a valid out-buffer.
    let mut info: libc::Dl_info = unsafe { core::mem::zeroed() };
    (unsafe { libc::dladdr(addr as *const libc::c_void, &mut info) } != 0 && !info.dli_fname.is_null()).then_some(info)
}

fn table(base: usize, path: &str) -> Option<Arc<Table>> {
    if let Some((_, t)) = TABLES.lock().iter().find(|(b, _)| *b == base) {
        return Some(t.clone());
    }
    // The main program's name as the loader knows it can be relative or empty: its file is /proc/self/exe.
    // SAFETY: getauxval reads the auxiliary vector.
    let main_phdr = unsafe { libc::getauxval(libc::AT_PHDR) } as usize;
    let main = dl_info(main_phdr).map(|i| i.dli_fbase as usize) == Some(base);
    let table = Arc::new(
        read_table(if main { "/proc/self/exe" } else { path })
            .unwrap_or(Table { position_independent: true, functions: Vec::new() }),
    );
    let mut tables = TABLES.lock();
    if tables.len() < 512 {
        tables.push((base, table.clone()));
    }
    Some(table)
}

fn read_table(path: &str) -> Option<Table> {
    let file = std::fs::File::open(path).ok()?;
    let read = |at: u64, len: usize| -> Option<Vec<u8>> {
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, at).ok()?;
        Some(buf)
    };
    let u16_at = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
    let u64_at = |b: &[u8], i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
    let ehdr = read(0, 64)?;
    if &ehdr[..4] != b"\x7fELF" || ehdr[4] != 2 || ehdr[5] != 1 {
        return None;
    }
    let position_independent = u16_at(&ehdr, 16) == 3; // ET_DYN
    let (shoff, shentsize, shnum) = (u64_at(&ehdr, 40), u16_at(&ehdr, 58) as usize, u16_at(&ehdr, 60) as usize);
    if shentsize < 64 || shnum == 0 || shnum > 1 << 16 {
        return None;
    }
    let shdrs = read(shoff, shentsize * shnum)?;
    let section = |i: usize| &shdrs[i * shentsize..(i + 1) * shentsize];
    // SHT_SYMTAB (2) has every function; SHT_DYNSYM (11) only the exported ones.
    let symtab = (0..shnum)
        .find(|&i| u32_at(section(i), 4) == 2)
        .or_else(|| (0..shnum).find(|&i| u32_at(section(i), 4) == 11))?;
    let s = section(symtab);
    let (off, size, link) = (u64_at(s, 24), u64_at(s, 32) as usize, u32_at(s, 40) as usize);
    if link >= shnum || size > 1 << 30 {
        return None;
    }
    let strs_hdr = section(link);
    let (str_off, str_size) = (u64_at(strs_hdr, 24), u64_at(strs_hdr, 32) as usize);
    if str_size > 1 << 30 {
        return None;
    }
    let syms = read(off, size)?;
    let strs = read(str_off, str_size)?;
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
    Some(Table { position_independent, functions })
}

/// Rust's legacy mangling (`_ZN4core3fmt5write17h0123456789abcdefE` → `core::fmt::write`); other names
/// unchanged.
pub fn demangle(name: &str) -> String {
    let Some(mut rest) = name.strip_prefix("_ZN") else { return name.to_string() };
    let mut parts: Vec<&str> = Vec::new();
    while let Some(digits) = rest.find(|c: char| !c.is_ascii_digit()).filter(|&n| n > 0) {
        let Ok(len) = rest[..digits].parse::<usize>() else { break };
        let Some(part) = rest.get(digits..digits + len) else { return name.to_string() };
        parts.push(part);
        rest = &rest[digits + len..];
    }
    if !rest.starts_with('E') || parts.is_empty() {
        return name.to_string();
    }
    if parts.last().is_some_and(|p| p.len() == 17 && p.starts_with('h')) {
        parts.pop();
    }
    let joined = parts.join("::");
    let mut out = String::with_capacity(joined.len());
    let mut s = joined.as_str();
    while !s.is_empty() {
        let (piece, skip) = match s {
            _ if s.starts_with("$LT$") => ("<", 4),
            _ if s.starts_with("$GT$") => (">", 4),
            _ if s.starts_with("$RF$") => ("&", 4),
            _ if s.starts_with("$BP$") => ("*", 4),
            _ if s.starts_with("$C$") => (",", 3),
            _ if s.starts_with("$u20$") => (" ", 5),
            _ if s.starts_with("$u7b$") => ("{", 5),
            _ if s.starts_with("$u7d$") => ("}", 5),
            _ if s.starts_with("..") => ("::", 2),
            _ => {
                let n = s.chars().next().map_or(1, char::len_utf8);
                out.push_str(&s[..n]);
                s = &s[n..];
                continue;
            }
        };
        out.push_str(piece);
        s = &s[skip..];
    }
    out
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
    fn finds_functions_dladdr_cannot() {
        let addr = a_static_function();
        assert!(describe(addr + 1, true).contains("a_static_function+0x1 ("), "{}", describe(addr + 1, true));
    }
}
