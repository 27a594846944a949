-- Test cases of inventory-reorder.lua: luaflowctl test workflows (luaflow-workflow(5), TESTING).
return tests {
  { name = "low stock reorders", workflow = "inventory-reorder",
    input = { stock = { apples = 3, pears = 40 } },
    expect = { status = "succeeded",
               outputs = { check = { low = { "apples" } }, reorder = { orders = 1 } },
               actions = { reorder = "succeeded", report = "succeeded" },
               logs = { "done" } } },

  { name = "normal stock orders nothing", workflow = "inventory-reorder",
    input = { stock = { apples = 30, pears = 40 } },
    expect = { status = "succeeded",
               outputs = { check = { low = {} } },
               actions = { reorder = "skipped", report = "succeeded" } } },

  -- The check pinned: what follows it is tested alone.
  { name = "a pinned check drives the reorder", workflow = "inventory-reorder",
    mocks = { check = { low = { "apples", "pears" } } },
    expect = { outputs = { reorder = { orders = 2 } } } },

  { name = "the hourly run at a chosen time", workflow = "inventory-reorder",
    at = "2026-03-29T02:00:00+01:00",
    input = { stock = { plums = 1 } },
    expect = { outputs = { reorder = { orders = 1 } } } },

  { name = "a failing check fails the run", workflow = "inventory-reorder",
    mocks = { check = "error:stock service unreachable" },
    expect = { status = "failed", error = "stock service unreachable",
               actions = { check = "failed", reorder = "skipped" } } },
}
