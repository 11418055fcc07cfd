-- Key recovery requests (docs/key-recovery.md): hsmca-cad refuses a key.recovery request for a
-- certificate with no archived key, so it may learn whether a row exists. It sees the column
-- certificate_id only: the wrapped key, nonce and ciphertext stay unreadable to it.
GRANT SELECT (certificate_id) ON key_archive TO hsmca_cad;
