-- hsmca schema: what ACME orders were still missing.
--
-- 1. The validity a client asks for in newOrder (RFC 8555 §7.4 notBefore/notAfter), kept with
--    the order and used when it is finalized; NULL when the client named none (the profile's).
-- 2. hsmca-cad's own role (migration 0013) may read, add and change orders, authorizations and
--    challenges as hsmca_app may (migration 0012), never delete them: the order tables came
--    after 0013 was written and hsmca_cad had no grant on them. hsmca_ocspd and hsmca_crld
--    get nothing here.
-- 3. Which challenges went processing when (started_at): hsmca-cad retries, at its start, the
--    validations a stopped or crashed hsmca-cad left unfinished (docs/acme.md).
--
-- Runs as the migration (owner) role inside one transaction that `hsmca db migrate` opens;
-- never BEGIN or COMMIT here.

ALTER TABLE acme_orders
	ADD COLUMN not_before timestamptz,
	ADD COLUMN not_after timestamptz,
	ADD CONSTRAINT acme_orders_validity
		CHECK (not_before IS NULL OR not_after IS NULL OR not_before < not_after);

ALTER TABLE acme_challenges ADD COLUMN started_at timestamptz;

GRANT SELECT, INSERT, UPDATE ON acme_authorizations, acme_challenges, acme_orders TO hsmca_cad;
GRANT SELECT, INSERT ON acme_order_authorizations TO hsmca_cad;
