"""Where a benchmarked server's wall time goes, from Linux's own accounts: for each process,
the time its threads ran on a CPU (/proc/PID/stat, exited threads included) and the time
they were ready to run but waited for one (/proc/PID/task/*/schedstat), and how many client
connections each worker holds (its sockets in /proc/net/tcp). On a machine whose cores are
all busy, a request's latency is mostly its worker's (and its PostgreSQL backend's) wait for
a core, which no profile of the code shows.

Linux only; elsewhere (or for a PostgreSQL on another host) the processes are not found and
the report says so.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

_ESTABLISHED = "01"


@dataclass(frozen=True)
class Times:
    """A process's run time and run-queue wait, in seconds, since it started."""

    running: float
    waiting: float

    def __sub__(self, other: Times) -> Times:
        return Times(self.running - other.running, self.waiting - other.waiting)


def times(pid: int) -> Times | None:
    """Every thread's: /proc/PID/schedstat is the main thread's alone (a worker's thread pool
    and a spinning thread were missing). Run time comes from /proc/PID/stat, which keeps the
    time of threads that have exited; the wait is summed over the threads alive now."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        running = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        waiting = 0
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                waiting += int((task / "schedstat").read_text().split()[1])
            except FileNotFoundError:
                continue  # a thread that has just exited
    except (OSError, ValueError, IndexError):
        return None
    return Times(running, waiting / 1e9)


def children(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return sorted(found)


def _tcp_table() -> dict[str, tuple[int, int]]:
    """Established TCP connections by socket inode: (local port, remote port)."""
    table: dict[str, tuple[int, int]] = {}
    for name in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == _ESTABLISHED:
                local, remote = (int(end.rsplit(":", 1)[1], 16) for end in fields[1:3])
                table[fields[9]] = (local, remote)
    return table


def connections(pid: int) -> list[tuple[int, int]]:
    """A process's established TCP connections: (local port, remote port)."""
    table = _tcp_table()
    found = []
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return []
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            ports = table.get(target[8:-1])
            if ports is not None:
                found.append(ports)
    return found


def clients_per_worker(workers: list[int], server_port: int) -> list[int]:
    """How many client connections each worker holds (accepted on ``server_port``)."""
    return [
        sum(1 for local, _ in connections(worker) if local == server_port) for worker in workers
    ]


def backend_pids(postgres_ports: list[int], client_ports: set[int]) -> list[int]:
    """PostgreSQL's server processes on this machine for connections from ``client_ports``:
    whichever process holds the other end (a PostgreSQL elsewhere: none)."""
    wanted = {(port, client) for port in postgres_ports for client in client_ports}
    table = {inode: ports for inode, ports in _tcp_table().items() if ports in wanted}
    found = []
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            fds = list(fd_dir.iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in table:
                found.append(int(fd_dir.parent.name))
                break
    return sorted(found)


class Watch:
    """Run and wait times of a server's workers and their PostgreSQL backends over a run."""

    def __init__(self, server: int, server_port: int, postgres_port: int) -> None:
        # One worker is the server process itself; several are its children.
        self.workers = [pid for pid in children(server) if connections(pid)] or [server]
        self.server_port = server_port
        client_ports = {
            local
            for worker in self.workers
            for local, remote in connections(worker)
            if remote == postgres_port
        }
        self.backends = backend_pids([postgres_port], client_ports)
        self.clients: list[int] = []
        # Counted once the load generator is connected, a moment into the run.
        self._counter = threading.Timer(
            1.0, lambda: self.clients.extend(clients_per_worker(self.workers, server_port))
        )
        self._counter.start()
        self._start = self._sample()

    def _sample(self) -> dict[int, Times]:
        sampled = {pid: times(pid) for pid in [*self.workers, *self.backends]}
        return {pid: value for pid, value in sampled.items() if value is not None}

    def report(self, seconds: float, requests: int) -> str:
        end = self._sample()
        self._counter.cancel()
        spent = {pid: end[pid] - self._start[pid] for pid in end if pid in self._start}

        def share(pids: list[int], label: str) -> str:
            known = [spent[pid] for pid in pids if pid in spent]
            if not known:
                return f"{label}: not on this machine"
            running = sum(t.running for t in known)
            waiting = sum(t.waiting for t in known)
            return (
                f"{label} x{len(known)}: {running / requests * 1000:.2f} ms on a CPU and "
                f"{waiting / requests * 1000:.2f} ms waiting for one per request"
            )

        each = [
            f"{spent[pid].running / seconds:.0%} running, {spent[pid].waiting / seconds:.0%} ready"
            for pid in self.workers
            if pid in spent
        ]
        return (
            f"connections per worker {'/'.join(map(str, self.clients)) or '?'}; "
            f"{share(self.workers, 'workers')} (each: {'; '.join(each)}); "
            f"{share(self.backends, 'PostgreSQL backends')}"
        )
