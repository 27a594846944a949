-- The smallest useful workflow: one Lua action that greets whoever the input names.
-- luaflowctl run hello -i name=Ada --wait
return workflow {
  description = "Say hello",
  input = { name = { type = "string", default = "world" } },
  actions = {
    greet = {
      run = function(ctx)
        log.info("greeting %s", ctx.input.name)
        return { greeting = "hello, " .. ctx.input.name }
      end,
    },
  },
}
