-- A remote registry whose token service is on another host (Docker Hub:
-- registry-1.docker.io sends clients to auth.docker.io): the credentials
-- are sent there only when it is named here, a URL prefix. Otherwise they
-- go to the registry's own host only.
ALTER TABLE remotes ADD COLUMN token_realm TEXT;
