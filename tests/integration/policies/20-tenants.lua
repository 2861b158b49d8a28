-- Test policy: one tenant per login user (policies/tenant_limits.lua).
return require("policies.tenant_limits") {
  tenant_from = "user",
  limits = {
    mb_scram = { max_active = 2 },
    mb_md5 = { max_clients = 2 },
  },
}
