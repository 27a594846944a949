-- Test cases of hello.lua.
return tests {
  { name = "greets the world by default", workflow = "hello",
    expect = { outputs = { greet = { greeting = "hello, world" } }, logs = { "greeting world" } } },
  { name = "greets by name", workflow = "hello", input = { name = "Ada" },
    expect = { outputs = { greet = { greeting = "hello, Ada" } } } },
}
