#!/usr/bin/env bash
# Any PKCS#11 module's token for keyd's test suites: the bring-up of a new (hardware) token
# (docs/hsm-compatibility.md, "Bringing up a hardware HSM"). It describes, from the
# environment, a token that exists already, and wipes it for every test case:
#   HSMCA_TOKEN_MODULE       the module (required)
#   HSMCA_TOKEN_LABEL        the token's label (required; at most 32 characters)
#   HSMCA_TOKEN_SO_PIN_FILE  a file holding the token's SO PIN (required)
#   HSMCA_TOKEN_WIPE=yes     required: start re-initialises the token (C_InitToken), which
#                            destroys every object on it. Use a test token or partition only.
#   HSMCA_TOKEN_ENV          NAME=value the module needs, space-separated (optional)
#   HSMCA_TOKEN_KEYD         keyd settings the token needs, separated by ";" (optional), e.g.
#                            "module_ipc: true;rsa_sign_by_decrypt: true"
#   module.sh start DIR   re-initialise the token with its label and SO PIN, set a new random
#                         user PIN (8 hexadecimal characters), write DIR/token.conf;
#   module.sh stop DIR    nothing: the token stays, with what the last test left on it.
# Exits 77 (meson's skip) with the reason on stderr when a variable is missing or pkcs11-tool
# (package opensc) is not installed.
set -euo pipefail

# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
token_args module "$@"
stop_all() {
	: # nothing was started; the token stays
}
stop_if_asked

module=${HSMCA_TOKEN_MODULE:-}
label=${HSMCA_TOKEN_LABEL:-}
sopin_file=${HSMCA_TOKEN_SO_PIN_FILE:-}
[[ -n "$module" && -n "$label" && -n "$sopin_file" ]] ||
	skip "set HSMCA_TOKEN_MODULE, HSMCA_TOKEN_LABEL and HSMCA_TOKEN_SO_PIN_FILE"
[[ "${HSMCA_TOKEN_WIPE:-}" == yes ]] ||
	skip "set HSMCA_TOKEN_WIPE=yes: every test case re-initialises token \"$label\""
[[ -r "$module" ]] || skip "$module is not readable"
[[ -r "$sopin_file" ]] || skip "$sopin_file is not readable"
command -v pkcs11-tool >/dev/null || skip "pkcs11-tool is not installed (package opensc)"
for kv in ${HSMCA_TOKEN_ENV:-}; do
	export "${kv?}"
done

sopin=$(tr -d '\n' <"$sopin_file")
pin=$(random_hex 4)
p11() {
	pkcs11-tool --module "$module" --token-label "$label" "$@" >>"$dir/pkcs11-tool.log" 2>&1
}
p11 --init-token --label "$label" --so-pin "$sopin" ||
	{ echo "C_InitToken on \"$label\" failed (see $dir/pkcs11-tool.log)" >&2; exit 1; }
p11 --login --login-type so --so-pin "$sopin" --init-pin --new-pin "$pin" ||
	{ echo "C_InitPIN on \"$label\" failed (see $dir/pkcs11-tool.log)" >&2; exit 1; }

write_pin "$pin"
{
	echo "module=$module"
	echo "label=$label"
	echo "pin_file=$dir/pin"
	for kv in ${HSMCA_TOKEN_ENV:-}; do
		echo "env=$kv"
	done
	IFS=';' read -ra lines <<<"${HSMCA_TOKEN_KEYD:-}"
	for l in "${lines[@]}"; do
		[[ -z "$l" ]] || echo "keyd=$l"
	done
} >"$dir/token.conf"
echo "token \"$label\" of $module re-initialised for the test in $dir"
