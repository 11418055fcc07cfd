/* The console's static files, compiled in from ca-core/cad/console/ by console/embed.py. */
#ifndef HSMCA_CAD_CONSOLE_ASSETS_H
#define HSMCA_CAD_CONSOLE_ASSETS_H

#include <stddef.h>

struct cad_asset {
	const char *name;         /* the file's name, as under /console/ */
	const char *content_type; /* by extension */
	const char *etag;         /* quoted: "<128 bits of its SHA-256 in hex>" */
	const unsigned char *data;
	size_t len;
};

extern const struct cad_asset cad_console_assets[];
extern const size_t cad_console_n_assets;

#endif
