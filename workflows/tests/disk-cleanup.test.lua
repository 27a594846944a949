-- Test cases of disk-cleanup.lua: the survey runs df in a shell.
return tests {
  { name = "the survey's exit code reaches the decision", workflow = "disk-cleanup",
    expect = { outputs = { decide = { exit_code = 0 } }, logs = { "checked at" } } },
  { name = "a pinned survey", workflow = "disk-cleanup",
    mocks = { survey = { exit_code = 3 } },
    expect = { outputs = { decide = { exit_code = 3 } }, actions = { survey = "succeeded" } } },
}
