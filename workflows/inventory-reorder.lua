-- Reorder items whose stock fell below the threshold (the example of luaflow-workflow(5)).
-- Try it: luaflowctl run inventory-reorder --input '{"stock": {"apples": 3, "pears": 40}}' --wait
return workflow {
  description = "Reorder items whose stock fell below the threshold",
  schedule = { rrule = "FREQ=HOURLY;BYMINUTE=0", tz = "Europe/Berlin" },
  triggers = { manual = true, webhook = { secret_file = "/etc/luaflow/secrets/inv" } },
  context  = { threshold = 10 },
  -- With a notifier "ops" in luaflowd.lua (luaflowd.lua(5), notifiers), a failure e-mails it:
  -- notify = { failure = { "ops" } },
  actions  = {
    check = {
      run = function(ctx)
        local low = {}
        for sku, qty in pairs(ctx.input.stock or {}) do
          if qty < ctx.shared.threshold then low[#low + 1] = sku end
        end
        table.sort(low)
        return { low = low }
      end,
    },
    reorder = {
      needs = { "check" },
      when  = function(ctx) return #ctx.outputs.check.low > 0 end,
      run   = function(ctx)
        ctx.shared.ordered = ctx.outputs.check.low
        return { orders = #ctx.outputs.check.low }
      end,
    },
    report = { needs = { "reorder" }, always = true, shell = "echo done" },
  },
}
