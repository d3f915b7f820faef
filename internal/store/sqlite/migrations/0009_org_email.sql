-- An organization's contact email (spec §7.14: SDK-OLD creates organizations
-- with {name, email?} and reads email back; the deprecated Account shape has
-- it too). Optional; numbered 0011 so that it does not take a version that
-- changes developed beside it may use.
ALTER TABLE organizations ADD COLUMN email TEXT NULL;
