-- hsmca schema: one place for each authority's Authority Information Access.
--
-- ocsp_urls (up to 3 URLs separated by one space) and ca_issuers_url are what hsmca-cad writes
-- into the Authority Information Access extension of every certificate the authority issues
-- (RFC 5280 4.2.2.1; id-ad-ocsp and id-ad-caIssuers). Officers set them through the settings
-- API (PUT /api/v1/authorities/<ca>/settings, `hsmca authority settings`), audited; cad reads
-- them from here, so a change reaches the next certificate without a restart. The CA/Browser
-- Forum Baseline Requirements (7.1.2.7.7) want plain http URLs for both, so https is refused.
-- Each URL goes into an X509v3 value and a certificate: printable ASCII without spaces, commas,
-- quotes, angle brackets or backslashes; the API bounds each to 400 bytes, the schema the whole
-- (PostgreSQL's regular expressions count repetitions only up to 255). '': none.
--
-- Runs as the migration (owner) role inside one transaction that `hsmca db migrate` opens;
-- never BEGIN or COMMIT here.

ALTER TABLE authority_settings
	ADD COLUMN ocsp_urls text NOT NULL DEFAULT ''
		CHECK (ocsp_urls = '' OR (octet_length(ocsp_urls) <= 1202 AND
					  ocsp_urls ~ '^http://[^ ,"''<>\\]+( http://[^ ,"''<>\\]+){0,2}$' AND
					  ocsp_urls !~ '[^ -~]')),
	ADD COLUMN ca_issuers_url text NOT NULL DEFAULT ''
		CHECK (ca_issuers_url = '' OR (octet_length(ca_issuers_url) <= 400 AND
					       ca_issuers_url ~ '^http://[^ ,"''<>\\]+$' AND
					       ca_issuers_url !~ '[^!-~]'));
