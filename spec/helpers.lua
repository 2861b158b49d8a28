-- Shared helpers for the busted specs: temporary policy files and a few shortcuts.

local lfs = require "lfs"

local H = {}

H.T = require "moonbouncer.testing"
H.D = require "moonbouncer.dispatcher"
H.classify = require "moonbouncer.classify"

local dirs = {}

-- A fresh temporary directory (removed by H.cleanup()).
function H.tmpdir()
  local path = os.tmpname()
  os.remove(path)
  assert(lfs.mkdir(path))
  dirs[#dirs + 1] = path
  return path
end

-- Write content to dir/name (creating sub-directories) and return the path.
function H.write(dir, name, content)
  local path = dir .. "/" .. name
  local parent = path:match("^(.*)/[^/]+$")
  local acc = ""
  for part in parent:gmatch("[^/]+") do
    acc = acc .. "/" .. part
    if not lfs.attributes(acc) then
      assert(lfs.mkdir(acc))
    end
  end
  local f = assert(io.open(path, "wb"))
  f:write(content)
  f:close()
  return path
end

local function rmtree(path)
  local attr = lfs.symlinkattributes(path)
  if not attr then
    return
  end
  if attr.mode == "directory" then
    for entry in lfs.dir(path) do
      if entry ~= "." and entry ~= ".." then
        rmtree(path .. "/" .. entry)
      end
    end
    lfs.rmdir(path)
  else
    os.remove(path)
  end
end

function H.cleanup()
  for i = #dirs, 1, -1 do
    rmtree(dirs[i])
    dirs[i] = nil
  end
end

-- An in-memory policy entry for D.load / T.load.
function H.policy(name, source)
  return { name = name, source = source }
end

-- The searcher path that finds this repository's policies/ directory.
H.SEARCHER = { "./?.lua" }

-- Load in-memory policies with a fresh fake host; returns gen, host.
function H.load(entries, opts)
  opts = opts or {}
  opts.searcher_paths = opts.searcher_paths or H.SEARCHER
  local gen = H.T.load(entries, opts)
  return gen, gen.host
end

return H
