/* The lua/ tree compiled into the binary (array generated at build time):
** each module as luac5.4 bytecode with its debug info, whose chunk name is
** the one below. Load it with mode "b". */
#ifndef GHL_EMBED_H
#define GHL_EMBED_H

#include <stddef.h>

struct ghl_embedded {
  const char *name;          /* module name, e.g. "ghl.sim" */
  const char *chunkname;     /* "@lua/ghl/sim/init.lua" */
  const unsigned char *data; /* bytecode */
  size_t size;
};

/* Ends with a row whose name is NULL. */
extern const struct ghl_embedded ghl_embedded_modules[];

#endif
