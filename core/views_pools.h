/* SHOW POOLS, DATABASES and USERS. */
#ifndef MB_VIEWS_POOLS_H
#define MB_VIEWS_POOLS_H

struct view;

struct view *views_pools(void);
struct view *views_databases(void);
struct view *views_users(void);

#endif
