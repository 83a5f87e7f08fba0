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
        assert_eq!(parse_size("16384"), Ok(16384));
        assert_eq!(parse_size("64K"), Ok(64 * 1024));
        assert_eq!(parse_size("64k"), Ok(64 * 1024));
        assert_eq!(parse_size("64KiB"), Ok(64 * 1024));
        assert_eq!(parse_size("64kb"), Ok(64 * 1024));
        assert_eq!(parse_size("256K"), Ok(256 << 10));
        assert_eq!(parse_size("8M"), Ok(8 << 20));
        assert_eq!(parse_size("8m"), Ok(8 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size(" 1M "), Ok(1 << 20));
        assert!(parse_size("").is_err());
        assert!(parse_size("x").is_err());
        assert!(parse_size("K").is_err());
        assert!(parse_size("-5").is_err());
        assert!(parse_size("-1K").is_err());
        assert!(parse_size("1.5M").is_err());
        assert!(parse_size("10X").is_err());
        assert!(parse_size("1MM").is_err());
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("99999999999999G").is_err()); // overflows u64
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[test]
    fn stack_sizes() {
        assert_eq!(parse_stack_size("16K"), Ok(16384));
        assert_eq!(parse_stack_size("16384"), Ok(16384));
        assert_eq!(parse_stack_size("64KiB"), Ok(65536));
        assert!(parse_stack_size("16383").is_err());
        assert!(parse_stack_size("8K").is_err());
        assert!(parse_stack_size("0").is_err());
        assert_eq!(parse_stack_size("256K"), Ok(262144));
        assert!(parse_stack_size("2000G").is_err());
    }

    #[test]
    fn workers() {
        assert_eq!(parse_workers("1"), Ok(1));
        assert_eq!(parse_workers("64"), Ok(64));
        assert_eq!(parse_workers(" 4 "), Ok(4));
        assert_eq!(parse_workers("1024"), Ok(1024));
        assert!(parse_workers("1025").is_err());
        assert!(parse_workers("99999999999").is_err());
        assert!(parse_workers("0").is_err());
        assert!(parse_workers("-1").is_err());
        assert!(parse_workers("two").is_err());
        assert!(parse_workers("1.5").is_err());
        assert!(parse_workers("").is_err());
    }
}
