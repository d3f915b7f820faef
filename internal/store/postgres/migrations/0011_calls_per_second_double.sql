-- calls_per_second was added as REAL, which is a 4-byte float on PostgreSQL
-- (0.01 read back as 0.0099999998, below the documented minimum); SQLite's
-- REAL is already 8 bytes, so only PostgreSQL needs this.
ALTER TABLE campaigns ALTER COLUMN calls_per_second TYPE DOUBLE PRECISION;
