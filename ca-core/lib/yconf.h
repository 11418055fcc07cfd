/*
 * Strict reading of YAML configuration files (libyaml's document API).
 * Every error names the file, the line and the field; unknown and duplicate
 * keys are errors. Files are bounded in size and must hold one document.
 */
#ifndef HSMCA_YCONF_H
#define HSMCA_YCONF_H

#include <stddef.h>
#include <yaml.h>

#define YCONF_MAX_BYTES (1u << 20)

struct yconf {
	yaml_document_t doc;
	int loaded;
	char name[256];
	char err[512];
};

/* 0 on success; -1 with y->err set. */
int yconf_load_file(struct yconf *y, const char *path);
int yconf_load_mem(struct yconf *y, const char *name, const void *buf, size_t len);
void yconf_free(struct yconf *y);

yaml_node_t *yconf_root(struct yconf *y);
/* Formats "name:line: what: message" into y->err and returns -1. */
int yconf_fail(struct yconf *y, const yaml_node_t *n, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Map must be a mapping whose keys are all scalars in allowed (NULL-terminated),
 * each at most once. */
int yconf_check_map(struct yconf *y, yaml_node_t *map, const char *what,
                    const char *const *allowed);
/* The value for key in a mapping, or NULL. */
yaml_node_t *yconf_get(struct yconf *y, yaml_node_t *map, const char *key);
/* Scalar accessors: -1 (with y->err) if n is not a fitting scalar. */
int yconf_str(struct yconf *y, yaml_node_t *n, const char *what, char *out, size_t outsz);
int yconf_long(struct yconf *y, yaml_node_t *n, const char *what, long min, long max, long *out);
/* Like yconf_long but base 8 for strings such as "0660". */
int yconf_octal(struct yconf *y, yaml_node_t *n, const char *what, long max, long *out);
int yconf_bool(struct yconf *y, yaml_node_t *n, const char *what, int *out);
/* Fields of a mapping by key: a required non-empty string, and optional
 * values that leave *out untouched when the key is absent. */
int yconf_req_str(struct yconf *y, yaml_node_t *map, const char *key, char *out, size_t outsz);
int yconf_opt_str(struct yconf *y, yaml_node_t *map, const char *key, char *out, size_t outsz);
int yconf_opt_long(struct yconf *y, yaml_node_t *map, const char *key, long min, long max,
		   long *out);
int yconf_opt_bool(struct yconf *y, yaml_node_t *map, const char *key, int *out);
/* Sequence access: count, and item i. */
size_t yconf_seq_len(yaml_node_t *n);
yaml_node_t *yconf_seq_item(struct yconf *y, yaml_node_t *n, size_t i);
int yconf_is_seq(yaml_node_t *n);
int yconf_is_map(yaml_node_t *n);
int yconf_line(const yaml_node_t *n);
/* Node n as JSON text into out (cap bytes with the NUL): mappings become objects, sequences
 * arrays; a plain scalar that reads as an integer, true, false or null (or ~) becomes that
 * literal, any other scalar a string. Nested at most 8 deep. Its length, or -1 with y->err
 * (too deep, too long, a key that is not a scalar). */
int yconf_to_json(struct yconf *y, yaml_node_t *n, char *out, size_t cap);

#endif
