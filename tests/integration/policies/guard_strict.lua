-- Test policy: the transaction-mode guard in strict mode (session SET rejected).
return require("policies.transaction_guard") { strict = true }
