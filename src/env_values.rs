//! The grammar of the values the launcher sets and the library reads (`ASYNCSHIM_STACK_SIZE`,
//! `ASYNCSHIM_WORKERS`), in one place so that `asyncshim --stack-size 64KiB` and
//! `ASYNCSHIM_STACK_SIZE=64KiB` mean the same thing. The launcher must not link the library (its hooks
//! would replace libc's inside the launcher), so it includes this file by path; it therefore depends on
//! nothing but `std`.

/// Smallest accepted stack size: below it the library ignores `ASYNCSHIM_STACK_SIZE` and the launcher
/// rejects `--stack-size`.
pub const MIN_STACK_SIZE: u64 = 16 * 1024;
/// Largest accepted stack size: anything above is most likely a typo.
pub const MAX_STACK_SIZE: u64 = 1 << 40;
/// Largest accepted worker count.
pub const MAX_WORKERS: u32 = 1024;

/// Parses a size: decimal digits with an optional K, M or G suffix (case-insensitive, powers of 1024;
/// a trailing `B`/`iB` is tolerated: `64K`, `64KB`, `64KiB`). Returns bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(digits_end);
    if num.is_empty() {
        return Err(format!("invalid size '{s}': expected a number with an optional K, M or G suffix"));
    }
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("invalid size '{s}': unknown suffix '{suffix}' (use K, M or G)")),
    };
    let n: u64 = num.parse().map_err(|_| format!("invalid size '{s}': number too large"))?;
    n.checked_mul(1u64 << shift).ok_or_else(|| format!("invalid size '{s}': too large"))
}

/// Parses and checks a thread stack size (`MIN_STACK_SIZE..=MAX_STACK_SIZE`).
pub fn parse_stack_size(s: &str) -> Result<u64, String> {
    let n = parse_size(s)?;
    if n < MIN_STACK_SIZE {
        return Err(format!("stack size '{s}' is too small (minimum 16K = {MIN_STACK_SIZE} bytes)"));
    }
    if n > MAX_STACK_SIZE {
        return Err(format!("stack size '{s}' is too large (maximum 1T)"));
    }
    Ok(n)
}

/// Parses and checks a worker count (`1..=MAX_WORKERS`).
pub fn parse_workers(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if (1..=MAX_WORKERS).contains(&n) => Ok(n),
        Ok(0) => Err(format!("invalid worker count '{s}': must be at least 1")),
        Ok(_) => Err(format!("invalid worker count '{s}': at most {MAX_WORKERS}")),
        Err(_) => Err(format!("invalid worker count '{s}': expected an integer >= 1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let good: [(&str, u64); 11] = [
            ("16384", 16384),
            ("64K", 64 << 10),
            ("64k", 64 << 10),
            ("64KiB", 64 << 10),
            ("64kb", 64 << 10),
            ("256K", 256 << 10),
            ("8M", 8 << 20),
            ("8m", 8 << 20),
            ("2G", 2 << 30),
            ("0", 0),
            (" 1M ", 1 << 20),
        ];
        for (text, bytes) in good {
            assert_eq!(parse_size(text), Ok(bytes), "{text:?}");
        }
        // The last two overflow a u64.
        let bad = ["", "x", "K", "-5", "-1K", "1.5M", "10X", "1MM", "99999999999999999999", "99999999999999G"];
        for text in bad {
            assert!(parse_size(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn stack_sizes() {
        for (text, bytes) in [("16K", 16384), ("16384", 16384), ("64KiB", 65536), ("256K", 262144)] {
            assert_eq!(parse_stack_size(text), Ok(bytes), "{text:?}");
        }
        for text in ["16383", "8K", "0", "2000G"] {
            assert!(parse_stack_size(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn workers() {
        for (text, n) in [("1", 1), ("64", 64), (" 4 ", 4), ("1024", 1024)] {
            assert_eq!(parse_workers(text), Ok(n), "{text:?}");
        }
        for text in ["1025", "99999999999", "0", "-1", "two", "1.5", ""] {
            assert!(parse_workers(text).is_err(), "{text:?}");
        }
    }
}
