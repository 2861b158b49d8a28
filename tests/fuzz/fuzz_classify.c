/*
 * Fuzz target: the Lua statement classifier (lua/moonbouncer/classify.lua) in LuaJIT, as policies run it.
 * Any text must classify without a Lua error: statements(), kinds(), kind(), read_only() and
 * changes_session() of every statement.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#ifndef MB_DATADIR
#define MB_DATADIR "."
#endif

static lua_State *L;

static const char *const probe =
	"local M, sql = ...\n"
	"local stmts = M.statements(sql)\n"
	"for _, st in ipairs(stmts) do M.changes_session(st) end\n"
	"M.kinds_of(stmts); M.kinds(sql); M.kind(sql); M.read_only(sql)\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	L = luaL_newstate();
	luaL_openlibs(L);
	if (luaL_dostring(L, "package.path = '" MB_DATADIR "/lua/?.lua;' .. package.path\n"
			     "classify = require 'moonbouncer.classify'") != 0) {
		fprintf(stderr, "cannot load the classifier: %s\n", lua_tostring(L, -1));
		abort();
	}
	if (luaL_loadstring(L, probe) != 0)
		abort();
	lua_setglobal(L, "probe");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lua_getglobal(L, "probe");
	lua_getglobal(L, "classify");
	lua_pushlstring(L, (const char *)data, size);
	if (lua_pcall(L, 2, 0, 0) != 0) {
		fprintf(stderr, "classifier error: %s\n", lua_tostring(L, -1));
		abort();
	}
	lua_gc(L, LUA_GCSTEP, 64);
	return 0;
}
