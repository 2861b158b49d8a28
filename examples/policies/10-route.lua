-- Route by login user and by database name (policies/route_by_user_db.lua).
return require("policies.route_by_user_db") {
  users = { etl = { route = "warehouse", user = "etl_rw" } },
  databases = { reporting = "app_replica" },
}
