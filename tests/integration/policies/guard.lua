-- Test policy: the transaction-mode guard with its defaults (session SET/RESET tracked).
return require("policies.transaction_guard") {}
