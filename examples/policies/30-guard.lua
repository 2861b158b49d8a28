-- Keep transaction pooling safe: track SET, refuse what needs a session (policies/transaction_guard.lua).
return require("policies.transaction_guard") {
  allow_temp_tables = false,
  check_set_config = true,
}
