/* The CRLReason table (crlreason.h). */
#include <stddef.h>
#include <string.h>

#include "crlreason.h"

static const char *const names[CRLREASON_MAX + 1] = {
    "unspecified",   "keyCompromise",        "cACompromise",    "affiliationChanged",
    "superseded",    "cessationOfOperation", "certificateHold", NULL,
    "removeFromCRL", "privilegeWithdrawn",   "aACompromise",
};

const char *crlreason_name(int code)
{
	return code >= 0 && code <= CRLREASON_MAX ? names[code] : NULL;
}

int crlreason_code(const char *name)
{
	for (int i = 0; name && i <= CRLREASON_MAX; i++)
		if (names[i] && !strcmp(name, names[i]))
			return i;
	return -1;
}

int crlreason_revocable(int code)
{
	return crlreason_name(code) && code != CRLREASON_CERTIFICATE_HOLD &&
	       code != CRLREASON_REMOVE_FROM_CRL;
}
