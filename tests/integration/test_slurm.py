"""Subprocess actions on a Slurm host (SPEC 2 `hosts`, SPEC 3) against a real one-node cluster
(slurm_peer.py): the LUAFLOW_INPUT/LUAFLOW_OUTPUT round trip through sbatch, the job's lines and
luaflow's `slurm:` lines in the log, exit codes, sbatch refusing a job, GPUs assigned by Slurm (two jobs at
once on different devices, a third pending for Resources), cancel and timeout ending the job CANCELLED, and a
restart after kill -9 cancelling the job the dead daemon left running.

Skips (exit 77, which ctest shows as "Skipped") only when the Slurm binaries are missing, and fails then in CI
(LUAFLOW_REQUIRE_PEERS, harness.missing_peer)."""
import os
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import Daemon, finish, read_text, wait_for  # noqa: E402
from slurm_peer import SkipSlurm, SlurmCluster  # noqa: E402

PY = "/usr/bin/python3"

# Without memory, each job would hold the node's whole memory (no --mem) and they would run one by one.
PROTOCOL = r"""
return workflow {
  actions = {
    first = { run = function() return { n = 41 } end },
    convert = {
      needs = { "first" },
      host = "cluster",
      resources = { memory = "50M" },
      cmd = { "%(py)s", "-c", [[
import json, os
doc = json.load(open(os.environ["LUAFLOW_INPUT"]))
print("hello from slurm")
print("line two")
json.dump({"n": doc["outputs"]["first"]["n"] + 1, "input": doc["input"], "cwd": os.getcwd(),
           "slurm_job": os.environ.get("SLURM_JOB_ID"), "job": os.environ["LUAFLOW_JOB"]},
          open(os.environ["LUAFLOW_OUTPUT"], "w"))
]] },
    },
  },
}
""" % {"py": PY}

FAILS = r"""
return workflow { actions = {
  code = { host = "cluster", resources = { memory = "50M" }, shell = "echo before; echo oops >&2; exit 3" },
  refused = { host = "nowhere", shell = "true" },
} }
"""

GPUS = r"""
local actions = {}
for _, name in ipairs({ "a", "b", "c" }) do
  actions[name] = {
    host = "cluster",
    resources = { gpus = 1, memory = "50M" },
    shell = 'printf "%%s" "$CUDA_VISIBLE_DEVICES" > devices.tmp && mv devices.tmp devices; '
         .. 'while [ ! -e "%(release)s/' .. name .. '" ]; do sleep 0.1; done',
  }
end
return workflow { actions = actions }
"""

SLOW = r"""
return workflow { actions = {
  a = { host = "cluster", resources = { memory = "50M" }, shell = "echo started; exec sleep 60" },
} }
"""

# On this one-node cluster the job runs on the daemon's machine, where a restarted daemon itself ends the
# processes marked LUAFLOW_JOB that a dead one left (leftovers.hpp): without the marker only scancel can.
ORPHAN = r"""
return workflow { actions = {
  a = { host = "cluster", resources = { memory = "50M" },
        shell = "exec env -u LUAFLOW_JOB sh -c 'echo started; exec sleep 60'" },
} }
"""

TIMEOUT = r"""
return workflow { actions = {
  a = { host = "cluster", resources = { memory = "50M" }, timeout = "2s",
        shell = "trap 'echo got TERM; exit 1' TERM; echo started; sleep 60 & wait" },
} }
"""




class SlurmTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = SlurmCluster()
        try:
            cls.cluster.start()
        except SkipSlurm as e:
            harness.missing_peer(str(e))
        try:
            cls.release = tempfile.mkdtemp(prefix="luaflow-release-")
            cls.d = Daemon({
                "protocol.lua": PROTOCOL, "fails.lua": FAILS, "gpus.lua": GPUS % {"release": cls.release},
                "slow.lua": SLOW, "orphan.lua": ORPHAN, "timeout.lua": TIMEOUT,
            }, config='shutdown_grace = "2s"\n'
                      'hosts = { cluster = { slurm = { partition = "debug" } },\n'
                      '          nowhere = { slurm = { partition = "nope" } } }\n')
            # luaflowd passes its SLURM_* variables to the Slurm tools.
            os.environ["SLURM_CONF"] = cls.cluster.conf
            cls.d.start()
        except BaseException:
            cls.cluster.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            finish(cls.d)
        finally:
            cls.cluster.stop()

    def scratch(self, run_id, action):
        return os.path.join(self.d.state, "scratch", run_id, action)

    def logs(self, run_id, action):
        return self.d.ctl_json("logs", run_id, "--action", action)

    def job_id(self, run_id, action):
        """The Slurm job id from the action's "slurm: submitted batch job N ..." line."""
        def find():
            for entry in self.logs(run_id, action):
                if entry["line"].startswith("slurm: submitted batch job "):
                    return entry["line"].split()[4]
            return None
        return wait_for(find, timeout=20, interval=0.1, what=f"{action}'s job to be submitted")

    def test_a_cmd_action_round_trips_input_and_output_through_sbatch(self):
        report = self.d.ctl_json("run", "protocol", "-i", "who=me", "--wait", timeout=60)
        convert = report["actions"]["convert"]
        self.assertEqual(convert["status"], "succeeded", convert)
        out = convert["output"]
        self.assertEqual(out["n"], 42)
        self.assertEqual(out["input"], {"who": "me"})
        self.assertEqual(out["cwd"], self.scratch(report["id"], "convert"))
        self.assertEqual(out["job"], report["id"] + "/convert/1")
        self.assertEqual(convert["host"], "cluster")
        logs = self.logs(report["id"], "convert")
        stdout = [l["line"] for l in logs if l["stream"] == "stdout"]
        self.assertEqual(stdout, ["hello from slurm", "line two"])
        notes = [l["line"] for l in logs if l["stream"] == "stderr"]
        self.assertEqual(notes[0], f"slurm: submitted batch job {out['slurm_job']} to partition debug")
        self.assertTrue(notes[-1].startswith(f"slurm: job {out['slurm_job']} COMPLETED"), notes)
        self.assertEqual(self.cluster.scontrol_job(out["slurm_job"])["JobName"], "luaflow:" + out["job"])

    def test_a_failing_exit_code_and_a_refused_job_fail_the_action(self):
        report = self.d.ctl_json("run", "fails", "--wait", expect_rc=1, timeout=60)
        code, refused = report["actions"]["code"], report["actions"]["refused"]
        # The program's last stderr line, not luaflow's "slurm: job N FAILED" note after it.
        self.assertEqual((code["status"], code.get("exit_code"), code["error"]), ("failed", 3, "exit code 3: oops"))
        lines = [(l["stream"], l["line"]) for l in self.logs(report["id"], "code")]
        self.assertIn(("stdout", "before"), lines)
        self.assertIn(("stderr", "oops"), lines)
        self.assertEqual(refused["status"], "failed")
        self.assertIn("sbatch refused the job: ", refused["error"])
        self.assertIn("invalid partition specified: nope", refused["error"])

    def test_two_gpu_jobs_run_at_once_on_slurms_devices_and_a_third_waits(self):
        run_id = self.d.ctl_json("run", "gpus")["id"]
        devices = {}

        def two_started():
            for name in "abc":
                if text := read_text(os.path.join(self.scratch(run_id, name), "devices")):
                    devices[name] = text
            return len(devices) >= 2
        wait_for(two_started, timeout=30, interval=0.1, what="two GPU jobs to start")
        waiting = [n for n in "abc" if n not in devices]
        self.assertEqual(len(waiting), 1, devices)
        waiting = waiting[0]
        self.assertEqual(sorted(devices.values()), ["0", "1"])
        job = self.job_id(run_id, waiting)
        wait_for(lambda: f"slurm: job {job} PENDING (Resources)" in [l["line"] for l in self.logs(run_id, waiting)],
                 timeout=15, interval=0.2, what="the third job to wait for Resources")
        self.assertEqual(read_text(os.path.join(self.scratch(run_id, waiting), "devices")), "")
        first = sorted(devices)[0]
        open(os.path.join(self.release, first), "w").close()
        third = wait_for(lambda: read_text(os.path.join(self.scratch(run_id, waiting), "devices")), timeout=30,
                         interval=0.1, what="the third job to start once a GPU is free")
        self.assertEqual(third, devices[first])
        for name in "abc":
            open(os.path.join(self.release, name), "w").close()
        wait_for(lambda: self.d.ctl_json("inspect", run_id)["status"] == "succeeded", timeout=30, interval=0.2,
                 what="the execution to end")

    def test_cancel_scancels_the_job(self):
        run_id = self.d.ctl_json("run", "slow")["id"]
        job = self.job_id(run_id, "a")
        wait_for(lambda: "started" in [l["line"] for l in self.logs(run_id, "a")], timeout=30, interval=0.1,
                 what="the job to run")
        self.assertEqual(self.d.ctl_json("cancel", run_id)["status"], "cancelled")
        wait_for(lambda: self.cluster.scontrol_job(job).get("JobState") == "CANCELLED", timeout=20, interval=0.2,
                 what=f"slurm job {job} to be cancelled")
        self.assertEqual(self.d.ctl_json("inspect", run_id)["actions"]["a"]["status"], "cancelled")

    def test_a_restart_scancels_the_job_a_killed_daemon_left_on_the_cluster(self):
        run_id = self.d.ctl_json("run", "orphan")["id"]
        job = self.job_id(run_id, "a")
        wait_for(lambda: "started" in [l["line"] for l in self.logs(run_id, "a")], timeout=30, interval=0.1,
                 what="the job to run")
        self.d.kill9()
        self.assertEqual(self.cluster.scontrol_job(job).get("JobState"), "RUNNING")
        self.d.start()  # the same state: recovery cancels the job by its deterministic name
        wait_for(lambda: self.cluster.scontrol_job(job).get("JobState") == "CANCELLED", timeout=20, interval=0.2,
                 what=f"slurm job {job} to be cancelled by the restarted daemon")

    def test_the_timeout_scancels_the_job_and_the_action_times_out(self):
        start = time.monotonic()
        report = self.d.ctl_json("run", "timeout", "--wait", expect_rc=1, timeout=60)
        a = report["actions"]["a"]
        self.assertEqual(a["status"], "timed_out", a)
        self.assertLess(time.monotonic() - start, 30)
        job = self.job_id(report["id"], "a")
        lines = [l["line"] for l in self.logs(report["id"], "a")]
        self.assertIn(f"slurm: job {job} timed out after 2s: scancel", lines)
        self.assertIn("got TERM", lines)  # Slurm's SIGTERM reached the job, and its last lines were read
        self.assertEqual(self.cluster.scontrol_job(job).get("JobState"), "CANCELLED")


if __name__ == "__main__":
    harness.main()
