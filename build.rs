fn main() {
    println!("cargo:rerun-if-changed=src/runtime/thread_entry.c");
    cc::Build::new()
        .file("src/runtime/thread_entry.c")
        .opt_level(2)
        .flag("-fexceptions")
        .flag("-Wno-stringop-overflow")
        .compile("asyncshim_entry");
}
