-- Subprocess actions: list a directory's files in Lua, then checksum them with a program that reads
-- LUAFLOW_INPUT and writes LUAFLOW_OUTPUT, and print the result with an argv template.
-- luaflowctl run checksum-files -i dir=/etc/luaflow --wait
return workflow {
  description = "Checksum the files of a directory",
  input = { dir = { type = "string", default = "/etc" } },
  actions = {
    list = {
      run = function(ctx)
        local r = exec({ "find", ctx.input.dir, "-maxdepth", "1", "-type", "f", "-size", "-1024k" })
        local files = {}
        for path in r.stdout:gmatch("[^\n]+") do files[#files + 1] = path end
        table.sort(files)
        return { files = files }
      end,
    },
    checksum = {
      needs = { "list" },
      resources = { cpus = 1, memory = "256M" },
      timeout = "5m",
      -- Any program can take part: it reads its input from $LUAFLOW_INPUT and may write its output
      -- to $LUAFLOW_OUTPUT, both JSON.
      shell = [[
        python3 - <<'PY'
import hashlib, json, os
doc = json.load(open(os.environ["LUAFLOW_INPUT"]))
sums = {}
for path in doc["outputs"]["list"]["files"]:
    try:
        sums[path] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    except OSError as e:
        print(f"skipped {path}: {e.strerror}")
json.dump({"count": len(sums), "sha256": sums}, open(os.environ["LUAFLOW_OUTPUT"], "w"))
PY
      ]],
    },
    report = {
      needs = { "checksum" },
      cmd = { "echo", "{{ outputs.checksum.count }} files in {{ input.dir }} checksummed" },
    },
  },
}
