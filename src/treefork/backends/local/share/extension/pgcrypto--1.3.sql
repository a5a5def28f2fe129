/* pgcrypto 1.3, treefork's compatibility version: the functions, signatures and labels of contrib/pgcrypto
   1.3, in SQL and PL/pgSQL (treefork ships no compiled code). digest(), hmac(), gen_random_bytes() and
   gen_random_uuid() work; the ciphers, crypt() and PGP raise an error that names the fix (docs/extensions.md). */

\echo Use "CREATE EXTENSION pgcrypto" to load this file. \quit

-- md5 and SHA-2 are core PostgreSQL's; SHA-1 (FIPS 180-4), which core lacks, is computed here.
CREATE FUNCTION digest(bytea, text)
RETURNS bytea
AS $$
DECLARE
    msg bytea := $1;
    len bigint := pg_catalog.length($1);
-- treefork: sha1 state
BEGIN
    CASE pg_catalog.lower($2)
        WHEN 'md5' THEN RETURN pg_catalog.decode(pg_catalog.md5($1), 'hex');
        WHEN 'sha224' THEN RETURN pg_catalog.sha224($1);
        WHEN 'sha256' THEN RETURN pg_catalog.sha256($1);
        WHEN 'sha384' THEN RETURN pg_catalog.sha384($1);
        WHEN 'sha512' THEN RETURN pg_catalog.sha512($1);
        WHEN 'sha1' THEN NULL;
        ELSE RAISE EXCEPTION USING ERRCODE = 'external_routine_invocation_exception',
            MESSAGE = pg_catalog.format('Cannot use "%s": No such hash algorithm', $2),
            HINT = 'treefork''s compatibility pgcrypto has md5, sha1, sha224, sha256, sha384 and sha512; see docs/extensions.md';
    END CASE;
-- treefork: sha1 rounds
    RETURN pg_catalog.decode(pg_catalog.lpad(pg_catalog.to_hex(h0), 8, '0') || pg_catalog.lpad(pg_catalog.to_hex(h1), 8, '0')
        || pg_catalog.lpad(pg_catalog.to_hex(h2), 8, '0') || pg_catalog.lpad(pg_catalog.to_hex(h3), 8, '0')
        || pg_catalog.lpad(pg_catalog.to_hex(h4), 8, '0'), 'hex');
END
$$
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE;

-- The text's bytes in the database's encoding, as the C version reads them.
CREATE FUNCTION digest(text, text)
RETURNS bytea
AS $$SELECT @extschema@.digest(pg_catalog.convert_to($1, pg_catalog.getdatabaseencoding()), $2)$$
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE;

-- HMAC (RFC 2104): a 64-byte block for md5, sha1, sha224 and sha256, 128 bytes for sha384 and sha512.
CREATE FUNCTION hmac(bytea, bytea, text)
RETURNS bytea
AS $$
DECLARE
    block int := CASE WHEN pg_catalog.lower($3) IN ('sha384', 'sha512') THEN 128 ELSE 64 END;
    key bytea := $2;
    inner_key bytea;
    outer_key bytea;
