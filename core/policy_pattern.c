/* Lua pattern functions (string.find, match, gmatch, gsub) whose work a policy budget can stop. */
#include "policy_pattern.h"

#include <ctype.h>
#include <stdbool.h>
#include <lauxlib.h>
#include <stddef.h>
#include <string.h>

/*
 * LuaJIT's own matcher is C code that backtracks without limit: a pattern
 * such as string.rep("a*", 25) .. "b" on 30 "a"s takes longer than the age of
 * the universe, and no count hook runs inside it. This matcher follows the
 * same rules (Lua 5.1 patterns, with LuaJIT's %g and lengths instead of NUL
 * ends) and counts its steps: every PATTERN_CHECK_STEPS it asks the budget.
 */

#define L_ESC '%'
#define MAX_CAPTURES 32 /* LUA_MAXCAPTURES */
#define MAX_DEPTH 2000 /* nested items (quantifiers, captures): LuaJIT has no limit but the C stack */
#define CAP_UNFINISHED (-1)
#define CAP_POSITION (-2)

static pattern_budget_fn budget_fn;

struct match_state {
	const char *src_init, *src_end;
	const char *p_end;
	lua_State *L;
	const char *fn;
	int level;
	int depth;
	unsigned steps;
	struct {
		const char *init;
		ptrdiff_t len;
	} capture[MAX_CAPTURES];
};

static inline void step(struct match_state *ms)
{
	if (++ms->steps % PATTERN_CHECK_STEPS == 0 && budget_fn != NULL)
		budget_fn(ms->L, ms->fn);
}

static int check_capture(struct match_state *ms, int l)
{
	l -= '1';
	if (l < 0 || l >= ms->level || ms->capture[l].len == CAP_UNFINISHED)
		return luaL_error(ms->L, "invalid capture index");
	return l;
}

static int capture_to_close(struct match_state *ms)
{
	int level = ms->level;

	for (level--; level >= 0; level--)
		if (ms->capture[level].len == CAP_UNFINISHED)
			return level;
	return luaL_error(ms->L, "invalid pattern capture");
}

static const char *class_end(struct match_state *ms, const char *p)
{
	char c = *p++;

	if (c == L_ESC) {
		if (p >= ms->p_end)
			luaL_error(ms->L, "malformed pattern (ends with '%%')");
		return p + 1;
	}
	if (c == '[') {
		if (p < ms->p_end && *p == '^')
			p++;
		do {
			if (p >= ms->p_end)
				luaL_error(ms->L, "malformed pattern (missing ']')");
			c = *p++;
			if (c == L_ESC && p < ms->p_end)
				p++;
		} while (p >= ms->p_end || *p != ']');
		return p + 1;
	}
	return p;
}

static int match_class(int c, int cl)
{
	int res;

	switch (tolower(cl)) {
	case 'a': res = isalpha(c); break;
	case 'c': res = iscntrl(c); break;
	case 'd': res = isdigit(c); break;
	case 'g': res = isgraph(c); break;
	case 'l': res = islower(c); break;
	case 'p': res = ispunct(c); break;
	case 's': res = isspace(c); break;
	case 'u': res = isupper(c); break;
	case 'w': res = isalnum(c); break;
	case 'x': res = isxdigit(c); break;
	case 'z': res = (c == 0); break;
	default: return cl == c;
	}
	if (isupper(cl))
		res = !res;
	return res;
}

/* p at '[', ec at the closing ']' */
static int match_bracket_class(int c, const char *p, const char *ec)
{
	int sig = 1;

	if (*(p + 1) == '^') {
		sig = 0;
		p++;
	}
	while (++p < ec) {
		if (*p == L_ESC) {
			p++;
			if (match_class(c, (unsigned char)*p))
				return sig;
		} else if (*(p + 1) == '-' && p + 2 < ec) {
			p += 2;
			if ((unsigned char)*(p - 2) <= c && c <= (unsigned char)*p)
				return sig;
		} else if ((unsigned char)*p == c) {
			return sig;
		}
	}
	return !sig;
}

static int single_match(int c, const char *p, const char *ep)
{
	switch (*p) {
	case '.': return 1;
	case L_ESC: return match_class(c, (unsigned char)*(p + 1));
	case '[': return match_bracket_class(c, p, ep - 1);
	default: return (unsigned char)*p == c;
	}
}

static const char *match(struct match_state *ms, const char *s, const char *p);

