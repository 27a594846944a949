"""Workflow states on demand (issue 16, footprint): a loaded workflow holds no Lua state; its first
execution that runs Lua evaluates its file again into one, which the next executions share while it
is in use (a file-level local keeps counting); a workflow of plain commands never gets one. A file
whose top level gives other actions on a second evaluation fails the run with a message naming it,
and the daemon goes on."""
import datetime
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Daemon  # noqa: E402

COUNTER = """
local runs = 0
return workflow { actions = { count = { run = function() runs = runs + 1; return { runs = runs } end } } }
"""

COMMANDS = """
return workflow { actions = { a = { cmd = { "true" } }, b = { needs = { "a" }, shell = "exit 0" } } }
"""

# Its action's name is the second it was evaluated in.
CLOCKED = """
return workflow { actions = { ["at" .. os.time()] = { run = function() return true end } } }
"""


class LuaStatesTest(unittest.TestCase):
    def test_states_are_made_by_the_first_run_and_shared(self):
        d = Daemon({"counter.lua": COUNTER, "commands.lua": COMMANDS})
        try:
            d.start()
            self.assertEqual(d.call("stats")["lua_states"], 0)
            r = d.ctl_json("run", "commands", "--wait")
            self.assertEqual(r["status"], "succeeded", r)
            self.assertEqual(d.call("stats")["lua_states"], 0)
            outputs = []
            for _ in range(3):
                r = d.ctl_json("run", "counter", "--wait")
                self.assertEqual(r["status"], "succeeded", r)
                outputs.append(r["actions"]["count"]["output"]["runs"])
            # One state since the first run: the file's local counts on.
            self.assertEqual(outputs, [1, 2, 3])
            self.assertEqual(d.call("stats")["lua_states"], 1)
            # An edit is a new definition, evaluated again from its first run.
            d.write("counter.lua", COUNTER.replace("runs + 1", "runs + 10"))
            d.ctl("reload")
            r = d.ctl_json("run", "counter", "--wait")
            self.assertEqual(r["actions"]["count"]["output"]["runs"], 10, r)
        finally:
            self.assertEqual(d.stop(), 0)

    def test_a_file_that_changes_its_actions_fails_the_run_not_the_daemon(self):
        d = Daemon({"clocked.lua": CLOCKED, "counter.lua": COUNTER})
        try:
            d.start()
            # The next second: its file now names another action.
            time.sleep(1.2)
            rc, out, err = d.ctl("run", "clocked", "--wait")
            self.assertNotEqual(rc, 0)
            self.assertIn("clocked.lua gave different actions when evaluated again", err)
            self.assertIn("depend on the time", err)
            r = d.ctl_json("run", "counter", "--wait")
            self.assertEqual(r["status"], "succeeded", r)
        finally:
            self.assertEqual(d.stop(), 0)

    def test_a_workflow_due_soon_gets_its_state_before_it_fires(self):
        # Due in 20 s: its state is made when its timer is armed, not in the turn it fires. Due in an
        # hour: none yet.
        soon = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=20)).strftime(
            "%Y-%m-%dT%H:%M:%S")
        later = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)).strftime(
            "%Y-%m-%dT%H:%M:%S")
        text = """
return workflow {{ schedule = {{ rrule = "FREQ=DAILY", tz = "UTC", dtstart = "{at}" }},
  actions = {{ a = {{ run = function() return true end }} }} }}
"""
        d = Daemon({"soon.lua": text.format(at=soon), "later.lua": text.format(at=later)})
        try:
            d.start()
            self.assertEqual(d.call("stats")["lua_states"], 1)
        finally:
            self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
