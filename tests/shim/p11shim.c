/*
 * libp11shim.so: a PKCS#11 module that forwards to a real one and fails on demand.
 *
 * The first C_GetFunctionList dlopens the module named by HSMCA_SHIM_MODULE (default
 * SoftHSM) and returns a copy of its function list in which the calls below are wrapped.
 * While the file named by HSMCA_SHIM_FAULT_FILE exists, a wrapped call fails without
 * reaching the real module; every other call, and every call while there is no such file,
 * goes straight through. Both variables are read once, when the module is first loaded.
 *
 * The file's content picks the error:
 *   token-not-present  CKR_TOKEN_NOT_PRESENT for every wrapped call
 *   session-invalid    CKR_SESSION_HANDLE_INVALID for calls that take a session handle,
 *                      CKR_DEVICE_ERROR for the others
 *   anything else      CKR_DEVICE_ERROR
 *
 * Wrapped: C_GetSlotList, C_GetTokenInfo, C_OpenSession, C_GetSessionInfo, C_Login,
 * C_FindObjectsInit, C_SignInit, C_Sign, C_SignUpdate, C_SignFinal, C_GenerateKeyPair.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#define SHIM_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"

static pthread_once_t shim_once = PTHREAD_ONCE_INIT;
static CK_RV shim_load_rv = CKR_GENERAL_ERROR;
static CK_FUNCTION_LIST_PTR shim_real;
static CK_FUNCTION_LIST shim_list;
static char shim_fault_path[PATH_MAX]; /* empty: faults are off */

/* The error a wrapped call returns now, or CKR_OK to forward it. */
static CK_RV shim_fault(int has_session)
{
	static const char tnp[] = "token-not-present";
	static const char si[] = "session-invalid";
	char buf[32];
	ssize_t n;
	int fd;
	CK_RV rv = CKR_DEVICE_ERROR;

	if (shim_fault_path[0] == '\0' || access(shim_fault_path, F_OK) != 0)
		return CKR_OK;

	/* It existed a moment ago: fail even if it is gone or unreadable now. */
	fd = open(shim_fault_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto out;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n >= (ssize_t)(sizeof(tnp) - 1) && memcmp(buf, tnp, sizeof(tnp) - 1) == 0)
		rv = CKR_TOKEN_NOT_PRESENT;
	else if (has_session && n >= (ssize_t)(sizeof(si) - 1) &&
	         memcmp(buf, si, sizeof(si) - 1) == 0)
		rv = CKR_SESSION_HANDLE_INVALID;
out:
	return rv;
}

static CK_RV shim_GetSlotList(CK_BBOOL token_present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
	CK_RV rv = shim_fault(0);

	if (rv != CKR_OK)
		return rv;
	return shim_real->C_GetSlotList(token_present, list, count);
}

static CK_RV shim_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
	CK_RV rv = shim_fault(0);

	if (rv != CKR_OK)
		return rv;
	return shim_real->C_GetTokenInfo(slot, info);
}

static CK_RV shim_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
                              CK_SESSION_HANDLE_PTR session)
{
	CK_RV rv = shim_fault(0);

	if (rv != CKR_OK)
		return rv;
	return shim_real->C_OpenSession(slot, flags, app, notify, session);
}

static CK_RV shim_GetSessionInfo(CK_SESSION_HANDLE session, CK_SESSION_INFO_PTR info)
{
	CK_RV rv = shim_fault(1);

	if (rv != CKR_OK)
		return rv;
	return shim_real->C_GetSessionInfo(session, info);
}

static CK_RV shim_Login(CK_SESSION_HANDLE session, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin,
                        CK_ULONG pin_len)
{
	CK_RV rv = shim_fault(1);

	if (rv != CKR_OK)
		return rv;
	return shim_real->C_Login(session, user, pin, pin_len);
}

static CK_RV shim_FindObjectsInit(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR templ, CK_ULONG count)
{
	CK_RV rv = shim_fault(1);

	if (rv != CKR_OK)
		return rv;
	return shim_real->C_FindObjectsInit(session, templ, count);
}

static CK_RV shim_SignInit(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
	CK_RV rv = shim_fault(1);

	if (rv != CKR_OK)
		return rv;
	return shim_real->C_SignInit(session, mech, key);
}

