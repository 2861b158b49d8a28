/* Fuzz target: the startup packet (proto_parse_startup) and its `options` (params_parse_options). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "params.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct startup_packet sp;
	int r = proto_parse_startup(data, size, &sp);

	if (r > 0 && (size_t)r > size)
		abort();	/* consumed more than it was given */
	if (r <= 0)
		return 0;
	for (int i = 0; i < sp.n_params; i++) {
		const char *name = sp.params[i].name, *value = sp.params[i].value;
		/* the parser's strings point into the packet and end inside it */
		if ((const uint8_t *)name < data || (const uint8_t *)value + strlen(value) >= data + size)
			abort();
		if (strcmp(name, "options") == 0) {
			struct param_set set = { 0 };
			char err[256];
			if (params_parse_options(&set, value, err, sizeof(err))) {
				for (int k = 0; k < set.n; k++)
					if (!params_find(&set, set.items[k].name))
						abort();	/* a name just added is found */
			}
			params_clear(&set);
		}
	}
	return 0;
}
