-- One tenant per login user, with limits (policies/tenant_limits.lua).
return require("policies.tenant_limits") {
  tenant_from = "user",
  limits = {
    acme = { max_active = 5, max_clients = 200, rate = 50 },
    ["*"] = { max_active = 2, max_clients = 50 },
  },
}
