DROP TABLE IF EXISTS unique_claims;
