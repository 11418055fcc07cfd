-- hsmca schema: the single-column rules of the ACME orders, authorizations and challenges as
-- domains instead of table CHECK constraints. The same rules, cheaper to apply.
--
-- PostgreSQL 15 checks a table's CHECK constraints by reading each one's expression back from
-- its stored node text and planning it again, in every INSERT and UPDATE statement, for every
-- constraint of the table whichever columns the statement sets: for acme_orders 6.5 KB of node
-- text per statement, about 30 us of CPU (pgbench, one UPDATE of an order's status: 143 us
-- with the constraints, 106 us without, 112 us with these domains). A domain's constraints are
-- kept planned in the backend's type cache, and are checked only where a value is assigned to
-- a column of the domain: an order's move checks its status, not its identifiers. An ACME
-- order makes nine such statements on these tables (docs/benchmarks.md).
--
-- Every value these tables may hold is the same as before (NULL passes a domain's CHECK as it
-- passed the table's); a refused value is refused by a constraint named as before, now on the
-- domain (e.g. "value for domain acme_order_status violates check constraint
-- acme_order_status_check"). The rules that read two columns stay table CHECK constraints
-- (acme_orders_cert, acme_orders_validity). The columns' types change from text to domains
-- over text: the tables are rewritten and their indexes rebuilt, in this migration's
-- transaction, which blocks the three tables while it runs: migrate a large deployment in a
-- quiet moment.
--
-- Runs as the migration (owner) role inside one transaction that `hsmca db migrate` opens;
-- never BEGIN or COMMIT here.

CREATE DOMAIN acme_order_status AS text
	CONSTRAINT acme_order_status_check
	CHECK (VALUE IN ('pending', 'ready', 'processing', 'valid', 'invalid'));
CREATE DOMAIN acme_order_identifiers AS text
	CONSTRAINT acme_order_identifiers_check
	CHECK (octet_length(VALUE) >= 2 AND octet_length(VALUE) <= 65536);
CREATE DOMAIN acme_profile_name AS text
	CONSTRAINT acme_profile_name_check
	CHECK (octet_length(VALUE) >= 1 AND octet_length(VALUE) <= 64);
CREATE DOMAIN acme_cert_serial AS text
	CONSTRAINT acme_cert_serial_check
	CHECK (VALUE ~ '^[0-9A-Fa-f]{2,80}$');
CREATE DOMAIN acme_problem_type AS text
	CONSTRAINT acme_problem_type_check
	CHECK (octet_length(VALUE) <= 32);
CREATE DOMAIN acme_order_problem_detail AS text
	CONSTRAINT acme_order_problem_detail_check
	CHECK (octet_length(VALUE) <= 1024);
CREATE DOMAIN acme_challenge_problem_detail AS text
	CONSTRAINT acme_challenge_problem_detail_check
	CHECK (octet_length(VALUE) <= 512);
CREATE DOMAIN acme_authz_status AS text
	CONSTRAINT acme_authz_status_check
	CHECK (VALUE IN ('pending', 'valid', 'invalid', 'deactivated', 'expired', 'revoked'));
CREATE DOMAIN acme_identifier_type AS text
	CONSTRAINT acme_identifier_type_check
	CHECK (VALUE IN ('dns', 'ip'));
CREATE DOMAIN acme_identifier AS text
	CONSTRAINT acme_identifier_check
	CHECK (octet_length(VALUE) >= 1 AND octet_length(VALUE) <= 253);
CREATE DOMAIN acme_challenge_status AS text
	CONSTRAINT acme_challenge_status_check
	CHECK (VALUE IN ('pending', 'processing', 'valid', 'invalid'));
CREATE DOMAIN acme_challenge_type AS text
	CONSTRAINT acme_challenge_type_check
	CHECK (VALUE IN ('http-01', 'dns-01', 'tls-alpn-01'));
CREATE DOMAIN acme_challenge_token AS text
	CONSTRAINT acme_challenge_token_check
	CHECK (VALUE ~ '^[A-Za-z0-9_-]{43}$');

ALTER TABLE acme_orders
	DROP CONSTRAINT acme_orders_status_check,
	DROP CONSTRAINT acme_orders_identifiers_check,
	DROP CONSTRAINT acme_orders_profile_check,
	DROP CONSTRAINT acme_orders_cert_serial_check,
	DROP CONSTRAINT acme_orders_error_type_check,
	DROP CONSTRAINT acme_orders_error_detail_check,
	ALTER COLUMN status TYPE acme_order_status,
	ALTER COLUMN identifiers TYPE acme_order_identifiers,
	ALTER COLUMN profile TYPE acme_profile_name,
	ALTER COLUMN cert_serial TYPE acme_cert_serial,
	ALTER COLUMN error_type TYPE acme_problem_type,
	ALTER COLUMN error_detail TYPE acme_order_problem_detail;

ALTER TABLE acme_authorizations
	DROP CONSTRAINT acme_authorizations_status_check,
	DROP CONSTRAINT acme_authorizations_identifier_type_check,
	DROP CONSTRAINT acme_authorizations_identifier_check,
	ALTER COLUMN status TYPE acme_authz_status,
	ALTER COLUMN identifier_type TYPE acme_identifier_type,
	ALTER COLUMN identifier TYPE acme_identifier;

ALTER TABLE acme_challenges
	DROP CONSTRAINT acme_challenges_status_check,
	DROP CONSTRAINT acme_challenges_type_check,
	DROP CONSTRAINT acme_challenges_token_check,
	DROP CONSTRAINT acme_challenges_error_type_check,
	DROP CONSTRAINT acme_challenges_error_detail_check,
	ALTER COLUMN status TYPE acme_challenge_status,
	ALTER COLUMN type TYPE acme_challenge_type,
	ALTER COLUMN token TYPE acme_challenge_token,
	ALTER COLUMN error_type TYPE acme_problem_type,
	ALTER COLUMN error_detail TYPE acme_challenge_problem_detail;