static CK_RV shim_Sign(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len,
                       CK_BYTE_PTR sig, CK_ULONG_PTR sig_len)
{
	CK_RV rv = shim_fault(1);

	if (rv != CKR_OK)
		return rv;
	return shim_real->C_Sign(session, data, data_len, sig, sig_len);
}

static CK_RV shim_SignUpdate(CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len)
{
	CK_RV rv = shim_fault(1);

	if (rv != CKR_OK)
		return rv;
	return shim_real->C_SignUpdate(session, part, part_len);
}

static CK_RV shim_SignFinal(CK_SESSION_HANDLE session, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len)
{
	CK_RV rv = shim_fault(1);

	if (rv != CKR_OK)
		return rv;
	return shim_real->C_SignFinal(session, sig, sig_len);
}

static CK_RV shim_GenerateKeyPair(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech,
                                  CK_ATTRIBUTE_PTR pub_templ, CK_ULONG pub_count,
                                  CK_ATTRIBUTE_PTR priv_templ, CK_ULONG priv_count,
                                  CK_OBJECT_HANDLE_PTR pub, CK_OBJECT_HANDLE_PTR priv)
{
	CK_RV rv = shim_fault(1);

	if (rv != CKR_OK)
		return rv;
	return shim_real->C_GenerateKeyPair(session, mech, pub_templ, pub_count, priv_templ,
	                                    priv_count, pub, priv);
}

static void shim_load(void)
{
	const char *module = getenv("HSMCA_SHIM_MODULE");
	const char *fault = getenv("HSMCA_SHIM_FAULT_FILE");
	CK_C_GetFunctionList get_list;
	CK_RV rv;
	void *dl;

	if (module == NULL || module[0] == '\0')
		module = SHIM_DEFAULT_MODULE;
	if (fault != NULL && fault[0] != '\0') {
		if (strlen(fault) >= sizeof(shim_fault_path)) {
			fprintf(stderr, "p11shim: HSMCA_SHIM_FAULT_FILE is too long\n");
			shim_load_rv = CKR_GENERAL_ERROR;
			goto out;
		}
		strcpy(shim_fault_path, fault);
	}

	/* Never closed: the real module lives as long as the process. */
	dl = dlopen(module, RTLD_NOW | RTLD_LOCAL);
	if (dl == NULL) {
		fprintf(stderr, "p11shim: cannot load %s: %s\n", module, dlerror());
		shim_load_rv = CKR_GENERAL_ERROR;
		goto out;
	}
	*(void **)&get_list = dlsym(dl, "C_GetFunctionList");
	if (get_list == NULL) {
		fprintf(stderr, "p11shim: %s has no C_GetFunctionList\n", module);
		shim_load_rv = CKR_GENERAL_ERROR;
		goto out;
	}
	rv = get_list(&shim_real);
	if (rv != CKR_OK || shim_real == NULL) {
		fprintf(stderr, "p11shim: C_GetFunctionList of %s failed: 0x%lx\n", module,
		        (unsigned long)rv);
		shim_load_rv = rv != CKR_OK ? rv : CKR_GENERAL_ERROR;
		goto out;
	}

	shim_list = *shim_real;
	shim_list.C_GetFunctionList = C_GetFunctionList;
	shim_list.C_GetSlotList = shim_GetSlotList;
	shim_list.C_GetTokenInfo = shim_GetTokenInfo;
	shim_list.C_OpenSession = shim_OpenSession;
	shim_list.C_GetSessionInfo = shim_GetSessionInfo;
	shim_list.C_Login = shim_Login;
	shim_list.C_FindObjectsInit = shim_FindObjectsInit;
	shim_list.C_SignInit = shim_SignInit;
	shim_list.C_Sign = shim_Sign;
	shim_list.C_SignUpdate = shim_SignUpdate;
	shim_list.C_SignFinal = shim_SignFinal;
	shim_list.C_GenerateKeyPair = shim_GenerateKeyPair;
	shim_load_rv = CKR_OK;
out:
	return;
}

__attribute__((visibility("default"))) CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	if (list == NULL)
		return CKR_ARGUMENTS_BAD;
	if (pthread_once(&shim_once, shim_load) != 0)
		return CKR_GENERAL_ERROR;
	if (shim_load_rv != CKR_OK)
		return shim_load_rv;
	*list = &shim_list;
	return CKR_OK;
}
