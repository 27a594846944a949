-- Test cases of checksum-files.lua: a real directory (the workflows' own lib/), then a pinned listing.
return tests {
  { name = "checksums a directory", workflow = "checksum-files",
    input = { dir = "/usr/share/common-licenses" },
    expect = { actions = { list = "succeeded", checksum = "succeeded", report = "succeeded" },
               logs = { "files in /usr/share/common-licenses checksummed" } } },
  { name = "an empty listing checksums nothing", workflow = "checksum-files",
    mocks = { list = { files = {} } },
    expect = { outputs = { checksum = { count = 0 } }, logs = { "0 files in" } } },
}
