-- hsmca schema, version 3: settings changed at run time through the API. Profiles switched off
-- by an admin (a profile with no row is enabled: the profiles themselves are configuration),
-- and each authority's CRL and OCSP settings, kept by officers for crld and ocspd to read (an
-- authority with no row uses the defaults of docs/api.md). Who changed what is in the audit
-- log; the columns below only say who changed a row last.
--
-- Runs as the migration (owner) role inside one transaction that `hsmca db migrate` opens;
-- never BEGIN or COMMIT here.

CREATE TABLE profile_settings (
	profile text PRIMARY KEY CHECK (octet_length(profile) BETWEEN 1 AND 64),
	enabled boolean NOT NULL,
	updated_by text NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE authority_settings (
	authority_id integer PRIMARY KEY REFERENCES authorities (id),
	crl_next_update_seconds integer NOT NULL
		CHECK (crl_next_update_seconds BETWEEN 300 AND 7776000),
	delta_crl_seconds integer NOT NULL
		CHECK (delta_crl_seconds = 0 OR (delta_crl_seconds >= 60 AND
						 delta_crl_seconds < crl_next_update_seconds)),
	ocsp_validity_seconds integer NOT NULL
		CHECK (ocsp_validity_seconds BETWEEN 60 AND 604800),
	ocsp_nonce_rate_limit integer NOT NULL
		CHECK (ocsp_nonce_rate_limit BETWEEN 0 AND 100000),
	ocsp_signer_key_label text NOT NULL DEFAULT ''
		CHECK (ocsp_signer_key_label ~ '^[A-Za-z0-9._-]{0,64}$'),
	updated_by text NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now()
);

REVOKE ALL ON profile_settings, authority_settings FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON profile_settings, authority_settings TO hsmca_app;