static const char *match_balance(struct match_state *ms, const char *s, const char *p)
{
	int b, e, cont = 1;

	if (p + 1 >= ms->p_end)
		luaL_error(ms->L, "unbalanced pattern");
	if (s >= ms->src_end || *s != *p)
		return NULL;
	b = *p;
	e = *(p + 1);
	while (++s < ms->src_end) {
		step(ms);
		if (*s == e) {
			if (--cont == 0)
				return s + 1;
		} else if (*s == b) {
			cont++;
		}
	}
	return NULL;
}

static const char *max_expand(struct match_state *ms, const char *s, const char *p, const char *ep)
{
	ptrdiff_t i = 0;

	while (s + i < ms->src_end && single_match((unsigned char)*(s + i), p, ep)) {
		step(ms);
		i++;
	}
	while (i >= 0) {
		const char *res = match(ms, s + i, ep + 1);
		if (res)
			return res;
		i--;
	}
	return NULL;
}

static const char *min_expand(struct match_state *ms, const char *s, const char *p, const char *ep)
{
	for (;;) {
		const char *res = match(ms, s, ep + 1);
		if (res != NULL)
			return res;
		if (s < ms->src_end && single_match((unsigned char)*s, p, ep))
			s++;
		else
			return NULL;
	}
}

static const char *start_capture(struct match_state *ms, const char *s, const char *p, int what)
{
	const char *res;
	int level = ms->level;

	if (level >= MAX_CAPTURES)
		luaL_error(ms->L, "too many captures");
	ms->capture[level].init = s;
	ms->capture[level].len = what;
	ms->level = level + 1;
	if ((res = match(ms, s, p)) == NULL)
		ms->level--;
	return res;
}

static const char *end_capture(struct match_state *ms, const char *s, const char *p)
{
	int l = capture_to_close(ms);
	const char *res;

	ms->capture[l].len = s - ms->capture[l].init;
	if ((res = match(ms, s, p)) == NULL)
		ms->capture[l].len = CAP_UNFINISHED;
	return res;
}

static const char *match_capture(struct match_state *ms, const char *s, int l)
{
	size_t len;

	l = check_capture(ms, l);
	len = (size_t)ms->capture[l].len;
	if ((size_t)(ms->src_end - s) >= len && memcmp(ms->capture[l].init, s, len) == 0)
		return s + len;
	return NULL;
}

static const char *match(struct match_state *ms, const char *s, const char *p)
{
	const char *res = NULL;

	if (ms->depth++ >= MAX_DEPTH)
		luaL_error(ms->L, "pattern too complex");
init:
	step(ms);
	if (p >= ms->p_end) {
		res = s;
		goto out;
	}
	switch (*p) {
	case '(':
		if (p + 1 < ms->p_end && *(p + 1) == ')')
			res = start_capture(ms, s, p + 2, CAP_POSITION);
		else
			res = start_capture(ms, s, p + 1, CAP_UNFINISHED);
		goto out;
	case ')':
		res = end_capture(ms, s, p + 1);
		goto out;
	case '$':
		if (p + 1 == ms->p_end) {
			res = s == ms->src_end ? s : NULL;
			goto out;
		}
		break;
	case L_ESC:
		if (p + 1 < ms->p_end && *(p + 1) == 'b') {
			s = match_balance(ms, s, p + 2);
			if (s == NULL)
				goto out;
			p += 4;
			goto init;
		}
		if (p + 1 < ms->p_end && *(p + 1) == 'f') {
			const char *ep;
			int prev, cur;

			p += 2;
			if (p >= ms->p_end || *p != '[')
				luaL_error(ms->L, "missing '[' after '%%f' in pattern");
			ep = class_end(ms, p);
			prev = s == ms->src_init ? 0 : (unsigned char)*(s - 1);
			cur = s < ms->src_end ? (unsigned char)*s : 0;
			if (match_bracket_class(prev, p, ep - 1) || !match_bracket_class(cur, p, ep - 1))
				goto out;
			p = ep;
			goto init;
		}
		if (p + 1 < ms->p_end && isdigit((unsigned char)*(p + 1))) {
			s = match_capture(ms, s, (unsigned char)*(p + 1));
			if (s == NULL)
				goto out;
			p += 2;
			goto init;
		}
		break;
	default:
		break;
	}
	{
		const char *ep = class_end(ms, p);
		int m = s < ms->src_end && single_match((unsigned char)*s, p, ep);
		char q = ep < ms->p_end ? *ep : 0;

		switch (q) {
		case '?':
			if (m && (res = match(ms, s + 1, ep + 1)) != NULL)
				goto out;
			p = ep + 1;
			goto init;
		case '*':
			res = max_expand(ms, s, p, ep);
			goto out;
		case '+':
			res = m ? max_expand(ms, s + 1, p, ep) : NULL;
			goto out;
		case '-':
			res = min_expand(ms, s, p, ep);
			goto out;
		default:
			if (!m)
				goto out;
			s++;
			p = ep;
			goto init;
		}
	}
out:
	ms->depth--;
	return res;
}

