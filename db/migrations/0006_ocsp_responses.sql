-- hsmca schema: hsmca-ocspd's shared copy of its pre-signed OCSP responses, so that a responder
-- that starts (or a second one beside it) begins warm instead of signing one response per
-- certificate first. A row is only a cache: it is used when the certificate's status, its
-- revocation time and reason and the signer still match what the row was signed for, and it
-- is not close to its nextUpdate. docs/ocspd.md describes how hsmca-ocspd uses it.
--
-- Runs as the migration (owner) role inside one transaction that `hsmca db migrate` opens;
-- never BEGIN or COMMIT here.

CREATE TABLE ocsp_responses (
	authority_id integer NOT NULL REFERENCES authorities (id),
	serial bytea NOT NULL
		CHECK (octet_length(serial) BETWEEN 1 AND 20 AND get_byte(serial, 0) <> 0),
	-- the hash algorithm of the response's CertID (clients match it against their request's)
	cert_id_hash text NOT NULL CHECK (cert_id_hash IN ('sha1', 'sha256')),
	-- what the response says, to compare with the certificates table
	cert_status text NOT NULL CHECK (cert_status IN ('issued', 'revoked', 'hold')),
	revoked_epoch bigint, -- revoked_at in whole seconds, NULL when not revoked or held
	revocation_reason smallint,
	signer_key_label text NOT NULL CHECK (octet_length(signer_key_label) BETWEEN 1 AND 255),
	this_update timestamptz NOT NULL,
	next_update timestamptz NOT NULL,
	der bytea NOT NULL CHECK (octet_length(der) BETWEEN 1 AND 65536),
	PRIMARY KEY (authority_id, serial, cert_id_hash),
	CHECK (this_update < next_update)
);

REVOKE ALL ON ocsp_responses FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON ocsp_responses TO hsmca_app;
