/* pgcrypto 1.3 to 1.4, treefork's compatibility version: fips_mode(), false (no FIPS module is in use). */

\echo Use "ALTER EXTENSION pgcrypto UPDATE TO '1.4'" to load this file. \quit

CREATE FUNCTION fips_mode()
RETURNS bool
AS $$SELECT false$$
LANGUAGE sql VOLATILE STRICT PARALLEL SAFE;
