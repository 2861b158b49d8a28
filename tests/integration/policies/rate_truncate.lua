-- Test policy: tenant "rated" (user mb_scram) limited to 5 transactions per second; statements that reach
-- the hook truncated are rejected, others are checked by their text.
local P = { query_kinds = { "select" } }

function P.on_connect(client)
  return { tenant = "rated" }
end

function P.limits(tenant)
  if tenant == "rated" then
    return { rate = 5 }
  end
end

function P.on_query(client, q)
  if q.truncated then
    return { reject = "statement too long for the policy (" .. #q.sql .. " bytes seen)", sqlstate = "54000" }
  end
end

return P
