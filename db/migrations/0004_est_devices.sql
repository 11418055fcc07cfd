-- hsmca schema: device enrolment over EST (RFC 7030). Provisioning tokens (stored hashed, like
-- API tokens) that officers hand to device images, the devices enrolled with them (one
-- identity each: the subject CN, or the first SAN when there is none), and which certificates
-- belong to which device. docs/est.md describes the flow.
--
-- Runs as the migration (owner) role inside one transaction that `hsmca db migrate` opens;
-- never BEGIN or COMMIT here.

CREATE TABLE provisioning_tokens (
	id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	-- Only SHA-256 of the (high-entropy) token is stored; the token is shown once.
	token_sha256 bytea NOT NULL CONSTRAINT provisioning_tokens_hash_unique UNIQUE
		CHECK (octet_length(token_sha256) = 32),
	name text NOT NULL CHECK (octet_length(name) BETWEEN 1 AND 128),
	profile text NOT NULL CHECK (octet_length(profile) BETWEEN 1 AND 64),
	max_uses integer NOT NULL CHECK (max_uses BETWEEN 1 AND 1000000),
	uses integer NOT NULL DEFAULT 0,
	-- Device identifiers (exact, or shell patterns) the CSR's CN or a SAN must match;
	-- empty: any identity the profile allows.
	allowlist text[] NOT NULL DEFAULT '{}' CHECK (cardinality(allowlist) <= 1000),
	-- May enrol an identity that already has a valid certificate (which is then revoked as
	-- superseded).
	allow_replace boolean NOT NULL DEFAULT false,
	expires_at timestamptz NOT NULL,
	revoked_at timestamptz,
	created_by text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	last_used_at timestamptz,
	CONSTRAINT provisioning_tokens_uses CHECK (uses BETWEEN 0 AND max_uses)
);

CREATE TABLE devices (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	identity text NOT NULL CONSTRAINT devices_identity_unique UNIQUE
		CHECK (octet_length(identity) BETWEEN 1 AND 255),
	profile text NOT NULL CHECK (octet_length(profile) BETWEEN 1 AND 64),
	token_id integer REFERENCES provisioning_tokens (id), -- the token of its first enrolment
	status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'decommissioned')),
	created_at timestamptz NOT NULL DEFAULT now(),
	decommissioned_at timestamptz,
	decommissioned_by text,
	decommission_reason text,
	CONSTRAINT devices_decommission_fields CHECK ((status = 'decommissioned') =
						      (decommissioned_at IS NOT NULL))
);

CREATE TABLE device_certificates (
	device_id bigint NOT NULL REFERENCES devices (id),
	certificate_id bigint NOT NULL CONSTRAINT device_certificates_cert_unique UNIQUE
		REFERENCES certificates (id),
	how text NOT NULL CHECK (how IN ('enroll', 'reenroll')),
	PRIMARY KEY (device_id, certificate_id)
);

REVOKE ALL ON provisioning_tokens, devices, device_certificates FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON provisioning_tokens, devices TO hsmca_app;
GRANT SELECT, INSERT ON device_certificates TO hsmca_app;
