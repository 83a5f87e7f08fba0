//! Load generator, report and plots for the asyncshim benchmarks (scripts/bench.sh, scripts/demo.sh).
//!
//!   loadgen run --port P --conns N [--size B] [--warmup S] [--duration S] [--pid SERVER_PID]
//!               [--src-ips K] [--window W] [--no-handshake] [--connect-timeout S] [--idle-settle S]
//!               [--meta JSON]
//!       one closed-loop ping-pong run (see load.rs); prints one JSON object (with --meta merged in)
//!   loadgen report --in RECORDS.jsonl --out latest.json --plots DIR [--quick] [--elapsed S]
//!       turns the records bench.sh collected into the markdown table (stdout), the JSON file and PNGs
//!   loadgen web-report --in RECORDS.jsonl --out web.json --plot web.png [--quick]
//!       the same for the runs of scripts/bench-web.sh (see web.rs)
mod load;
mod report;
mod web;

use std::process::exit;

fn usage(msg: &str) -> ! {
    eprintln!("loadgen: {msg}");
    eprintln!("usage: loadgen run --port P --conns N [--size B] [--warmup S] [--duration S] [--pid PID] [--src-ips K]");
    eprintln!("                   [--window W] [--no-handshake] [--connect-timeout S] [--idle-settle S] [--meta JSON]");
    eprintln!("       loadgen report --in RECORDS.jsonl --out FILE.json --plots DIR [--quick] [--elapsed S]");
    eprintln!("       loadgen web-report --in RECORDS.jsonl --out FILE.json --plot FILE.png [--quick]");
    exit(2)
}

struct Args(Vec<String>);

impl Args {
    fn flag(&mut self, name: &str) -> bool {
        if let Some(i) = self.0.iter().position(|a| a == name) {
            self.0.remove(i);
            true
        } else {
            false
        }
    }
    fn opt(&mut self, name: &str) -> Option<String> {
        let i = self.0.iter().position(|a| a == name)?;
        if i + 1 >= self.0.len() {
            usage(&format!("{name} needs a value"));
        }
        let v = self.0.remove(i + 1);
        self.0.remove(i);
        Some(v)
    }
    fn num<T: std::str::FromStr>(&mut self, name: &str, dflt: Option<T>) -> T {
        match self.opt(name) {
            Some(v) => v.parse().unwrap_or_else(|_| usage(&format!("{name}: bad value '{v}'"))),
            None => dflt.unwrap_or_else(|| usage(&format!("{name} is required"))),
        }
    }
    fn done(&self) {
        if let Some(a) = self.0.first() {
            usage(&format!("unexpected argument '{a}'"));
        }
    }
}

fn main() {
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.is_empty() {
        usage("no command");
    }
    let cmd = argv.remove(0);
    let mut a = Args(argv);
    match cmd.as_str() {
        "run" => {
            let conns: usize = a.num("--conns", None);
            let cfg = load::Config {
                port: a.num("--port", None),
                conns,
                size: a.num("--size", Some(64)),
                warmup: a.num("--warmup", Some(1.0)),
                duration: a.num("--duration", Some(5.0)),
                pid: a.opt("--pid").map(|v| v.parse().unwrap_or_else(|_| usage("--pid: bad value"))),
                src_ips: a.num("--src-ips", Some(8)),
                window: a.num("--window", Some(512)),
                handshake: !a.flag("--no-handshake"),
                // Natively 19,000 thread creations take a few seconds; leave room for a loaded machine.
                connect_timeout: a.num("--connect-timeout", Some(60.0)),
                idle_settle: a.num("--idle-settle", Some(0.5)),
            };
            let meta = a.opt("--meta");
            a.done();
            if cfg.conns == 0 || cfg.size == 0 || cfg.src_ips == 0 || cfg.src_ips > 250 || cfg.window == 0 {
                usage("--conns, --size, --window must be positive; --src-ips 1..250");
            }
            let mut out = load::run(cfg);
            if let Some(m) = meta {
                let m: serde_json::Value = serde_json::from_str(&m).unwrap_or_else(|e| usage(&format!("--meta: {e}")));
                if let (Some(o), Some(mo)) = (out.as_object_mut(), m.as_object()) {
                    for (k, v) in mo {
                        o.insert(k.clone(), v.clone());
                    }
                }
            }
            println!("{out}");
        }
        "report" => {
            let input = a.opt("--in").unwrap_or_else(|| usage("--in is required"));
            let out = a.opt("--out").unwrap_or_else(|| usage("--out is required"));
            let plots = a.opt("--plots").unwrap_or_else(|| usage("--plots is required"));
            let quick = a.flag("--quick");
            let elapsed: f64 = a.num("--elapsed", Some(f64::NAN));
            a.done();
            if let Err(e) = report::report(&input, &out, &plots, quick, elapsed) {
                eprintln!("loadgen report: {e}");
                exit(1);
            }
        }
        "web-report" => {
            let input = a.opt("--in").unwrap_or_else(|| usage("--in is required"));
            let out = a.opt("--out").unwrap_or_else(|| usage("--out is required"));
            let plot = a.opt("--plot").unwrap_or_else(|| usage("--plot is required"));
            let quick = a.flag("--quick");
            a.done();
            if let Err(e) = web::report(&input, &out, &plot, quick) {
                eprintln!("loadgen web-report: {e}");
                exit(1);
            }
        }
        _ => usage(&format!("unknown command '{cmd}'")),
    }
}
