"""sleep() from many actions at once (issue 5): timers, not a thread each, so 50 parallel sleep(1) end
together, and none ends before its second is up."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

FIFTY = "return workflow { actions = {\n" + "".join(
    f"  s{i} = {{ run = function() local t = time.now(); sleep(1); return time.now() - t end }},\n"
    for i in range(50)) + "} }\n"


class SleepTest(harness.DaemonTest):
    WORKFLOWS = {"fifty.lua": FIFTY}

    def test_fifty_parallel_sleeps_take_one_second_not_fifty(self):
        report = self.run_wait("fifty")
        self.assertEqual(report["status"], "succeeded")
        took = harness.ms(report["finished_at"]) - harness.ms(report["started_at"])
        self.assertLess(took, 2.5, "50 sleep(1) in parallel should end together")
        slept = [a["output"] for a in report["actions"].values()]
        self.assertEqual(len(slept), 50)
        # time.now() has milliseconds; a sleep never ends early.
        self.assertGreaterEqual(min(slept), 0.999)


if __name__ == "__main__":
    unittest.main()