static void push_one_capture(struct match_state *ms, int i, const char *s, const char *e)
{
	if (i >= ms->level) {
		if (i == 0)
			lua_pushlstring(ms->L, s, (size_t)(e - s)); /* the whole match */
		else
			luaL_error(ms->L, "invalid capture index");
	} else {
		ptrdiff_t l = ms->capture[i].len;
		if (l == CAP_UNFINISHED)
			luaL_error(ms->L, "unfinished capture");
		if (l == CAP_POSITION)
			lua_pushinteger(ms->L, ms->capture[i].init - ms->src_init + 1);
		else
			lua_pushlstring(ms->L, ms->capture[i].init, (size_t)l);
	}
}

static int push_captures(struct match_state *ms, const char *s, const char *e)
{
	int n = (ms->level == 0 && s) ? 1 : ms->level;

	luaL_checkstack(ms->L, n, "too many captures");
	for (int i = 0; i < n; i++)
		push_one_capture(ms, i, s, e);
	return n;
}

static void ms_init(struct match_state *ms, lua_State *L, const char *fn, const char *s, size_t ls,
		    const char *p, size_t lp)
{
	ms->L = L;
	ms->fn = fn;
	ms->src_init = s;
	ms->src_end = s + ls;
	ms->p_end = p + lp;
	ms->level = 0;
	ms->depth = 0;
	ms->steps = 0;
}

/* Can the pattern backtrack? Without a quantifier or %b every start position costs at most its length. */
static bool may_backtrack(const char *p, size_t lp)
{
	for (size_t i = 0; i < lp; i++)
		if (p[i] == '*' || p[i] == '+' || p[i] == '-' || p[i] == '?' ||
		    (p[i] == L_ESC && i + 1 < lp && p[i + 1] == 'b'))
			return true;
	return false;
}

/* The original function (upvalue 1) with the arguments as they came. */
static int call_original(lua_State *L)
{
	int n = lua_gettop(L);

	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, n, LUA_MULTRET);
	return lua_gettop(L);
}

static ptrdiff_t start_position(lua_State *L, int arg, size_t len)
{
	ptrdiff_t init = (ptrdiff_t)luaL_optinteger(L, arg, 1);

	if (init < 0)
		init += (ptrdiff_t)len + 1;
	init--;
	if (init < 0)
		init = 0;
	else if ((size_t)init > len)
		init = (ptrdiff_t)len;
	return init;
}

static int find_aux(lua_State *L, bool find)
{
	size_t ls, lp;
	const char *s = luaL_checklstring(L, 1, &ls);
	const char *p = luaL_checklstring(L, 2, &lp);
	const char *fn = find ? "string.find" : "string.match";
	struct match_state ms;
	ptrdiff_t init;
	const char *s1;
	bool anchor;

	if ((find && lua_toboolean(L, 4)) || !may_backtrack(p, lp))
		return call_original(L);
	init = start_position(L, 3, ls);
	anchor = lp > 0 && *p == '^';
	if (anchor) {
		p++;
		lp--;
	}
	ms_init(&ms, L, fn, s, ls, p, lp);
	s1 = s + init;
	do {
		const char *res;

		ms.level = 0;
		ms.depth = 0;
		if ((res = match(&ms, s1, p)) != NULL) {
			if (find) {
				lua_pushinteger(L, s1 - s + 1);
				lua_pushinteger(L, res - s);
				return push_captures(&ms, NULL, 0) + 2;
			}
			return push_captures(&ms, s1, res);
		}
	} while (s1++ < ms.src_end && !anchor);
	lua_pushnil(L);
	return 1;
}

static int str_find(lua_State *L)
{
	return find_aux(L, true);
}

static int str_match(lua_State *L)
{
	return find_aux(L, false);
}

