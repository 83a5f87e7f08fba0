fn main() {
    println!("cargo:rerun-if-changed=src/runtime/thread_entry.c");
    println!("cargo:rerun-if-changed=src/hooks/stdio_variadic.c");
    cc::Build::new()
        .file("src/runtime/thread_entry.c")
        .file("src/hooks/stdio_variadic.c")
        .opt_level(2)
        .flag("-fexceptions")
        .flag("-Wno-stringop-overflow")
        .compile("asyncshim_entry");
}