BEGIN
    IF pg_catalog.length(key) > block THEN
        key := @extschema@.digest(key, $3);
    END IF;
    key := key || pg_catalog.decode(pg_catalog.repeat('00', block - pg_catalog.length(key)), 'hex');
    inner_key := key;
    outer_key := key;
    FOR i IN 0 .. block - 1 LOOP
        inner_key := pg_catalog.set_byte(inner_key, i, pg_catalog.get_byte(key, i) # 54);
        outer_key := pg_catalog.set_byte(outer_key, i, pg_catalog.get_byte(key, i) # 92);
    END LOOP;
    RETURN @extschema@.digest(outer_key || @extschema@.digest(inner_key || $1, $3), $3);
END
$$
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION hmac(text, text, text)
RETURNS bytea
AS $$SELECT @extschema@.hmac(pg_catalog.convert_to($1, pg_catalog.getdatabaseencoding()),
    pg_catalog.convert_to($2, pg_catalog.getdatabaseencoding()), $3)$$
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE;

-- Bytes from pg_strong_random() (the operating system's CSPRNG, or OpenSSL's), as the C version's are, read
-- through gen_random_uuid(): its 16 bytes less the version and variant ones leave 14 uniformly random bytes.
CREATE FUNCTION gen_random_bytes(int4)
RETURNS bytea
AS $$
BEGIN
    IF $1 < 1 OR $1 > 1024 THEN
        RAISE EXCEPTION USING ERRCODE = 'external_routine_invocation_exception', MESSAGE = 'Length not in range';
    END IF;
    RETURN (SELECT pg_catalog.substr(pg_catalog.string_agg(pg_catalog.substr(u, 1, 6) || pg_catalog.substr(u, 8, 1)
                || pg_catalog.substr(u, 10, 7), ''::bytea), 1, $1)
            FROM (SELECT pg_catalog.uuid_send(pg_catalog.gen_random_uuid()) AS u
                  FROM pg_catalog.generate_series(1, ($1 + 13) / 14)) AS uuids);
END
$$
LANGUAGE plpgsql VOLATILE STRICT PARALLEL SAFE;

-- Since PostgreSQL 13 core has gen_random_uuid() in pg_catalog, which an unqualified call finds first;
-- pgcrypto 1.3 keeps its own for scripts that name its schema, and so does this one.
CREATE FUNCTION gen_random_uuid()
RETURNS uuid
AS $$SELECT pg_catalog.gen_random_uuid()$$
LANGUAGE sql VOLATILE PARALLEL SAFE;

-- Not provided: each raises feature_not_supported with the fix, so that a schema that names them (a view, a
-- default, a function) still restores. One body for all, each function with contrib/pgcrypto 1.3's own
-- signature, result and volatility (a function's default, VOLATILE, where contrib's says none).
DO $do$
DECLARE
    f record;
BEGIN
    FOR f IN SELECT * FROM (VALUES
        ('crypt', 'text, text', 'text', 'IMMUTABLE'),
        ('gen_salt', 'text', 'text', 'VOLATILE'),
        ('gen_salt', 'text, int4', 'text', 'VOLATILE'),
        ('encrypt', 'bytea, bytea, text', 'bytea', 'IMMUTABLE'),
        ('decrypt', 'bytea, bytea, text', 'bytea', 'IMMUTABLE'),
        ('encrypt_iv', 'bytea, bytea, bytea, text', 'bytea', 'IMMUTABLE'),
        ('decrypt_iv', 'bytea, bytea, bytea, text', 'bytea', 'IMMUTABLE'),
        ('pgp_sym_encrypt', 'text, text', 'bytea', 'VOLATILE'),
        ('pgp_sym_encrypt_bytea', 'bytea, text', 'bytea', 'VOLATILE'),
        ('pgp_sym_encrypt', 'text, text, text', 'bytea', 'VOLATILE'),
        ('pgp_sym_encrypt_bytea', 'bytea, text, text', 'bytea', 'VOLATILE'),
        ('pgp_sym_decrypt', 'bytea, text', 'text', 'IMMUTABLE'),
        ('pgp_sym_decrypt_bytea', 'bytea, text', 'bytea', 'IMMUTABLE'),
        ('pgp_sym_decrypt', 'bytea, text, text', 'text', 'IMMUTABLE'),
        ('pgp_sym_decrypt_bytea', 'bytea, text, text', 'bytea', 'IMMUTABLE'),
        ('pgp_pub_encrypt', 'text, bytea', 'bytea', 'VOLATILE'),
        ('pgp_pub_encrypt_bytea', 'bytea, bytea', 'bytea', 'VOLATILE'),
        ('pgp_pub_encrypt', 'text, bytea, text', 'bytea', 'VOLATILE'),
        ('pgp_pub_encrypt_bytea', 'bytea, bytea, text', 'bytea', 'VOLATILE'),
        ('pgp_pub_decrypt', 'bytea, bytea', 'text', 'IMMUTABLE'),
        ('pgp_pub_decrypt_bytea', 'bytea, bytea', 'bytea', 'IMMUTABLE'),
        ('pgp_pub_decrypt', 'bytea, bytea, text', 'text', 'IMMUTABLE'),
        ('pgp_pub_decrypt_bytea', 'bytea, bytea, text', 'bytea', 'IMMUTABLE'),
        ('pgp_pub_decrypt', 'bytea, bytea, text, text', 'text', 'IMMUTABLE'),
        ('pgp_pub_decrypt_bytea', 'bytea, bytea, text, text', 'bytea', 'IMMUTABLE'),
        ('pgp_key_id', 'bytea', 'text', 'IMMUTABLE'),
        ('armor', 'bytea', 'text', 'IMMUTABLE'),
        ('armor', 'bytea, text[], text[]', 'text', 'IMMUTABLE'),
        ('dearmor', 'text', 'bytea', 'IMMUTABLE'),
        ('pgp_armor_headers', 'text, key OUT text, value OUT text', 'SETOF record', 'IMMUTABLE')
    ) AS lacking(name, args, result, volatility) LOOP
        EXECUTE pg_catalog.format('CREATE FUNCTION %I(%s) RETURNS %s AS %L LANGUAGE plpgsql %s STRICT PARALLEL SAFE',
            f.name, f.args, f.result,
            pg_catalog.format('BEGIN RAISE EXCEPTION USING ERRCODE = ''feature_not_supported'', MESSAGE = %L; END',
                pg_catalog.format('treefork''s compatibility pgcrypto does not provide %s(): use a PostgreSQL server '
                    'that has the real pgcrypto (treefork init --server-url URL); see docs/extensions.md', f.name)),
            f.volatility);
    END LOOP;
END
$do$;
