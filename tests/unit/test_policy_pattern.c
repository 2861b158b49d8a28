/* Unit tests for core/policy_pattern.c: the budgeted pattern functions answer as LuaJIT's own, errors included. */
#include "unit.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "policy_pattern.h"

/*
 * Runs in a plain LuaJIT state: `orig` holds LuaJIT's string functions,
 * `mine` the budgeted ones. Each case calls both with the same arguments and
 * compares every result (errors by message); returns the number of cases and
 * a description of the first difference.
 */
static const char DIFF_SCRIPT[] = "local orig, mine = ...\n"
	"local function pack(ok, ...) return { ok = ok, n = select('#', ...), ... } end\n"
	"local function same(a, b)\n"
	"  if a.ok ~= b.ok or a.n ~= b.n then return false end\n"
	"  for i = 1, a.n do if a[i] ~= b[i] then return false end end\n"
	"  return true\n"
	"end\n"
	"local function show(r)\n"
	"  local t = { tostring(r.ok) }\n"
	"  for i = 1, r.n do t[#t + 1] = string.format('%q', tostring(r[i])) end\n"
	"  return table.concat(t, ',')\n"
	"end\n"
	"local function all_of(f, s, p, ...)\n"
	"  local out = {}\n"
	"  local ok, err = pcall(function(...) for a, b, c in f(s, p) do out[#out + 1] = tostring(a) .. '/' .."
	" tostring(b) .. '/' .. tostring(c) end end)\n"
	"  return ok, ok and table.concat(out, ' ') or err\n"
	"end\n"
	"local repls = { 'x', '%1', '%0%0', '[%1]', '%%', '%', '%2', function(a) return a and #a > 1 and"
	" a:upper() end, { a = 'A', ab = false, b = 1 } }\n"
	"local subjects = { '', 'a', 'aaab', 'hello world', 'SET app.tenant = \\'acme\\'; SELECT (1, (2)) -- x',"
	" 'a\\0b\\0c', '  key = value  ', 'THE (quick) fox', 'a.b.c', '[x]%y', 'abcabcabc', '1.5e10 -3' }\n"
	"local patterns = { 'a', 'a*', 'a+', 'a-', 'a?', '^a*', 'a*$', '(a*)(b)', '()a()', '%w+', '%s*(%w+)%s*=%s*(%w+)',"
	" '%b()', '%f[%w]%w+', '[^%s]+', '[a-c]+', '[%a_][%w_]*', '.-b', '(.)%1', '(%w+)%s*(%d*)', '%d+%.?%d*',"
	" '^$', '$', '[]]', '[^]]+', '%.', 'x*', '.*', '(a)(b)(c)', '%', '(a', 'a)', '[a', '%b', '%bx', '%f', '%1',"
	" '(()a)', 'a\\0b', '%z', '[%z]+', '%g+', '%u%l*', '%p+', '%c', '%x+', '[%]]', '[a-]', '[-a]+', '%S+$',"
	" '^(.-)%s*$', '(h)(e)(l)(l)(o)', '[%d%.%-]+', 'o?r?', 'b*c*d*' }\n"
	"local n, first = 0, nil\n"
	"local function check(what, a, b)\n"
	"  n = n + 1\n"
	"  if not first and not same(a, b) then first = what .. ': LuaJIT ' .. show(a) .. ' mine ' .. show(b) end\n"
	"end\n"
	"for _, s in ipairs(subjects) do\n"
	"  for _, p in ipairs(patterns) do\n"
	"    local tag = string.format('%q on %q', p, s)\n"
	"    for _, init in ipairs({ 1, 2, -3, 100 }) do\n"
	"      check('find ' .. tag .. ' ' .. init, pack(pcall(orig.find, s, p, init)), pack(pcall(mine.find, s, p, init)))\n"
	"      check('match ' .. tag .. ' ' .. init, pack(pcall(orig.match, s, p, init)), pack(pcall(mine.match, s, p, init)))\n"
	"    end\n"
	"    check('find plain ' .. tag, pack(pcall(orig.find, s, p, 1, true)), pack(pcall(mine.find, s, p, 1, true)))\n"
	"    check('gmatch ' .. tag, pack(all_of(orig.gmatch, s, p)), pack(all_of(mine.gmatch, s, p)))\n"
	"    for ri, r in ipairs(repls) do\n"
	"      check('gsub ' .. tag .. ' repl ' .. ri, pack(pcall(orig.gsub, s, p, r)), pack(pcall(mine.gsub, s, p, r)))\n"
	"      check('gsub ' .. tag .. ' repl ' .. ri .. ' max 1', pack(pcall(orig.gsub, s, p, r, 1)),"
	" pack(pcall(mine.gsub, s, p, r, 1)))\n"
	"    end\n"
	"  end\n"
	"end\n"
	"return n, first\n";

