-- Test cases of nightly-report.lua: the collectors run for real (df, /proc/loadavg) or are pinned.
return tests {
  { name = "the night's run summarises and publishes", workflow = "nightly-report",
    at = "2026-03-29T03:30:00+02:00",
    expect = { actions = { disk = "succeeded", load = "succeeded", summary = "succeeded" },
               outputs = { publish = { published = true, tries = 1 } },
               logs = { "publishing" } } },

  { name = "pinned figures make the summary", workflow = "nightly-report",
    mocks = { disk = { used_pct = 42 }, load = { load1 = 0.5 } },
    expect = { outputs = { summary = { text = "disk 42%, load 0.50" } } } },

  -- Two retries one second apart, on the virtual clock.
  { name = "a collector that keeps failing fails the run after its retries", workflow = "nightly-report",
    mocks = { disk = "error:df: cannot read /" }, fast = true,
    expect = { status = "failed", error = "df: cannot read",
               actions = { disk = "failed", summary = "skipped", publish = "skipped" } } },
}
