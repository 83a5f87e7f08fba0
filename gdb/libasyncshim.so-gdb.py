# gdb extension for programs running under libasyncshim.so (loaded automatically from gdb's auto-load
# directory once `make install` put it there, or with `source gdb/libasyncshim.so-gdb.py`).
#
# The program's threads run as coroutines on a few worker OS threads, so `info threads` shows the workers
# only. This adds:
#   info coroutines            every program thread: number, thread id, name, state, what it waits on
#   coroutine N bt [COUNT]     the call stack of coroutine N (from the registers it saved when it parked)
#   coroutine apply all bt     every coroutine's call stack
# on a live process and on a core file. A coroutine that a worker runs right now is on that worker's own
# stack: `thread apply all bt` shows it.
#
# It needs no debug information of the library: it reads the exported `asyncshim_tasks` (the newest task
# record; each names the one allocated before it) and `asyncshim_task_layout` (the field offsets).
import gdb
import gdb.unwinder

PHASES = {0: "running", 1: "parking", 2: "parked", 3: "woken", 4: "runnable"}
WAITS = {1: "fd {} readable", 2: "fd {} writable", 3: "poll/select/epoll", 4: "sleep", 5: "mutex {:#x}",
         6: "condition variable {:#x}", 7: "rwlock {:#x}", 8: "semaphore {:#x}", 9: "barrier {:#x}",
         10: "futex {:#x}", 11: "pthread_once {:#x}", 12: "join", 13: "call on a helper thread"}
LAYOUT_FIELDS = ["magic", "version", "allocated_before", "live", "tid", "name", "state", "switched_out_at",
                 "waiting_for", "is_main"]


def _address_of(symbol):
    # In C: the frame gdb stopped in may be Rust, whose expressions have no such cast.
    language = gdb.parameter("language") or "auto"
    gdb.execute("set language c", to_string=True)
    try:
        return int(gdb.parse_and_eval("(unsigned long)&'%s'" % symbol))
    except gdb.error:
        return None
    finally:
        gdb.execute("set language %s" % language, to_string=True)


def _read(addr, size):
    return bytes(gdb.selected_inferior().read_memory(addr, size))


def _u(addr, size=8):
    return int.from_bytes(_read(addr, size), "little")


def coroutines():
    """The live coroutines, oldest first: dicts of their fields."""
    head = _address_of("asyncshim_tasks")
    layout_at = _address_of("asyncshim_task_layout")
    if head is None or layout_at is None:
        raise gdb.GdbError("libasyncshim.so is not loaded in this process (or has no asyncshim_tasks)")
    layout = dict(zip(LAYOUT_FIELDS, (_u(layout_at + 4 * i, 4) for i in range(len(LAYOUT_FIELDS)))))
    if layout["magic"] != 0x6173796E:
        return []
    found = []
    task = _u(head)
    seen = set()
    while task and task not in seen and len(seen) < 1000000:
        seen.add(task)
        if _u(task + layout["live"], 4) == 1:
            name = _read(task + layout["name"], 16).split(b"\0")[0].decode(errors="replace")
            pc, sp, bp = (_u(task + layout["switched_out_at"] + 8 * i) for i in range(3))
            kind, on, _since = (_u(task + layout["waiting_for"] + 8 * i) for i in range(3))
            found.append({"task": task, "tid": _u(task + layout["tid"], 4), "name": name,
                          "phase": _u(task + layout["state"]) & 0xFF, "regs": (pc, sp, bp),
                          "wait": (kind, on), "main": _u(task + layout["is_main"], 1) == 1})
        task = _u(task + layout["allocated_before"])
    found.reverse()
    for n, c in enumerate(found, 1):
        c["number"] = n
    return found


def describe_state(c):
    phase = PHASES.get(c["phase"], "?")
    kind, on = c["wait"]
    if c["phase"] in (1, 2) and kind in WAITS:
        return "%s: %s" % (phase, WAITS[kind].format(on))
    return phase


