//! `loadgen run`: closed-loop ping-pong against an echo server over many TCP connections, one epoll
//! loop on one thread (so the load generator takes one core and leaves the rest to the server), while
//! sampling the server's memory, threads and CPU from /proc.
//!
//! Phases:
//! 1. baseline: the server's RSS, page tables, threads and the system's KernelStack before any connection;
//! 2. connect: at most `window` connections in flight at once (a burst of 19,000 SYNs would overflow the
//!    accept queue and wait for SYN retransmits); with `handshake`, a connection counts as up once one
//!    round trip has gone through, so a thread-per-connection server has its thread by then;
//! 3. idle: with every connection up and quiet, the server's memory again: (idle - baseline) / connections
//!    is the memory an idle connection costs;
//! 4. load: every connection sends, waits for the whole echo, sends again; `warmup` seconds uncounted,
//!    then `duration` seconds counted (round trips completed and their latencies);
//! 5. everything is closed and one JSON object is printed on stdout.
//!
//! Every phase has a time bound, so a server that hangs makes a run that ends with an error, never a
//! load generator that waits forever.

use serde_json::{json, Value};
use std::io;
use std::mem;
use std::time::{Duration, Instant};

pub struct Config {
    pub port: u16,
    pub conns: usize,
    pub size: usize,
    pub warmup: f64,
    pub duration: f64,
    pub pid: Option<i32>,
    pub src_ips: u32,
    pub window: usize,
    pub handshake: bool,
    pub connect_timeout: f64,
    pub idle_settle: f64,
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Connecting,
    Handshake,
    Ready,
    Busy,
    Dead,
}

struct Conn {
    fd: i32,
    state: State,
    sent: usize,
    got: usize,
    started: Instant,
    want_out: bool,
    done_in_window: u32,
}

#[derive(Default, Clone, Copy)]
pub struct ProcSample {
    pub rss_kb: i64,
    pub pte_kb: i64,
    pub threads: i64,
    pub kstack_kb: i64,
    pub cpu_ticks: i64,
}

fn field(text: &str, name: &str) -> i64 {
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(name) {
            if let Some(rest) = rest.strip_prefix(':') {
                return rest.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(-1);
            }
        }
    }
    -1
}

/// utime + stime of a process in clock ticks (fields 14 and 15 of /proc/PID/stat, after the comm).
fn cpu_ticks(pid: i32) -> i64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return -1 };
    let Some(close) = s.rfind(')') else { return -1 };
    let f: Vec<&str> = s[close + 2..].split_whitespace().collect();
    // After ")": state is field 3, so utime (14) is index 11 and stime (15) index 12.
    match (f.get(11).and_then(|v| v.parse::<i64>().ok()), f.get(12).and_then(|v| v.parse::<i64>().ok())) {
        (Some(u), Some(s)) => u + s,
        _ => -1,
    }
}

pub fn sample(pid: Option<i32>) -> ProcSample {
    let mut s = ProcSample { rss_kb: -1, pte_kb: -1, threads: -1, kstack_kb: -1, cpu_ticks: -1 };
    if let Ok(m) = std::fs::read_to_string("/proc/meminfo") {
        s.kstack_kb = field(&m, "KernelStack");
    }
    if let Some(pid) = pid {
        if let Ok(st) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            s.rss_kb = field(&st, "VmRSS");
            s.pte_kb = field(&st, "VmPTE");
            s.threads = field(&st, "Threads");
        }
        s.cpu_ticks = cpu_ticks(pid);
    }
    s
}

