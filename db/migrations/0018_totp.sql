-- hsmca schema: TOTP step-up (RFC 6238) for API principals (docs/mfa.md).
--
-- principal_totp holds one row per principal that ever enrolled. The secret is never stored in
-- the clear: secret_wrapped is keyd's AES-256-GCM blob (the wrap operation, under the AES key
-- named in wrap_key) of the principal's id and the secret together, so a blob copied to another
-- principal's row does not unwrap for it. state: pending (enrolled, not yet confirmed by a
-- first code), active, or disabled (secret_wrapped cleared). last_step is the last time step
-- whose code was accepted: a code is used once, and never one older than the last. failures
-- and failed_since count wrong codes in the current throttling window.
--
-- principal_recovery_codes: ten per active enrolment, each stored as a salted PBKDF2-SHA256
-- hash, usable once (used_at).
--
-- Nothing is ever deleted: disabling clears the wrapped secret and spends the codes. Runs as
-- the migration (owner) role inside the transaction `hsmca db migrate` opens.

CREATE TABLE principal_totp (
	principal_id integer PRIMARY KEY REFERENCES principals (id),
	state text NOT NULL CHECK (state IN ('pending', 'active', 'disabled')),
	wrap_key text CHECK (octet_length(wrap_key) BETWEEN 1 AND 64),
	secret_wrapped bytea CHECK (octet_length(secret_wrapped) BETWEEN 30 AND 541),
	last_step bigint NOT NULL DEFAULT -1,
	failures integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
	failed_since timestamptz,
	enrolled_at timestamptz NOT NULL DEFAULT now(),
	confirmed_at timestamptz,
	CHECK ((state = 'disabled') = (secret_wrapped IS NULL)),
	CHECK ((state = 'disabled') = (wrap_key IS NULL))
);

CREATE TABLE principal_recovery_codes (
	principal_id integer NOT NULL REFERENCES principals (id),
	n smallint NOT NULL CHECK (n BETWEEN 0 AND 9),
	salt bytea NOT NULL CHECK (octet_length(salt) = 16),
	hash bytea NOT NULL CHECK (octet_length(hash) = 32),
	made_at timestamptz NOT NULL DEFAULT now(),
	used_at timestamptz,
	PRIMARY KEY (principal_id, n)
);

-- hsmca-cad alone enrols, verifies and disables (db/db_mfa.c); no DELETE, no other daemon.
GRANT SELECT, INSERT, UPDATE ON principal_totp, principal_recovery_codes TO hsmca_cad;