static int budget_calls;
static int budget_limit;

/* stops a match after budget_limit checks */
static void budget(lua_State *L, const char *fn)
{
	if (++budget_calls >= budget_limit)
		luaL_error(L, "stopped in %s", fn);
}

/* a string table `mine` with the budgeted functions, LuaJIT's as `orig` */
static lua_State *new_state(void)
{
	lua_State *L = luaL_newstate();

	luaL_openlibs(L);
	lua_newtable(L);
	lua_getglobal(L, "string");
	lua_pushnil(L);
	while (lua_next(L, -2) != 0) {
		lua_pushvalue(L, -2);
		lua_insert(L, -2);
		lua_rawset(L, -5);
	}
	lua_pop(L, 1);
	policy_pattern_install(L, budget);
	lua_setglobal(L, "mine");
	return L;
}

static void test_same_answers(void)
{
	lua_State *L = new_state();

	budget_calls = 0;
	budget_limit = 1 << 30;
	if (!UNIT_CHECK(luaL_loadstring(L, DIFF_SCRIPT) == 0, "the comparison script compiles")) {
		printf("# %s\n", lua_tostring(L, -1));
		lua_close(L);
		return;
	}
	lua_getglobal(L, "string");
	lua_getglobal(L, "mine");
	if (!UNIT_CHECK(lua_pcall(L, 2, 2, 0) == 0, "the comparison script runs")) {
		printf("# %s\n", lua_tostring(L, -1));
		lua_close(L);
		return;
	}
	printf("# %d calls compared\n", (int)lua_tointeger(L, -2));
	UNIT_CHECK(lua_tointeger(L, -2) > 15000, "many calls compared");
	if (!UNIT_CHECK(lua_isnil(L, -1), "find, match, gmatch and gsub answer as LuaJIT's own, errors included"))
		printf("# first difference: %s\n", lua_tostring(L, -1));
	lua_close(L);
}

/* A pattern that backtracks for ever asks the budget, which can stop it; one that cannot backtrack does not. */
static void test_budget_stops(void)
{
	static const char *const calls[] = {
		"return mine.find(string.rep('a', 30), string.rep('a*', 25) .. 'b')",
		"return mine.match(string.rep('a', 30), string.rep('a-', 25) .. 'b')",
		"return mine.gsub(string.rep('a', 30), string.rep('a?', 30) .. string.rep('a', 30) .. 'b', 'x')",
		"for m in mine.gmatch(string.rep('a', 30), string.rep('a*', 25) .. 'b') do return m end",
		"return mine.find(string.rep('(', 5000), '%b()')",
	};
	static const char *const fns[] = { "string.find", "string.match", "string.gsub", "string.gmatch",
					   "string.find" };
	lua_State *L = new_state();
	char name[200];

	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		int rc;

		budget_calls = 0;
		budget_limit = 3;
		rc = luaL_dostring(L, calls[i]);
		snprintf(name, sizeof(name), "budget stops %s", calls[i]);
		UNIT_CHECK(rc != 0 && strstr(lua_tostring(L, -1), fns[i]) != NULL, name);
		snprintf(name, sizeof(name), "budget asked every %d steps (%s)", PATTERN_CHECK_STEPS, fns[i]);
		UNIT_EQ_INT(budget_calls, 3, name);
		lua_settop(L, 0);
	}
	/* no quantifier: LuaJIT's own function, no budget asked */
	budget_calls = 0;
	budget_limit = 1;
	UNIT_CHECK(luaL_dostring(L, "return mine.find(string.rep('a', 100000) .. 'b', 'ab')") == 0 &&
			   lua_tointeger(L, -2) == 100000,
		   "a pattern without quantifiers runs LuaJIT's own find");
	UNIT_EQ_INT(budget_calls, 0, "... without asking the budget");
	lua_settop(L, 0);
	/* deep nesting is refused, not a C stack overflow */
	UNIT_CHECK(luaL_dostring(L, "return mine.find('x', string.rep('x*', 5000))") != 0 &&
			   strstr(lua_tostring(L, -1), "pattern too complex") != NULL,
		   "a pattern nested too deep is an error");
	lua_close(L);
}

int main(void)
{
	test_same_answers();
	test_budget_stops();
	return unit_done();
}