fn sample_json(s: &ProcSample) -> Value {
    json!({"rss_kb": s.rss_kb, "pte_kb": s.pte_kb, "threads": s.threads, "kernel_stack_kb": s.kstack_kb})
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Raises RLIMIT_NOFILE to its hard limit: one fd per connection.
pub fn raise_nofile() -> u64 {
    unsafe {
        let mut rl: libc::rlimit = mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 {
            rl.rlim_cur = rl.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
            return rl.rlim_cur;
        }
    }
    0
}

struct Gen {
    cfg: Config,
    ep: i32,
    conns: Vec<Conn>,
    msg: Vec<u8>,
    scratch: Vec<u8>,
    next_to_open: usize,
    in_flight: usize,
    up: usize,
    failed: usize,
    died: usize,
    first_error: Option<String>,
    counting: bool,
    lat_ns: Vec<u32>,
    rts: u64,
}

impl Gen {
    fn epoll(&self, op: i32, fd: i32, events: u32, idx: usize) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: idx as u64 };
        if unsafe { libc::epoll_ctl(self.ep, op, fd, &mut ev) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn note_error(&mut self, what: &str, e: i32) {
        if self.first_error.is_none() {
            self.first_error = Some(format!("{what}: {}", io::Error::from_raw_os_error(e)));
        }
    }

    /// Starts a non-blocking connect from 127.0.0.(2 + idx % src_ips) to 127.0.0.1:port.
    fn open(&mut self, idx: usize) {
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0);
            if fd < 0 {
                let e = errno();
                self.note_error("socket", e);
                self.conns[idx].state = State::Dead;
                self.failed += 1;
                return;
            }
            let one: libc::c_int = 1;
            let sz = mem::size_of::<libc::c_int>() as u32;
            libc::setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, &one as *const _ as *const _, sz);
            // Pick the source port at connect() time (per 4-tuple), not at bind() (per address).
            libc::setsockopt(fd, libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT, &one as *const _ as *const _, sz);
            let mut src: libc::sockaddr_in = mem::zeroed();
            src.sin_family = libc::AF_INET as u16;
            src.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 2 + (idx as u32 % self.cfg.src_ips) as u8]).to_be();
            if libc::bind(fd, &src as *const _ as *const libc::sockaddr, mem::size_of::<libc::sockaddr_in>() as u32) < 0
            {
                let e = errno();
                self.note_error("bind", e);
            }
            let mut dst: libc::sockaddr_in = mem::zeroed();
            dst.sin_family = libc::AF_INET as u16;
            dst.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
            dst.sin_port = self.cfg.port.to_be();
            let rc = libc::connect(
                fd,
                &dst as *const _ as *const libc::sockaddr,
                mem::size_of::<libc::sockaddr_in>() as u32,
            );
            let c = &mut self.conns[idx];
            c.fd = fd;
            c.state = State::Connecting;
            if rc < 0 && errno() != libc::EINPROGRESS {
                let e = errno();
                libc::close(fd);
                self.conns[idx].state = State::Dead;
                self.failed += 1;
                self.note_error("connect", e);
                return;
            }
            self.in_flight += 1;
            let _ = self.epoll(libc::EPOLL_CTL_ADD, fd, libc::EPOLLOUT as u32, idx);
        }
    }

    fn kill(&mut self, idx: usize, what: &str, e: i32) {
        let c = &mut self.conns[idx];
        let was = c.state;
        if was == State::Dead {
            return;
        }
        c.state = State::Dead;
        unsafe { libc::close(c.fd) };
        match was {
            State::Connecting | State::Handshake => {
                self.in_flight -= 1;
                self.failed += 1;
            }
            _ => {
                self.up -= 1;
                self.died += 1;
            }
        }
        self.note_error(what, e);
    }

    /// Sends (the rest of) the current message; switches the epoll interest as needed.
    fn push(&mut self, idx: usize) {
        let size = self.cfg.size;
        loop {
            let c = &self.conns[idx];
            if c.sent >= size {
                break;
            }
            let n =
                unsafe { libc::send(c.fd, self.msg[c.sent..].as_ptr() as *const _, size - c.sent, libc::MSG_NOSIGNAL) };
            if n < 0 {
                let e = errno();
                if e == libc::EAGAIN || e == libc::EINTR {
                    break;
                }
                self.kill(idx, "send", e);
                return;
            }
            self.conns[idx].sent += n as usize;
        }
        let c = &self.conns[idx];
        let want_out = c.sent < size;
        if want_out != c.want_out {
            let ev = libc::EPOLLIN as u32 | if want_out { libc::EPOLLOUT as u32 } else { 0 };
            let (fd, _) = (c.fd, ());
            let _ = self.epoll(libc::EPOLL_CTL_MOD, fd, ev, idx);
            self.conns[idx].want_out = want_out;
        }
    }

    fn start_rt(&mut self, idx: usize, now: Instant) {
        let c = &mut self.conns[idx];
        c.sent = 0;
        c.got = 0;
        c.started = now;
        self.push(idx);
    }

    /// Reads what is there; returns true when the whole echo of the current message has arrived.
    fn pull(&mut self, idx: usize) -> bool {
        let size = self.cfg.size;
        loop {
            let c = &self.conns[idx];
            let room = self.scratch.len();
            let n = unsafe { libc::recv(c.fd, self.scratch.as_mut_ptr() as *mut _, room, 0) };
            if n == 0 {
                self.kill(idx, "recv", libc::ECONNRESET);
                return false;
            }
            if n < 0 {
                let e = errno();
                if e == libc::EAGAIN || e == libc::EINTR {
                    return false;
                }
                self.kill(idx, "recv", e);
                return false;
            }
            let c = &mut self.conns[idx];
            c.got += n as usize;
            if c.got > size || (c.got > c.sent) {
                // More bytes than were sent: the server is not echoing what it read.
                self.kill(idx, "echo", libc::EPROTO);
                return false;
            }
            if c.got == size {
                return true;
            }
        }
    }

    fn on_event(&mut self, idx: usize, events: u32, now: Instant) {
        let state = self.conns[idx].state;
        match state {
            State::Dead => {}
            State::Connecting => {
                let fd = self.conns[idx].fd;
                let mut err: libc::c_int = 0;
                let mut len = mem::size_of::<libc::c_int>() as u32;
                unsafe {
                    libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_ERROR, &mut err as *mut _ as *mut _, &mut len)
                };
                if err != 0 {
                    self.kill(idx, "connect", err);
                    return;
                }
                let _ = self.epoll(libc::EPOLL_CTL_MOD, fd, libc::EPOLLIN as u32, idx);
                self.conns[idx].want_out = false;
                if self.cfg.handshake {
                    self.conns[idx].state = State::Handshake;
                    self.start_rt(idx, now);
                } else {
                    self.conns[idx].state = State::Ready;
                    self.in_flight -= 1;
                    self.up += 1;
                }
            }
            State::Handshake | State::Busy => {
                if events & libc::EPOLLOUT as u32 != 0 {
                    self.push(idx);
                }
                if self.conns[idx].state == State::Dead {
                    return;
                }
                if events & (libc::EPOLLIN | libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0 && self.pull(idx) {
                    if state == State::Handshake {
                        self.conns[idx].state = State::Ready;
                        self.in_flight -= 1;
                        self.up += 1;
                    } else {
                        if self.counting {
                            let ns =
                                now.duration_since(self.conns[idx].started).as_nanos().min(u32::MAX as u128) as u32;
                            self.lat_ns.push(ns);
                            self.rts += 1;
                            self.conns[idx].done_in_window += 1;
                        }
                        self.start_rt(idx, now);
                    }
                }
            }
            State::Ready => {
                // Nothing is expected from an idle connection: EOF or data means the server broke it.
                let mut b = [0u8; 64];
                let n =
                    unsafe { libc::recv(self.conns[idx].fd, b.as_mut_ptr() as *mut _, b.len(), libc::MSG_DONTWAIT) };
                if n == 0 {
                    self.kill(idx, "idle connection closed by the server", libc::ECONNRESET);
                } else if n > 0 {
                    self.kill(idx, "unsolicited data on an idle connection", libc::EPROTO);
                } else if errno() != libc::EAGAIN {
                    let e = errno();
                    self.kill(idx, "recv", e);
                }
            }
        }
    }

    fn poll(&mut self, timeout_ms: i32, evs: &mut [libc::epoll_event]) {
        let n = unsafe { libc::epoll_wait(self.ep, evs.as_mut_ptr(), evs.len() as i32, timeout_ms) };
        if n <= 0 {
            return;
        }
        let now = Instant::now();
        for ev in evs.iter().take(n as usize) {
            let (idx, events) = (ev.u64 as usize, ev.events);
            self.on_event(idx, events, now);
        }
    }
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

