-- Test policy: clients with application_name "wants_session" get session pooling.
local P = { name = "pool_mode" }

function P.on_connect(client)
  if client.application_name == "wants_session" then
    return { pool_mode = "session" }
  end
end

return P