class _FrameId:
    """A frame id as gdb's unwinders take it (gdb.unwinder.FrameId from gdb 14 on)."""

    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc


class _SavedRegisters(gdb.unwinder.Unwinder):
    """While `target` is set: frame 0 of the selected thread is made to return into a coroutine's saved
    registers, so gdb's own CFI unwinding walks the coroutine's stack from frame 1 on."""

    def __init__(self):
        super().__init__("asyncshim-coroutine")
        self.target = None
        self.claimed = False

    def __call__(self, pending_frame):
        # The first real frame gdb asks about once the frames were dropped is the innermost one (frame 0,
        # or the frame that the inlined frames at level 0 belong to).
        if self.target is None or self.claimed:
            return None
        self.claimed = True
        pc, sp, bp = self.target
        rip = pending_frame.read_register("rip")
        rsp = pending_frame.read_register("rsp")
        info = pending_frame.create_unwind_info(_FrameId(rsp, rip))
        info.add_saved_register("rip", gdb.Value(pc).cast(rip.type))
        info.add_saved_register("rsp", gdb.Value(sp).cast(rsp.type))
        info.add_saved_register("rbp", gdb.Value(bp).cast(pending_frame.read_register("rbp").type))
        return info


_unwinder = _SavedRegisters()
gdb.unwinder.register_unwinder(None, _unwinder, replace=True)


def backtrace(c, count):
    pc, sp, bp = c["regs"]
    header = 'coroutine %d (thread %d "%s"): %s' % (c["number"], c["tid"], c["name"], describe_state(c))
    if c["phase"] == 0:
        return header + "\n    running on a worker: see `thread apply all bt`\n"
    if pc == 0:
        return header + "\n    not started yet\n"
    _unwinder.target = (pc, sp, bp)
    _unwinder.claimed = False
    gdb.invalidate_cached_frames()
    try:
        # The worker's own frames (frame 0 and the frames inlined in it) come first: skip them.
        skip, frame = 0, gdb.newest_frame()
        while frame is not None and frame.pc() != pc and skip < 64:
            skip, frame = skip + 1, frame.older()
        text = gdb.execute("bt %d" % (skip + count), to_string=True)
    finally:
        _unwinder.target = None
        gdb.invalidate_cached_frames()
    lines = []
    for line in text.splitlines():
        if line.startswith("#"):
            number, rest = line.split(None, 1)
            if int(number[1:]) < skip:
                continue
            line = "#%d %s" % (int(number[1:]) - skip, rest)
        elif not lines:
            continue
        lines.append("    " + line)
        if "asyncshim_thread_entry" in line:
            break
    return header + "\n" + "\n".join(lines) + "\n"


class InfoCoroutines(gdb.Command):
    """info coroutines: the program's threads that libasyncshim runs as coroutines."""

    def __init__(self):
        super().__init__("info coroutines", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        for c in coroutines():
            gdb.write('%3d  thread %-10d %-16s %s%s\n' % (c["number"], c["tid"], '"%s"' % c["name"],
                      describe_state(c), " (main)" if c["main"] else ""))


class Coroutine(gdb.Command):
    """coroutine N bt [COUNT] | coroutine apply all bt [COUNT]: call stacks of coroutines."""

    def __init__(self):
        super().__init__("coroutine", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        words = arg.split()
        count = 64
        if words[:3] == ["apply", "all", "bt"]:
            if len(words) > 3:
                count = int(words[3])
            for c in coroutines():
                gdb.write(backtrace(c, count) + "\n")
            return
        if len(words) >= 2 and words[1] in ("bt", "backtrace"):
            if len(words) > 2:
                count = int(words[2])
            for c in coroutines():
                if str(c["number"]) == words[0]:
                    gdb.write(backtrace(c, count))
                    return
            raise gdb.GdbError("no coroutine %s (see info coroutines)" % words[0])
        raise gdb.GdbError("usage: coroutine N bt [COUNT] | coroutine apply all bt [COUNT]")


InfoCoroutines()
Coroutine()
