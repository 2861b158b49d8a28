-- test_policy.c: a module of the operator's own, found under policy_dir/policies/; counts its loads.
local mb = require "moonbouncer"

mb.counter_incr("testmod_loads")

return {
  greeting = function()
    return "hello from testmod"
  end,
}
