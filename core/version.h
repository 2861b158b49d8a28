/* The release, as --version, SHOW VERSION and /metrics tell it. */
#ifndef MB_VERSION_H
#define MB_VERSION_H

#define MOONBOUNCER_VERSION "0.1.0"

#endif
