-- Test policy with a syntax error on line 5.
local P = {}
function P.on_query(client, q)
  if q.kind == "select" then
    return { reject = "never" ]
  end
end
return P
