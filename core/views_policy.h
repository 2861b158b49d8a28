/* SHOW POLICIES, TENANTS and POLICY_ERRORS: moonbouncer's own views of its policies and tenants. */
#ifndef MB_VIEWS_POLICY_H
#define MB_VIEWS_POLICY_H

struct view;

struct view *views_policies(void);
struct view *views_tenants(void);
struct view *views_policy_errors(void);

#endif
