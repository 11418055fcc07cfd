-- Key archival (docs/key-recovery.md): the private keys of certificates whose profile says
-- archive_key, stored encrypted in the transaction that stores the certificate. A row holds
-- the subscriber key's PKCS#8 DER encrypted with AES-256-GCM under a fresh data key; the data
-- key is wrapped by hsmca-keyd under the AES key key_label, which never leaves the token. The
-- GCM associated data binds the ciphertext to its authority and serial, so a row moved to
-- another certificate does not decrypt. Nothing here is readable without keyd's unwrap.
CREATE TABLE key_archive (
	certificate_id bigint PRIMARY KEY REFERENCES certificates (id),
	key_label text NOT NULL CHECK (length(key_label) BETWEEN 1 AND 64),
	wrapped_key bytea NOT NULL CHECK (length(wrapped_key) BETWEEN 30 AND 600),
	nonce bytea NOT NULL CHECK (length(nonce) = 12),
	ciphertext bytea NOT NULL CHECK (length(ciphertext) BETWEEN 17 AND 16384),
	archived_at timestamptz NOT NULL DEFAULT now()
);
-- Archived keys are never rewritten or deleted.
CREATE TRIGGER key_archive_refuse_change BEFORE UPDATE OR DELETE ON key_archive
	FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

-- hsmca-cad archives (INSERT only: it never reads an archived key back). Recovery runs in
-- `hsmca` as hsmca_app (the owner's application role), which reads rows.
GRANT INSERT ON key_archive TO hsmca_cad;
GRANT SELECT ON key_archive TO hsmca_app;
