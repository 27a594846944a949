"""libical on demand: luaflowd does not link it (no DT_NEEDED), so a daemon whose workflows have no schedule
maps neither it nor ICU (read in /proc/PID/maps); the first scheduled workflow (a hot reload) loads it, and
`next` answers. A scheduled run stored earlier shows its time in UTC or in the daemon's own zone without
loading it. Without a usable libical.so.3, a workflow with a schedule does not load, with an error naming
the library and the loader's reason, while the daemon and the other workflows run on."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import LUAFLOWD, Daemon, wait_for  # noqa: E402

QUIET = """
return workflow { actions = { a = { run = function() return { n = 1 } end } } }
"""

SCHEDULED = """
return workflow {
  schedule = { rrule = "FREQ=DAILY;BYHOUR=9;BYMINUTE=30", tz = "Europe/Berlin" },
  actions = { a = { run = function() end } },
}
"""


def secondly(zone=None):
    tz = f', tz = "{zone}"' if zone else ""
    return f"""
    return workflow {{
      schedule = {{ rrule = "FREQ=SECONDLY"{tz} }},
      actions = {{ a = {{ run = function() end }} }},
    }}
    """


def mapped(pid):
    """The libical and ICU files mapped into the process."""
    with open(f"/proc/{pid}/maps") as f:
        return sorted({line.split()[-1] for line in f if "libical" in line or "libicu" in line})


def listed(d, wf):
    return [w for w in d.ctl_json("list") if w["id"] == wf]


class IcalOnDemandTest(unittest.TestCase):
    def test_luaflowd_does_not_link_libical(self):
        dynamic = subprocess.run(["readelf", "-d", LUAFLOWD], capture_output=True, text=True, check=True).stdout
        needed = [line for line in dynamic.splitlines() if "(NEEDED)" in line]
        self.assertTrue(needed, dynamic)
        self.assertFalse([line for line in needed if "libical" in line or "libicu" in line], needed)

    def test_libical_is_mapped_with_the_first_schedule_only(self):
        d = Daemon({"quiet.lua": QUIET})
        try:
            d.start()
            pid = d.proc.pid
            self.assertEqual(mapped(pid), [])
            self.assertEqual(d.ctl_json("run", "quiet", "--wait")["status"], "succeeded")
            rc, out, err = d.ctl("next", "quiet")
            self.assertEqual(rc, 1)
            self.assertIn("has no schedule", err)
            self.assertEqual(mapped(pid), [])
            # A scheduled workflow arrives (hot reload): libical is loaded for it, and `next` answers.
            d.write("daily.lua", SCHEDULED)
            wait_for(lambda: listed(d, "daily"), timeout=10, what="the scheduled workflow to load")
            self.assertEqual(listed(d, "daily")[0]["status"], "ok", listed(d, "daily"))
            upcoming = d.ctl_json("next", "daily", "-n", "3")
            self.assertEqual(len(upcoming), 3, upcoming)
            for t in upcoming:
                self.assertRegex(t, r"T09:30:00\+0[12]:00$")
            maps = mapped(pid)
            self.assertTrue([m for m in maps if "libical.so.3" in m], maps)
            self.assertEqual(d.ctl_json("run", "quiet", "--wait")["status"], "succeeded")
        finally:
            harness.finish(d)

    def test_a_stored_scheduled_run_shows_in_utc_and_the_own_zone_without_libical(self):
        # The daemon's own zone is Berlin ($TZ); one rule runs in it (no tz), one in UTC.
        env = {"TZ": "Europe/Berlin"}
        d = Daemon({"own.lua": secondly(), "utc.lua": secondly("UTC")})
        try:
            d.start(env=env)

            def one_run_each():
                runs = {}
                for wf in ("own", "utc"):
                    done = [e for e in d.ctl_json("executions", "--workflow", wf) if e["status"] == "succeeded"]
                    if not done:
                        return None
                    runs[wf] = done[0]["id"]
                return runs
            runs = wait_for(one_run_each, timeout=15, what="a scheduled run of each")
            shown = {wf: d.ctl_json("inspect", i)["scheduled_for"] for wf, i in runs.items()}
            self.assertRegex(shown["own"], r"T\d\d:\d\d:\d\d\+0[12]:00$")
            self.assertRegex(shown["utc"], r"T\d\d:\d\d:\d\d\+00:00$")
            self.assertEqual(d.stop(), 0)
            # Without their schedules, nothing loads libical; the runs stored show as they did.
            d.write("own.lua", QUIET)
            d.write("utc.lua", QUIET)
            d.start(env=env)
            self.assertEqual({wf: d.ctl_json("inspect", i)["scheduled_for"] for wf, i in runs.items()}, shown)
            rc, out, err = d.ctl("inspect", runs["own"])
            self.assertEqual(rc, 0, err)
            self.assertIn(shown["own"], out)
            self.assertEqual(mapped(d.proc.pid), [])
        finally:
            harness.finish(d)

    def test_without_libical_a_schedule_is_a_load_error_and_the_rest_works(self):
        # The loader finds this libical.so.3 first (LD_LIBRARY_PATH), and it is not a library.
        fake = tempfile.mkdtemp(prefix="luaflow-no-ical-")
        open(os.path.join(fake, "libical.so.3"), "w").close()
        env = {"LD_LIBRARY_PATH": fake}
        d = Daemon({"quiet.lua": QUIET, "daily.lua": SCHEDULED})
        try:
            d.start(env=env)
            item = listed(d, "daily")[0]
            self.assertEqual(item["status"], "error", item)
            self.assertIn("daily.lua:3: schedule: needs libical: cannot load libical.so.3: ", item["error"])
            self.assertIn(f"{fake}/libical.so.3: file too short", item["error"])
            rc, out, err = d.ctl("next", "daily")
            self.assertEqual(rc, 1)
            self.assertIn("libical.so.3", err)
            self.assertEqual(d.ctl_json("run", "quiet", "--wait")["status"], "succeeded")
            # Another scheduled workflow arriving later gets the same error; the daemon runs on.
            d.write("later.lua", secondly("UTC"))
            item = wait_for(lambda: listed(d, "later"), timeout=10, what="the later workflow")[0]
            self.assertEqual(item["status"], "error", item)
            self.assertIn("cannot load libical.so.3", item["error"])
            self.assertEqual(d.ctl_json("run", "quiet", "--wait")["status"], "succeeded")
            self.assertIn("schedules and time zones are off: cannot load libical.so.3", d.log_text())
        finally:
            harness.finish(d)
            shutil.rmtree(fake, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
