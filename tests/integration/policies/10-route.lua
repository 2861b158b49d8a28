-- Test policy: route by login user (policies/route_by_user_db.lua).
return require("policies.route_by_user_db") {
  users = {
    mb_scram = "db_a",
    mb_md5 = "db_b",
    mb_reload = { route = "db_a", user = "mb_scram" },
  },
}
