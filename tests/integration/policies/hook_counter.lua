-- Test policy: logs every hook call with a per-application counter kept in the shared counters.
-- Log line: "hookcall <hook> app=<application_name> n=<count> protocol=<p> kind=<k> kinds=<k1,k2> name=<n>"
local mb = require "moonbouncer"
local fmt, concat = string.format, table.concat

local function note(hook, client, q)
  local app = client.application_name
  if app == nil or app == "" then
    app = "-"
  end
  local n = mb.counter_incr(hook .. ":" .. app)
  local protocol, kind, kinds, name = "-", "-", "-", "-"
  if q then
    protocol = q.protocol or "-"
    kind = q.kind ~= "" and q.kind or "-"
    kinds = q.kinds and concat(q.kinds, ",") or "-"
    name = q.name or "-"
  end
  mb.log("info", fmt("hookcall %s app=%s n=%d protocol=%s kind=%s kinds=%s name=%s tx=%s", hook, app, n,
    protocol, kind, kinds, name, tostring(client.in_transaction)))
end

local P = { name = "hook_counter" }
function P.on_connect(client) note("on_connect", client) end
function P.on_query(client, q) note("on_query", client, q) end
function P.on_transaction_begin(client, q) note("on_transaction_begin", client, q) end
function P.on_disconnect(client) note("on_disconnect", client) end
return P
