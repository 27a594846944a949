-- /etc/luaflow/luaflowd.lua: luaflowd's config (luaflowd.lua(5)). Every key is optional; the values
-- below that are not commented out are what the service needs. Reload with `systemctl reload luaflowd`.

-- Members of group luaflow may use luaflowctl (the unit's RuntimeDirectory lets them reach the socket).
socket = { path = "/run/luaflow/luaflowd.sock", mode = "0660", group = "luaflow" }

-- workflows = "/etc/luaflow/workflows"
-- state     = "/var/lib/luaflow"
-- retention = { days = 30, keep_per_workflow = 1000 }
-- shutdown_grace = "30s"
-- durability = "crash"           -- "power": commits survive power loss too (a disk flush each)
-- http      = { listen = "127.0.0.1:8470", token_file = "/etc/luaflow/api-token" }
-- queues    = { default = { concurrency = 4 } }
-- hosts     = { gpubox = { ssh = "runner@gpubox", cpus = 32, gpus = { "0", "1" } } }
-- notifiers = {
--   ops  = { email = { url = "smtp://mail.example.com:587", from = "luaflow@example.com",
--                      to = { "ops@example.com" }, user = "luaflow", password_file = "/etc/luaflow/smtp-pass" } },
--   chat = { webhook = { url = "https://chat.example.com/hooks/abc", format = "slack" } },
-- }
-- notify    = { failure = { "ops" }, timeout = { "ops" } }
-- sandbox   = { memory = "64M", paths = { "/srv/data" }, exec = true }
-- env       = { pass = { "PATH", "HOME" }, secrets = { API_KEY = "/etc/luaflow/secrets/api_key" } }
