-- hsmca schema: indexes for ACME's per-account limits and for challenges left processing, so
-- that neither reads more than what it counts.
--
-- newOrder counts the account's pending authorizations (rate limit acme.pending_authz): with
-- only acme_authorizations_reuse (account_id, identifier_type, identifier, wildcard, status)
-- that count walked every authorization the account ever had, and grew with its history. The
-- partial index holds the pending ones only (an authorization leaves it when it is validated,
-- fails or is deactivated), ordered by expiry so that expired ones are skipped by the index.
-- hsmca-cad's recovery thread lists the challenges left processing (a validation that died
-- with its cad): a scan of every challenge ever made, once a minute, without the second.
--
-- Runs as the migration (owner) role inside one transaction that `hsmca db migrate` opens;
-- never BEGIN or COMMIT here.

CREATE INDEX acme_authorizations_pending ON acme_authorizations (account_id, expires_at)
	WHERE status = 'pending';
CREATE INDEX acme_challenges_processing ON acme_challenges (started_at)
	WHERE status = 'processing';
