-- Where an account comes from: 'local', 'oidc:<provider>' or
-- 'ldap:<directory>', with the provider's stable id for it. Names stay
-- unique across origins: a sign-in whose name is taken is refused.
ALTER TABLE accounts ADD COLUMN origin TEXT NOT NULL DEFAULT 'local';
ALTER TABLE accounts ADD COLUMN external_subject TEXT;
-- Platform administrator because a group mapping said so (taken away
-- when the mapping no longer matches); 0 when granted by hand.
ALTER TABLE accounts ADD COLUMN admin_by_mapping INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX accounts_external ON accounts (origin, external_subject);
-- Memberships made by group mappings ('mapping') are replaced at each
-- sign-in; those made by hand ('manual') are never touched by them.
ALTER TABLE group_members ADD COLUMN source TEXT NOT NULL DEFAULT 'manual';
ALTER TABLE namespace_members ADD COLUMN source TEXT NOT NULL DEFAULT 'manual';
