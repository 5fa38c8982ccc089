"""The deadline guard: a small separate process that writes NEUTRAL to the car's port when the
runtime's newest command passes its deadline, whether or not the runtime's Python gets the CPU.

The watchdog thread lives in the runtime's interpreter: under load it waits for the CPU *and* for
the GIL, and was measured 50-153 ms late. The guard is its own process: it sleeps in ``select()``
until the deadline the runtime last handed it, so the kernel wakes it like any sleeper (and with
``SCHED_FIFO`` where the process may use it, ahead of every normal process), and it writes one
NEUTRAL frame on a duplicate of the port's file descriptor. The car's 250 ms failsafe remains the
backstop for a guard that cannot run at all.

Protocol on a SOCK_SEQPACKET socket pair (one message per datagram; ASCII):

    parent -> guard   "F" + SCM_RIGHTS fd   the port (re)opened: write NEUTRAL here
                      "X"                   the port is gone: forget the fd
                      "D <deadline>"        at time.monotonic() >= deadline, write NEUTRAL
                      "C"                   no deadline (the runtime itself is sending neutral)
                      "Q"                   quit without writing anything (orderly close)
    guard -> parent   "P <policy>"          scheduling it got: "fifo" or "other"
                      "N <seq> <t>"         it wrote NEUTRAL with seq at time t

If the runtime dies (the socket closes without "Q"), the guard writes NEUTRAL with the disarm bit
at once and exits: a killed runtime stops the car in milliseconds instead of the car's 250 ms.
The socket closes only late in a process's exit, after its memory is unmapped (kernel do_exit:
exit_mm before exit_files): a runtime holding a few hundred MB (a model) under load took 140-270 ms
from its last DRIVE. So while the car is being driven (from "D" until "C") the guard also looks at
the runtime's /proc/<pid>/stat every ``DEATH_POLL_S``: the kernel flags a task PF_EXITING as the first
step of its exit, and a pending SIGKILL shows at once in /proc/<pid>/status.

SEQ: the guard's NEUTRAL takes the host's next number from the counter both share
(runtime/link/seq.py) at the moment it writes, so SEQ on the wire never goes back. SIGTERM is
ignored: under systemd the whole unit gets it, and the guard must outlive the runtime's orderly
stop (it exits when the runtime closes it or dies).
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import time

from runtime.link.protocol import Neutral, encode
from runtime.link.seq import SharedSeq

log = logging.getLogger(__name__)

FIFO_PRIORITY = 10  # above every normal process; low among real-time ones (kernel threads use 50)
DEATH_POLL_S = 0.005  # while driving: how often the guard checks that the runtime is not exiting
_PF_EXITING = 0x4  # include/linux/sched.h: "getting shut down"
_SIGKILL_BIT = 1 << (signal.SIGKILL - 1)


class DeadlineGuard:
    """The runtime's handle on the guard process. Every method is non-blocking and never raises:
    a guard that died leaves the in-process watchdog and the car's failsafe in charge (logged)."""

    def __init__(self, seq: SharedSeq) -> None:
        self._seq = seq
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self.policy: str | None = None  # "fifo" or "other" once the guard reported it
        self.fired = 0
        self.fired_at: list[float] = []  # time.monotonic() of each NEUTRAL it wrote (the last 1000)

    @property
    def running(self) -> bool:
        """True while the guard process is alive and its socket open."""
        return self._sock is not None and self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the guard process and wait up to 2 s for its scheduling report (``policy``). A failed
        start is logged; the watchdog thread then keeps the deadline alone.
        """
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", "import sys, socket; from runtime.link.guard import serve; "
                 "serve(socket.socket(fileno=int(sys.argv[1])), int(sys.argv[2]))",
                 str(child.fileno()), str(self._seq.fd)],
                pass_fds=(child.fileno(), self._seq.fd), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            )
        except OSError as exc:
            log.warning("deadline guard not started (%s): the watchdog thread alone keeps the deadline", exc)
            parent.close()
            return
        finally:
            child.close()
        self._sock = parent
        parent.settimeout(2.0)  # its "P" hello: ready (Python start-up and imports, ~0.1 s)
        try:
            self._on_message(parent.recv(64))
        except OSError as exc:
            log.warning("deadline guard (pid %d) did not report ready (%s)", self._proc.pid, exc)
        parent.setblocking(False)
        log.info("deadline guard started (pid %d, scheduling %s)", self._proc.pid, self.policy)

    def set_fd(self, fd: int | None) -> None:
        """Hand the guard the (re)opened port's file descriptor (sent with SCM_RIGHTS); None: the port is
        gone.
        """
        if fd is None:
            self._send(b"X")
        else:
            self._send(b"F", fd)

    def arm(self, deadline: float) -> None:
        """Have the guard write NEUTRAL (with the host's next SEQ) once ``time.monotonic() >= deadline``
        (s), unless re-armed or cleared first.
        """
        self._send(b"D %.6f" % deadline)

    def clear(self) -> None:
        """Cancel the pending deadline (the runtime is sending neutral itself)."""
        self._send(b"C")

    def poll(self) -> list[int]:
        """SEQ numbers of the NEUTRAL frames the guard wrote since the last poll."""
        out: list[int] = []
        sock = self._sock
        while sock is not None:
            try:
                msg = sock.recv(64)
            except BlockingIOError:
                break
            except OSError:
                msg = b""
            if not msg:
                self._died("its socket closed")
                break
            seq = self._on_message(msg)
            if seq is not None:
                out.append(seq)
        return out

    def _on_message(self, msg: bytes) -> int | None:
        kind, _, rest = msg.partition(b" ")
        if kind == b"N":
            self.fired += 1
            seq, at = rest.split()
            self.fired_at = [*self.fired_at[-999:], float(at)]
            return int(seq)
        if kind == b"P":
            self.policy = rest.decode()
            if self.policy != "fifo":
                log.warning("deadline guard runs at normal priority: %s; it still does not wait for the "
                            "runtime's Python", realtime_advice())
        return None

    def stop(self) -> None:
        """Orderly stop: the guard exits without writing anything."""
        self._send(b"Q")
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def _send(self, msg: bytes, fd: int | None = None) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            if fd is None:
                sock.send(msg)
            else:
                socket.send_fds(sock, [msg], [fd])
        except BlockingIOError:
            log.debug("deadline guard busy; %r not sent", msg)  # 200+ queued: it will catch up
        except OSError as exc:
            self._died(str(exc))

    def _died(self, why: str) -> None:
        log.warning("deadline guard gone (%s): the watchdog thread alone keeps the deadline", why)
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def realtime_advice() -> str:
    """Why SCHED_FIFO at ``FIFO_PRIORITY`` was refused and what allows it, in one line. The guard
    inherits this process's limits. Under the shipped unit (User=rc-car, no capabilities) what
    allows it is ``RLIMIT_RTPRIO``: systemd's ``LimitRTPRIO=``; ``RestrictRealtime=yes`` refuses it
    whatever the limit (seccomp), and CAP_SYS_NICE is not granted to the service at all."""
    soft = resource.getrlimit(resource.RLIMIT_RTPRIO)[0]
    shown = "unlimited" if soft == resource.RLIM_INFINITY else str(soft)
    return (f"SCHED_FIFO priority {FIFO_PRIORITY} refused (RLIMIT_RTPRIO is {shown}); allow it with "
            f"LimitRTPRIO={FIFO_PRIORITY} in the systemd unit (ulimit -r {FIFO_PRIORITY} in a shell) "
            "and without RestrictRealtime=yes")


# -------------------------------------------------------------------------------------------------
# The guard process itself


def _realtime() -> str:
    if os.environ.get("RC_LINK_GUARD_REALTIME") == "0":  # benchmarks: measure the unprivileged case
        return "other"
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(FIFO_PRIORITY))
    except (AttributeError, OSError):
        return "other"
    return "fifo"


def _write_neutral(fd: int, counter: SharedSeq, disarm: bool = False) -> int | None:
    """Write NEUTRAL with the host's next SEQ; returns that SEQ, or None when nothing went out."""
    seq = counter.peek()
    try:
        written = os.write(fd, encode(Neutral(disarm=disarm), seq))
    except OSError:  # a full or vanished port: the car's failsafe is the backstop
        return None
    if written <= 0:
        return None
    counter.used(seq)  # some bytes went out: the number is taken even if the frame was cut
    return seq


class _Runtime:
    """The guard's view of the runtime process (its parent): is it exiting? Reads /proc with
    descriptors opened once (pread: no path lookup per check)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        try:
            self._stat = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
            self._status = os.open(f"/proc/{pid}/status", os.O_RDONLY)
        except OSError:
            self._stat = self._status = -1  # no /proc: the socket's close alone tells

    def exiting(self) -> bool:
        """True once the runtime is being killed or exits (SIGKILL pending, PF_EXITING, zombie, gone)."""
        if self._stat < 0:
            return False
        try:
            stat = os.pread(self._stat, 1024, 0)
            status = os.pread(self._status, 4096, 0)
        except OSError:  # ESRCH: the process is gone
            return True
        fields = stat[stat.rfind(b")") + 2:].split()
        if not fields or fields[0] in (b"Z", b"X") or int(fields[6]) & _PF_EXITING:
            return True
        for line in status.splitlines():
            if line.startswith((b"SigPnd:", b"ShdPnd:")) and int(line.split()[1], 16) & _SIGKILL_BIT:
                return True
        return False


def serve(sock: socket.socket, seq_fd: int) -> None:
    """The guard's loop (runs in the guard process); ``seq_fd``: the host's shared SEQ counter."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # see the module docstring: stop via the socket
    counter = SharedSeq.attach(seq_fd)
    runtime = _Runtime(os.getppid())
    fd: int | None = None
    deadline: float | None = None
    driving = False  # from "D" until "C": watch the runtime's /proc entry too
    sock.send(b"P " + _realtime().encode())
    while True:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        if driving:
            timeout = DEATH_POLL_S if timeout is None else min(timeout, DEATH_POLL_S)
        ready, _, _ = select.select([sock], [], [], timeout)
        if driving and not ready and runtime.exiting():  # killed: do not wait for its memory to go
            if fd is not None:
                _write_neutral(fd, counter, disarm=True)
            return
        if ready:
            try:
                msg, fds, _, _ = socket.recv_fds(sock, 64, 1)
            except OSError:
                msg, fds = b"", []
            if not msg:  # the runtime is gone without saying goodbye: stop the car now
                if fd is not None:
                    _write_neutral(fd, counter, disarm=True)
                return
            kind, _, rest = msg.partition(b" ")
            if kind == b"F" and fds:
                if fd is not None:
                    os.close(fd)
                fd = fds[0]
            elif kind == b"X":
                if fd is not None:
                    os.close(fd)
                fd = None
            elif kind == b"D":
                deadline, driving = float(rest), True
            elif kind == b"C":
                deadline, driving = None, False
            elif kind == b"Q":
                return
            continue
        if deadline is not None and time.monotonic() >= deadline:
            deadline = None
            seq = None if fd is None else _write_neutral(fd, counter)
            if seq is not None:
                with contextlib.suppress(OSError):
                    sock.send(b"N %d %.6f" % (seq, time.monotonic()))
