-- test_policy.c: a ready-made policy from the runtime's policies/ directory.
return require("policies.tenant_limits") {
  tenant_from = "user",
  limits = { acme = { max_active = 5, max_clients = 200, rate = 50 }, ["*"] = { max_active = 2 } },
}
