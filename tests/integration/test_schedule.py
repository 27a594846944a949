"""Schedules fire on time, keep their series across restarts and catch up after downtime (issue 4).

Each test runs a real luaflowd; downtime is real: the daemon is stopped, time passes, it starts again.
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import Daemon, ms, wait_for  # noqa: E402


def secondly(catchup=None, extra=""):
    rule = '{ rrule = "FREQ=SECONDLY", tz = "UTC"' + (f', catchup = "{catchup}"' if catchup else "") + " }"
    return f"""
    return workflow {{
      schedule = {rule},
      {extra}
      actions = {{ tick = {{ run = function(ctx) return {{ at = ctx.execution.scheduled_for, trigger = ctx.execution.trigger }} end }} }},
    }}
    """


def executions(d, wf):
    return d.ctl_json("executions", "--workflow", wf, "--limit", "1000")


def reports(d, wf):
    return [d.ctl_json("inspect", e["id"]) for e in executions(d, wf)]


def scheduled_seconds(d, wf):
    return sorted(round(ms(r["scheduled_for"])) for r in reports(d, wf) if r["scheduled_for"])


class ScheduleTest(unittest.TestCase):
    def setUp(self):
        self.d = None

    def tearDown(self):
        if self.d:
            self.d.cleanup()

    def start(self, workflows):
        self.d = Daemon(workflows)
        self.d.start()
        return self.d

    def test_secondly_fires_every_second_with_its_nominal_time(self):
        d = self.start({"tick.lua": secondly()})
        wait_for(lambda: len([e for e in executions(d, "tick") if e["status"] == "succeeded"]) >= 4,
                 timeout=15, what="four scheduled runs")
        runs = [e for e in executions(d, "tick") if e["status"] == "succeeded"]
        for e in runs:
            self.assertEqual(e["trigger"], "schedule")
            report = d.ctl_json("inspect", e["id"])
            self.assertEqual(report["trigger"]["type"], "schedule")
            self.assertEqual(report["trigger"]["rrule"], "FREQ=SECONDLY")
            # ctx.execution.scheduled_for is the nominal time: a whole second, the one in the report.
            at = report["actions"]["tick"]["output"]["at"]
            self.assertEqual(ms(at), ms(report["scheduled_for"]))
            self.assertEqual(ms(at) % 1, 0)
            self.assertGreaterEqual(ms(report["started_at"]), ms(at))
        seconds = scheduled_seconds(d, "tick")
        self.assertEqual(len(seconds), len(set(seconds)), "an occurrence fired twice")
        self.assertEqual(seconds, list(range(seconds[0], seconds[0] + len(seconds))), "an occurrence was lost")
        listed = [w for w in d.ctl_json("list") if w["id"] == "tick"][0]
        self.assertIsNotNone(listed["next_run"])
        self.assertEqual(listed["schedule"], [{"rrule": "FREQ=SECONDLY", "tz": "UTC", "catchup": "none",
                                               "dtstart": listed["schedule"][0]["dtstart"]}])

    def downtime(self, catchup, seconds_down=3.5):
        d = self.start({"tick.lua": secondly(catchup)})
        wait_for(lambda: len(scheduled_seconds(d, "tick")) >= 2, timeout=15, what="two runs before the stop")
        self.assertEqual(d.stop(), 0)
        stopped = time.time()
        wait_for(lambda: time.time() > stopped + seconds_down, timeout=seconds_down + 5, what="downtime")
        d.start()
        restarted = time.time()
        wait_for(lambda: any(s > restarted + 1 for s in scheduled_seconds(d, "tick")), timeout=15,
                 what="an on-time run after the restart")
        return d, stopped, restarted

    def split(self, d, stopped, restarted):
        catchups = sorted(round(ms(r["scheduled_for"])) for r in reports(d, "tick") if r["trigger"].get("catchup"))
        seconds = scheduled_seconds(d, "tick")
        before = [s for s in seconds if s <= stopped]
        return before, catchups, seconds

    def test_catchup_none_skips_the_missed_occurrences_and_counts_them(self):
        d, stopped, restarted = self.downtime("none")
        before, catchups, seconds = self.split(d, stopped, restarted)
        self.assertEqual(catchups, [])
        first_after = [s for s in seconds if s > before[-1]][0]
        # The first run after the stop is one the restarted daemon saw come, not one of the downtime.
        self.assertGreaterEqual(first_after, int(stopped + 3.5), "a missed occurrence ran with catchup = none")
        self.assertLessEqual(first_after, restarted + 1)
        show = d.ctl_json("show", "tick")
        # Every second between the last run before the stop and the first after the start was dropped.
        self.assertGreaterEqual(first_after - before[-1] - 1, 2)
        self.assertEqual(show["skipped"], first_after - before[-1] - 1)
        skipped = [e for e in show["events"] if e["event"] == "skipped"]
        self.assertTrue(skipped and "catchup = \"none\"" in skipped[0]["message"], show["events"])
        self.assertEqual(skipped[0]["count"], show["skipped"])
        self.assertIn("missed occurrence(s)", d.log_text())

    def test_catchup_latest_runs_the_newest_missed_occurrence_once(self):
        d, stopped, restarted = self.downtime("latest")
        before, catchups, seconds = self.split(d, stopped, restarted)
        self.assertEqual(len(catchups), 1, catchups)
        on_time = [s for s in seconds if s > catchups[0]]
        # The newest missed one is the second just before the first on-time run.
        self.assertEqual(catchups[0] + 1, on_time[0])
        self.assertGreater(catchups[0], before[-1])
        self.assertEqual(d.ctl_json("show", "tick")["skipped"], catchups[0] - before[-1] - 1)

    def test_catchup_all_runs_each_missed_occurrence_oldest_first(self):
        d, stopped, restarted = self.downtime("all")
        before, catchups, seconds = self.split(d, stopped, restarted)
        self.assertGreaterEqual(len(catchups), 2)
        self.assertEqual(catchups[0], before[-1] + 1, "the oldest missed occurrence did not run")
        # The whole series, before, during and after the downtime: every second once.
        self.assertEqual(seconds, list(range(seconds[0], seconds[0] + len(seconds))))
        self.assertEqual(d.ctl_json("show", "tick")["skipped"], 0)
        # Oldest first: creation order follows scheduled_for.
        runs = list(reversed(reports(d, "tick")))
        order = [round(ms(r["scheduled_for"])) for r in runs]
        self.assertEqual(order, sorted(order))
        # Catch-up runs start late, and say so.
        late = runs[len(before)]["events"]
        self.assertTrue(any(e["event"] == "late" for e in late), late)

    def test_enabling_a_disabled_workflow_catches_up(self):
        d = self.start({"tick.lua": secondly("latest")})
        wait_for(lambda: len(scheduled_seconds(d, "tick")) >= 1, timeout=15, what="a first run")
        d.ctl_json("disable", "tick")
        self.assertIsNone([w for w in d.ctl_json("list") if w["id"] == "tick"][0]["next_run"])
        count = len(scheduled_seconds(d, "tick"))
        disabled = time.time()
        wait_for(lambda: time.time() > disabled + 3, timeout=8, what="time disabled")
        self.assertLessEqual(len(scheduled_seconds(d, "tick")), count + 1, "a disabled workflow fired")
        d.ctl_json("enable", "tick")
        wait_for(lambda: any(d.ctl_json("inspect", e["id"])["trigger"].get("catchup") == "latest"
                             for e in executions(d, "tick")), timeout=10, what="the catch-up run")

    def test_overlap_skip_drops_an_occurrence_while_busy(self):
        d = self.start({"slow.lua": """
            return workflow {
              schedule = { rrule = "FREQ=SECONDLY", tz = "UTC" },
              overlap = "skip",
              actions = { nap = { run = function() sleep(2.5) end } },
            }
            """})
        wait_for(lambda: d.ctl_json("show", "slow")["skipped"] >= 2, timeout=15, what="skipped occurrences")
        show = d.ctl_json("show", "slow")
        self.assertIn('overlap = "skip"', show["events"][0]["message"])
        self.assertTrue(all(e["status"] in ("running", "succeeded") for e in executions(d, "slow")))
        self.assertIn("skipped", d.log_text())

    def test_a_queued_run_that_starts_late_records_the_late_event(self):
        d = self.start({"busy.lua": """
            return workflow {
              schedule = { rrule = "FREQ=SECONDLY", tz = "UTC" },
              actions = { nap = { run = function() sleep(1.6) end } },
            }
            """})

        def late_run():
            for e in executions(d, "busy"):
                if e["status"] in ("running", "succeeded"):
                    events = d.ctl_json("inspect", e["id"])["events"]
                    if any(ev["event"] == "late" for ev in events):
                        return events
        events = wait_for(late_run, timeout=20, what="a late run")
        self.assertIn("after its scheduled time", [e for e in events if e["event"] == "late"][0]["message"])

    def restart_between_occurrences(self, catchup):
        """SPEC 4: the daemon stops just after an occurrence of an every-4-s rule and starts again 0.5 s
        after a later one, T1. Every occurrence up to T1 came before the process started: missed, and
        handled by `catchup` alone. Returns the runs after the stop as (second, catch-up or not), and T1."""
        d = self.start({"four.lua": f"""
            return workflow {{
              schedule = {{ rrule = "FREQ=SECONDLY;INTERVAL=4", tz = "UTC", catchup = "{catchup}" }},
              actions = {{ a = {{ run = function() end }} }},
            }}
            """})
        wait_for(lambda: scheduled_seconds(d, "four"), timeout=15, what="a first run")
        self.assertEqual(d.stop(), 0)
        stopped = time.time()
        # The series starts at the load minute: its occurrences are the Unix seconds divisible by 4.
        t1 = (int(stopped) // 4 + 2) * 4
        wait_for(lambda: time.time() >= t1 + 0.5, timeout=15, interval=0.002, what="0.5 s after an occurrence")
        d.start()
        wait_for(lambda: any(s >= t1 + 4 for s in scheduled_seconds(d, "four")), timeout=15,
                 what="the first occurrence after the restart")
        runs = sorted((round(ms(r["scheduled_for"])), bool(r["trigger"].get("catchup")))
                      for r in reports(d, "four"))
        return [r for r in runs if r[0] > stopped], t1

    def test_catchup_none_runs_nothing_that_came_before_the_start(self):
        runs, t1 = self.restart_between_occurrences("none")
        self.assertEqual(runs[0], (t1 + 4, False), f"an occurrence from before the start ran: {runs}")
        self.assertEqual([r for r in runs if r[1]], [])

    def test_catchup_latest_runs_only_the_occurrence_before_the_start(self):
        runs, t1 = self.restart_between_occurrences("latest")
        self.assertEqual(runs[:2], [(t1, True), (t1 + 4, False)], runs)

    def test_scheduled_for_is_in_the_rules_zone(self):
        # As `next` shows the rule's times: in inspect (JSON and text), in ctx.execution for Lua and for
        # a subprocess (LUAFLOW_INPUT), for a zone that is not the daemon's.
        d = self.start({"kolkata.lua": """
            return workflow {
              schedule = { rrule = "FREQ=SECONDLY;INTERVAL=2", tz = "Asia/Kolkata" },
              actions = {
                lua = { run = function(ctx) return { at = ctx.execution.scheduled_for } end },
                sub = { shell = [[cp "$LUAFLOW_INPUT" "$LUAFLOW_OUTPUT"]] },
              },
            }
            """})
        upcoming = d.ctl_json("next", "kolkata", "-n", "10")
        self.assertTrue(all(t.endswith("+05:30") for t in upcoming), upcoming)

        def listed_run():
            for r in reports(d, "kolkata"):
                if r["status"] == "succeeded" and r["scheduled_for"] in upcoming:
                    return r
        r = wait_for(listed_run, timeout=20, what="a run `next` listed")
        self.assertEqual(r["actions"]["lua"]["output"]["at"], r["scheduled_for"])
        self.assertEqual(r["actions"]["sub"]["output"]["execution"]["scheduled_for"], r["scheduled_for"])
        rc, out, err = d.ctl("inspect", r["id"])
        self.assertEqual(rc, 0, err)
        self.assertIn(r["scheduled_for"], out)

    def test_dtstart_is_kept_across_restarts_and_reloads(self):
        wf = """
        return workflow {
          enabled = false,
          schedule = { rrule = "FREQ=MINUTELY;INTERVAL=7", tz = "Europe/Berlin" },
          actions = { a = { run = function() end } },
        }
        """
        d = self.start({"seven.lua": wf})
        # Every query looks from the same moment, so that time passing during the test moves nothing.
        after = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        first = d.ctl_json("next", "seven", "-n", "5", "--after", after)
        dtstart = d.ctl_json("show", "seven")["schedule"][0]["dtstart"]
        self.assertTrue(dtstart.endswith(":00"), dtstart)  # the first load, to the minute
        # 7-minute steps from the stored start, whatever minute the restart happens in.
        d.stop()
        d.start()
        self.assertEqual(d.ctl_json("show", "seven")["schedule"][0]["dtstart"], dtstart)
        self.assertEqual(d.ctl_json("next", "seven", "-n", "5", "--after", after), first)
        d.write("seven.lua", wf.replace("enabled = false,", "enabled = false, description = 'edited',"))
        wait_for(lambda: d.ctl_json("show", "seven")["description"] == "edited", timeout=5, what="the reload")
        self.assertEqual(d.ctl_json("next", "seven", "-n", "5", "--after", after), first)
        starts = [ms(t) for t in first]
        self.assertTrue(all(b - a == 420 for a, b in zip(starts, starts[1:])), first)


class ScheduleErrorsTest(harness.DaemonTest):
    WORKFLOWS = {"ok.lua": 'return workflow { schedule = "FREQ=DAILY", actions = { a = { run = function() end } } }'}

    def check(self, text):
        path = self.d.write("bad.lua", text)
        rc, out, err = self.d.ctl("--json", "validate", path)
        self.assertEqual(rc, 1, out + err)
        return harness.json.loads(out)["errors"][0]

    def test_bad_rules_name_the_file_line_and_part(self):
        e = self.check('return workflow {\n  schedule = { rrule = "FREQ=HOURY" },\n  actions = { a = { run = function() end } } }\n')
        self.assertEqual(e["line"], 2)
        self.assertIn("schedule.rrule: FREQ=HOURY is not a valid RRULE: bad FREQ=HOURY", e["message"])
        e = self.check('return workflow {\n  schedule = { rrule = "FREQ=DAILY;BYHOUR=9;BYMINUTE=61" },\n'
                       '  actions = { a = { run = function() end } } }\n')
        self.assertIn("bad part BYMINUTE=61", e["message"])
        e = self.check('return workflow {\n  schedule = { rrule = "FREQ=DAILY", tz = "Mars/Olympus" },\n'
                       '  actions = { a = { run = function() end } } }\n')
        self.assertIn("schedule.tz: unknown time zone 'Mars/Olympus'", e["message"])
        e = self.check('return workflow {\n\n  schedule = { { rrule = "FREQ=DAILY" }, { cron = "0 25 * * *" } },\n'
                       '  actions = { a = { run = function() end } } }\n')
        self.assertEqual(e["line"], 3)
        self.assertIn("schedule[2].cron: cron field 'hour': 25 is out of range 0-23", e["message"])
        e = self.check('return workflow {\n  schedule = { rrule = "FREQ=DAILY", dtstart = "yesterday" },\n'
                       '  actions = { a = { run = function() end } } }\n')
        self.assertIn("schedule.dtstart: \"yesterday\" is not an RFC 3339 time", e["message"])
        e = self.check('return workflow {\n  schedule = "FREQ=DAILY",\n  input = { n = { type = "number", required = true } },\n'
                       '  actions = { a = { run = function() end } } }\n')
        self.assertIn("input 'n' is required and has no default", e["message"])
        e = self.check('return workflow {\n  schedule = "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",\n'
                       '  actions = { a = { run = function() end } } }\n')
        self.assertEqual(e["message"], "schedule: FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30 never fires: no day of any year "
                                       "is in BYMONTH=2 and BYMONTHDAY=30")

    def test_a_broken_schedule_keeps_the_last_good_version(self):
        self.d.write("ok.lua", 'return workflow { schedule = "FREQ=DAYLY", actions = { a = { run = function() end } } }')
        item = wait_for(lambda: [w for w in self.d.ctl_json("list") if w["id"] == "ok" and w["status"] == "error"],
                        timeout=5, what="the load error")[0]
        self.assertIn("FREQ=DAYLY", item["error"])
        self.assertEqual(item["schedule"][0]["rrule"], "FREQ=DAILY")
        self.assertEqual(len(self.d.ctl_json("next", "ok", "-n", "2")), 2)

    def test_next_refuses_bad_arguments(self):
        rc, out, err = self.d.ctl("next", "ok", "-n", "0")
        self.assertEqual(rc, 2)
        rc, out, err = self.d.ctl("next", "ok", "--after", "tomorrow")
        self.assertEqual(rc, 2, err)
        self.assertIn("'after' must be an RFC 3339 time", err)
        rc, out, err = self.d.ctl("next", "nope")
        self.assertEqual(rc, 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