/* upvalues: subject, pattern, next position */
static int gmatch_aux(lua_State *L)
{
	struct match_state ms;
	size_t ls, lp;
	const char *s = lua_tolstring(L, lua_upvalueindex(1), &ls);
	const char *p = lua_tolstring(L, lua_upvalueindex(2), &lp);

	ms_init(&ms, L, "string.gmatch", s, ls, p, lp);
	for (const char *src = s + (size_t)lua_tointeger(L, lua_upvalueindex(3)); src <= ms.src_end; src++) {
		const char *e;

		ms.level = 0;
		ms.depth = 0;
		if ((e = match(&ms, src, p)) != NULL) {
			lua_Integer next = e - s;
			if (e == src)
				next++; /* an empty match: go on at least one position */
			lua_pushinteger(L, next);
			lua_replace(L, lua_upvalueindex(3));
			return push_captures(&ms, src, e);
		}
	}
	return 0;
}

static int str_gmatch(lua_State *L)
{
	size_t lp;
	const char *p;

	luaL_checkstring(L, 1);
	p = luaL_checklstring(L, 2, &lp);
	if (!may_backtrack(p, lp))
		return call_original(L);
	lua_settop(L, 2);
	lua_pushinteger(L, 0);
	lua_pushcclosure(L, gmatch_aux, 3);
	return 1;
}

static void add_s(struct match_state *ms, luaL_Buffer *b, const char *s, const char *e)
{
	size_t l;
	const char *news = lua_tolstring(ms->L, 3, &l);

	for (size_t i = 0; i < l; i++) {
		if (news[i] != L_ESC) {
			luaL_addchar(b, news[i]);
		} else {
			i++; /* the escape */
			if (i >= l) {
				luaL_addchar(b, '\0'); /* a '%' at the end: LuaJIT adds the string's terminator */
			} else if (!isdigit((unsigned char)news[i])) {
				luaL_addchar(b, news[i]);
			} else if (news[i] == '0') {
				luaL_addlstring(b, s, (size_t)(e - s));
			} else {
				push_one_capture(ms, news[i] - '1', s, e);
				luaL_addvalue(b);
			}
		}
	}
}

static void add_value(struct match_state *ms, luaL_Buffer *b, const char *s, const char *e)
{
	lua_State *L = ms->L;

	switch (lua_type(L, 3)) {
	case LUA_TNUMBER:
	case LUA_TSTRING:
		add_s(ms, b, s, e);
		return;
	case LUA_TFUNCTION: {
		int n;
		lua_pushvalue(L, 3);
		n = push_captures(ms, s, e);
		lua_call(L, n, 1);
		break;
	}
	default: /* a table */
		push_one_capture(ms, 0, s, e);
		lua_gettable(L, 3);
		break;
	}
	if (!lua_toboolean(L, -1)) {
		lua_pop(L, 1);
		lua_pushlstring(L, s, (size_t)(e - s)); /* keep the original text */
	} else if (!lua_isstring(L, -1)) {
		luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
	}
	luaL_addvalue(b);
}

static int str_gsub(lua_State *L)
{
	size_t srcl, lp;
	const char *src = luaL_checklstring(L, 1, &srcl);
	const char *p = luaL_checklstring(L, 2, &lp);
	int tr = lua_type(L, 3);
	lua_Integer max_s;
	lua_Integer n = 0;
	bool anchor;
	struct match_state ms;
	luaL_Buffer b;

	luaL_argcheck(L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION || tr == LUA_TTABLE, 3,
		      "string/function/table expected");
	if (!may_backtrack(p, lp))
		return call_original(L);
	max_s = luaL_optinteger(L, 4, (lua_Integer)srcl + 1);
	anchor = lp > 0 && *p == '^';
	if (anchor) {
		p++;
		lp--;
	}
	luaL_buffinit(L, &b);
	ms_init(&ms, L, "string.gsub", src, srcl, p, lp);
	while (n < max_s) {
		const char *e;

		ms.level = 0;
		ms.depth = 0;
		e = match(&ms, src, p);
		if (e) {
			n++;
			add_value(&ms, &b, src, e);
		}
		if (e && e > src)
			src = e;
		else if (src < ms.src_end)
			luaL_addchar(&b, *src++);
		else
			break;
		if (anchor)
			break;
	}
	luaL_addlstring(&b, src, (size_t)(ms.src_end - src));
	luaL_pushresult(&b);
	lua_pushinteger(L, n);
	return 2;
}

void policy_pattern_install(lua_State *L, pattern_budget_fn budget)
{
	static const struct {
		const char *name;
		lua_CFunction fn;
	} fns[] = { { "find", str_find }, { "match", str_match }, { "gmatch", str_gmatch }, { "gsub", str_gsub } };

	budget_fn = budget;
	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		lua_getfield(L, -1, fns[i].name);
		lua_pushcclosure(L, fns[i].fn, 1); /* the original as upvalue 1 */
		lua_setfield(L, -2, fns[i].name);
	}
}
