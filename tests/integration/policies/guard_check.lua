-- Test policy: the transaction-mode guard that also inspects set_config() and SELECT INTO.
return require("policies.transaction_guard") { check_set_config = true }
