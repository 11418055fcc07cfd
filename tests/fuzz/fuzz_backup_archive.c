/* Fuzz what hsmca restore parses from an archive: the plaintext header, the container's entry
 * headers and the manifest (after the tag checked, but a backup client can make any archive).
 * The first byte picks the parser. A manifest that parses must print and parse back the same. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512], name[BACKUP_NAME_MAX + 1];
	struct backup_header h;
	struct backup_manifest m, m2;
	uint64_t n;

	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		if (backup_header_parse(data + 1, size - 1, &h, err, sizeof(err)) == 0) {
			uint8_t out[8 + 2 + KEYD_LABEL_MAX + 2 + KEYD_WRAP_BLOB_MAX + 12];
			if (backup_header_write(&h, out, sizeof(out)) != h.len ||
			    memcmp(out, data + 1, h.len) != 0)
				abort();
		}
		break;
	case 1: {
		FILE *f = fmemopen((void *)(data + 1), size - 1, "rb");
		if (!f)
			return 0;
		for (int i = 0; i < 64; i++) {
			if (backup_entry_read(f, name, sizeof(name), &n, err, sizeof(err)) != 0)
				break;
			if (n > size || fseek(f, (long)n, SEEK_CUR) != 0)
				break;
		}
		fclose(f);
		break;
	}
	default:
		if (backup_manifest_parse((const char *)data + 1, size - 1, &m, err, sizeof(err)) ==
		    0) {
			size_t len;
			char *text = backup_manifest_text(&m, &len);
			if (!text || backup_manifest_parse(text, len, &m2, err, sizeof(err)) != 0 ||
			    m2.nfiles != m.nfiles || m2.schema_version != m.schema_version)
				abort();
			for (size_t i = 0; i < m.nfiles; i++)
				if (strcmp(m.files[i].name, m2.files[i].name) ||
				    strcmp(m.files[i].path, m2.files[i].path) ||
				    m.files[i].size != m2.files[i].size ||
				    memcmp(m.files[i].sha256, m2.files[i].sha256, 32))
					abort();
			free(text);
			backup_manifest_free(&m2);
			backup_manifest_free(&m);
		}
	}
	return 0;
}
