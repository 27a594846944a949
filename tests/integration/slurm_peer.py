"""A one-node Slurm cluster on this machine, started by the test (STYLE 2.11, shared/PEERS.md).

munged is machine-wide: it is started when `munge -n | unmunge` fails and left running (other tests may
share it). slurmctld and slurmd are children of this process, configured in a temp directory with free
ports and two stand-in GPU device files, and always stopped by PID.

    with SlurmCluster() as cluster:
        subprocess.run(["sbatch", ...], env=cluster.env())

Run as a program (`/usr/bin/python3 slurm_peer.py --serve`) it starts a cluster, prints
`SLURM_CONF=PATH` once the node is idle, and stops it when its stdin closes: the C++ unit tests use it so.
It prints `SKIP: reason` and exits 0 when the Slurm binaries are missing; the tests then call missing_peer()
(a skip, or a failure in CI: LUAFLOW_REQUIRE_PEERS).
"""
import fcntl
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

BINARIES = ("slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo", "munge", "unmunge",
            "munged")
SBIN_PATHS = os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin"


class SkipSlurm(Exception):
    """The Slurm (or munge) binaries are not installed: the tests skip."""


def missing_binaries():
    return [b for b in BINARIES if shutil.which(b, path=SBIN_PATHS) is None]


def _free_ports(n):
    # Bound at once so that the n ports differ; closed before the daemons bind them.
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _munge_works():
    try:
        cred = subprocess.run(["munge", "-n"], capture_output=True, timeout=10)
        if cred.returncode != 0:
            return False
        return subprocess.run(["unmunge"], input=cred.stdout, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def ensure_munge():
    if _munge_works():
        return
    # Several tests (ctest -j) may find munge down at once: one starts it, the others wait on the lock
    # and then find it working. Without the lock the second munged fails on the socket the first bound.
    with open("/tmp/luaflow-munge-start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _munge_works():
            return
        _start_munged()


def _start_munged():
    key = "/etc/munge/munge.key"
    os.makedirs("/etc/munge", exist_ok=True)
    if not os.path.exists(key):
        with open(key, "wb") as f:
            f.write(os.urandom(1024))
        shutil.chown(key, "munge", "munge")
        os.chmod(key, 0o400)
    for d in ("/run/munge", "/var/log/munge", "/var/lib/munge"):
        os.makedirs(d, exist_ok=True)
        shutil.chown(d, "munge", "munge")
    # munged forks into the background itself; --force gets past a stale socket of a dead one.
    started = subprocess.run(["runuser", "-u", "munge", "--", shutil.which("munged", path=SBIN_PATHS),
                              "--force"], timeout=30)
    deadline = time.monotonic() + 15
    while not _munge_works():
        if time.monotonic() > deadline:
            raise RuntimeError(f"munged (exit {started.returncode}) started but `munge -n | unmunge` still fails")
        time.sleep(0.1)


class SlurmCluster:
    def __init__(self, cpus=2, memory_mb=20000, kill_wait=2, extra_conf=""):
        self.extra_conf = extra_conf
        self.cpus = cpus
        self.memory_mb = memory_mb
        self.kill_wait = kill_wait
        self.dir = None
        self.conf = None
        self.procs = []

    def env(self, base=None):
        env = dict(os.environ if base is None else base)
        env["SLURM_CONF"] = self.conf
        return env

    def start(self, timeout=60):
        missing = missing_binaries()
        if missing:
            raise SkipSlurm("slurm binaries missing: " + ", ".join(missing))
        ensure_munge()
        self.dir = tempfile.mkdtemp(prefix="luaflow-slurm-")
        try:
            self._configure()
            self._start_daemons(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _configure(self):
        d = self.dir
        host = socket.gethostname().split(".")[0]
        ctld_port, slurmd_port = _free_ports(2)
        for sub in ("state", "spool"):
            os.makedirs(os.path.join(d, sub))
        for i in range(2):
            # Character devices like /dev/null: Slurm only needs files to hand out as GPUs.
            os.mknod(os.path.join(d, f"fakegpu{i}"), 0o666 | 0o020000, os.makedev(1, 3))
        self.conf = os.path.join(d, "slurm.conf")
        with open(self.conf, "w") as f:
            f.write(f"""ClusterName=luaflowtest
SlurmctldHost={host}
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmUser=root
SlurmdUser=root
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
KillWait={self.kill_wait}
# Schedule at submit, not in batches every few seconds: each test job would wait up to 3 s.
SchedulerParameters=batch_sched_delay=0
{self.extra_conf}
GresTypes=gpu
NodeName={host} CPUs={self.cpus} RealMemory={self.memory_mb} Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
""")
        with open(os.path.join(d, "gres.conf"), "w") as f:
            f.write(f"NodeName={host} Name=gpu File={d}/fakegpu[0-1]\n")

    def _spawn(self, argv, log):
        with open(os.path.join(self.dir, log), "ab") as out:
            self.procs.append(subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                               env=self.env()))

    def _start_daemons(self, timeout):
        self._spawn([shutil.which("slurmctld", path=SBIN_PATHS), "-f", self.conf, "-D", "-i"], "slurmctld.out")
        self._wait(lambda: self._run("scontrol", "ping").stdout.find("UP") >= 0, timeout, "slurmctld to answer")
        self._spawn([shutil.which("slurmd", path=SBIN_PATHS), "-f", self.conf, "-D"], "slurmd.out")
        self._wait(lambda: self._run("sinfo", "-h", "-o", "%t").stdout.strip() == "idle", timeout,
                   "the node to be idle")

    def _run(self, *argv):
        return subprocess.run(list(argv), capture_output=True, text=True, env=self.env(), timeout=30)

    def _wait(self, cond, timeout, what):
        deadline = time.monotonic() + timeout
        while not cond():
            dead = [p.args[0] for p in self.procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{dead[0]} exited while waiting for {what}:\n{self.logs()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out after {timeout}s waiting for {what}:\n{self.logs()}")
            time.sleep(0.2)

    def logs(self):
        text = ""
        for name in ("slurmctld.log", "slurmd.log", "slurmctld.out", "slurmd.out"):
            path = os.path.join(self.dir or "", name)
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    text += f"--- {name}\n" + f.read()[-2000:]
        return text

    def scontrol_job(self, job_id):
        """`scontrol show job ID` as a dict of its KEY=VALUE fields."""
        out = self._run("scontrol", "-o", "show", "job", str(job_id)).stdout
        fields = {}
        for word in out.split():
            key, _, value = word.partition("=")
            fields.setdefault(key, value)
        return fields

    def stop(self):
        # slurmd first: it ends the jobs it runs before slurmctld goes.
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def serve():
    try:
        cluster = SlurmCluster().start()
    except SkipSlurm as e:
        print(f"SKIP: {e}", flush=True)
        return 0
    try:
        print(f"SLURM_CONF={cluster.conf}", flush=True)
        sys.stdin.read()  # until the parent closes the pipe (or dies)
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        sys.exit(serve())
    print("usage: slurm_peer.py --serve", file=sys.stderr)
    sys.exit(2)
