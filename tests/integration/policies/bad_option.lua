-- Test policy that fails while loading: an unknown option of a ready policy.
return require("policies.transaction_guard") { no_such_option = true }