fn num(v: f64) -> Value {
    if v.is_finite() {
        json!((v * 1000.0).round() / 1000.0)
    } else {
        Value::Null
    }
}

pub fn run(cfg: Config) -> Value {
    let nofile = raise_nofile();
    let ticks_per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(ep >= 0, "epoll_create1 failed");
    let now = Instant::now();
    let n = cfg.conns;
    let mut g = Gen {
        msg: (0..cfg.size).map(|i| b'a' + (i % 26) as u8).collect(),
        scratch: vec![0u8; cfg.size.max(4096)],
        conns: (0..n)
            .map(|_| Conn {
                fd: -1,
                state: State::Dead,
                sent: 0,
                got: 0,
                started: now,
                want_out: false,
                done_in_window: 0,
            })
            .collect(),
        cfg,
        ep,
        next_to_open: 0,
        in_flight: 0,
        up: 0,
        failed: 0,
        died: 0,
        first_error: None,
        counting: false,
        lat_ns: Vec::new(),
        rts: 0,
    };
    let mut evs = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];

    // 1. baseline
    let base = sample(g.cfg.pid);

    // 2. connect, at most `window` in flight
    let t_connect = Instant::now();
    let deadline = t_connect + Duration::from_secs_f64(g.cfg.connect_timeout);
    while g.up + g.failed + g.died < n && Instant::now() < deadline {
        while g.in_flight < g.cfg.window && g.next_to_open < n {
            let i = g.next_to_open;
            g.next_to_open += 1;
            g.open(i);
        }
        g.poll(50, &mut evs);
    }
    let connect_s = t_connect.elapsed().as_secs_f64();
    let connect_timed_out = g.up + g.failed + g.died < n;
    if connect_timed_out {
        g.note_error("connect phase", libc::ETIMEDOUT);
    }

    // 3. idle memory: everything is up and quiet; give the server a moment to settle first
    let settle_end = Instant::now() + Duration::from_secs_f64(g.cfg.idle_settle);
    while Instant::now() < settle_end {
        g.poll(20, &mut evs);
    }
    let idle = sample(g.cfg.pid);
    let up_idle = g.up;

    // 4. load
    let t0 = Instant::now();
    for i in 0..n {
        if g.conns[i].state == State::Ready {
            g.conns[i].state = State::Busy;
            g.start_rt(i, t0);
        }
    }
    let warm_end = t0 + Duration::from_secs_f64(g.cfg.warmup);
    while Instant::now() < warm_end {
        g.poll(50, &mut evs);
    }
    g.lat_ns.reserve(4_000_000);
    g.counting = true;
    let w0 = sample(g.cfg.pid);
    let tw0 = Instant::now();
    let end = tw0 + Duration::from_secs_f64(g.cfg.duration);
    let mut peak = w0;
    let mut next_sample = tw0 + Duration::from_millis(250);
    let self_cpu0 = self_cpu();
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if now >= next_sample {
            let s = sample(g.cfg.pid);
            peak.rss_kb = peak.rss_kb.max(s.rss_kb);
            peak.pte_kb = peak.pte_kb.max(s.pte_kb);
            peak.threads = peak.threads.max(s.threads);
            next_sample = now + Duration::from_millis(250);
        }
        let left = end.saturating_duration_since(now).as_millis().min(50) as i32;
        g.poll(left.max(1), &mut evs);
    }
    g.counting = false;
    let window_s = tw0.elapsed().as_secs_f64();
    let w1 = sample(g.cfg.pid);
    let self_cpu_s = self_cpu() - self_cpu0;

    // 5. close and report
    let starved = g.conns.iter().filter(|c| c.state != State::Dead && c.done_in_window == 0).count();
    for c in &g.conns {
        if c.state != State::Dead {
            unsafe { libc::close(c.fd) };
        }
    }
    unsafe { libc::close(g.ep) };
    let mut lat = mem::take(&mut g.lat_ns);
    lat.sort_unstable();
    let mean =
        if lat.is_empty() { f64::NAN } else { lat.iter().map(|&v| v as f64).sum::<f64>() / lat.len() as f64 / 1000.0 };
    let server_cpu = if w0.cpu_ticks >= 0 && w1.cpu_ticks >= 0 {
        (w1.cpu_ticks - w0.cpu_ticks) as f64 / ticks_per_s / window_s
    } else {
        f64::NAN
    };
    // Idle memory per connection: user memory (RSS + page tables) plus one 16 KiB kernel stack
    // (x86-64 THREAD_SIZE) per extra OS thread. The system-wide KernelStack delta is kept too, but other
    // processes on the machine move it, so it is not part of the headline figure.
    let per = |v: f64| if up_idle > 0 { v / up_idle as f64 } else { f64::NAN };
    let (rss_d, pte_d, thr_d) = (idle.rss_kb - base.rss_kb, idle.pte_kb - base.pte_kb, idle.threads - base.threads);
    let valid = g.cfg.pid.is_some() && base.rss_kb >= 0 && idle.rss_kb >= 0;
    let bytes_per_conn = if valid { per(((rss_d + pte_d) * 1024 + thr_d.max(0) * 16384) as f64) } else { f64::NAN };
    json!({
        "conns": n,
        "size": g.cfg.size,
        "conns_up": up_idle,
        "conns_failed": g.failed,
        "conns_died": g.died,
        "conns_starved": starved,
        "connect_s": num(connect_s),
        "connect_timed_out": connect_timed_out,
        "warmup_s": g.cfg.warmup,
        "window_s": num(window_s),
        "round_trips": g.rts,
        "rt_per_s": num(g.rts as f64 / window_s),
        "lat_us": {"mean": num(mean), "p50": num(pct(&lat, 50.0)), "p99": num(pct(&lat, 99.0)), "p999": num(pct(&lat, 99.9)), "max": num(pct(&lat, 100.0))},
        "server_cpu_cores": num(server_cpu),
        "loadgen_cpu_cores": num(self_cpu_s / window_s),
        "idle_bytes_per_conn": num(bytes_per_conn),
        "idle_parts_bytes_per_conn": {
            "rss": num(if valid { per((rss_d * 1024) as f64) } else { f64::NAN }),
            "page_tables": num(if valid { per((pte_d * 1024) as f64) } else { f64::NAN }),
            "kernel_stacks_16k_per_thread": num(if valid { per((thr_d.max(0) * 16384) as f64) } else { f64::NAN }),
            "kernel_stack_meminfo_delta": num(per(((idle.kstack_kb - base.kstack_kb) * 1024) as f64)),
        },
        "proc": {"baseline": sample_json(&base), "idle": sample_json(&idle), "peak_under_load": sample_json(&peak)},
        "src_ips": g.cfg.src_ips,
        "nofile_limit": nofile,
        "error": g.first_error,
    })
}

fn self_cpu() -> f64 {
    unsafe {
        let mut ru: libc::rusage = mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        t(ru.ru_utime) + t(ru.ru_stime)
    }
}
