#!/usr/bin/env python3
"""hold_threads.py PID NAME: stops every thread of process PID named NAME (its comm) and
keeps them stopped, leaving the process's other threads running: what a thread stuck in
I/O that never returns looks like to the rest of its process and to its peers. Uses
ptrace (PTRACE_SEIZE + PTRACE_INTERRUPT stops one thread, not the process). Prints
"held N" once they are stopped, then waits until the process is gone. Exit 3 when
ptrace is not permitted (the caller skips)."""
import ctypes, os, sys, time

PTRACE_SEIZE, PTRACE_INTERRUPT = 0x4206, 0x4207
WALL = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
pid, name = int(sys.argv[1]), sys.argv[2]
tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")
        if open(f"/proc/{pid}/task/{t}/comm").read().strip() == name]
if not tids:
    sys.exit(f"no thread named {name} in process {pid}")
for tid in tids:
    if libc.ptrace(PTRACE_SEIZE, tid, None, None) != 0:
        print(f"ptrace: {os.strerror(ctypes.get_errno())}", flush=True)
        sys.exit(3)
    libc.ptrace(PTRACE_INTERRUPT, tid, None, None)
    os.waitpid(tid, WALL)
print(f"held {len(tids)}", flush=True)
while os.path.exists(f"/proc/{pid}"):
    try:
        os.waitpid(-1, WALL | os.WNOHANG)  # reap the held threads' events as the process dies
    except ChildProcessError:
        pass
    time.sleep(0.05)
