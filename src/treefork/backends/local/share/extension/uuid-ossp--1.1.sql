/* uuid-ossp 1.1, treefork's compatibility version: the functions, names, argument names and labels of
   contrib/uuid-ossp, written in SQL and PL/pgSQL (treefork ships no compiled code). docs/extensions.md says
   where it differs: v1 and v1mc take a random multicast node, as there is no MAC address to read. */

\echo Use '''CREATE EXTENSION "uuid-ossp"''' to load this file. \quit

-- The nil UUID and RFC 9562's namespaces, each a constant.
DO $do$
DECLARE
    f record;
BEGIN
    FOR f IN SELECT * FROM (VALUES
        ('uuid_nil', '00000000-0000-0000-0000-000000000000'),
        ('uuid_ns_dns', '6ba7b810-9dad-11d1-80b4-00c04fd430c8'),
        ('uuid_ns_url', '6ba7b811-9dad-11d1-80b4-00c04fd430c8'),
        ('uuid_ns_oid', '6ba7b812-9dad-11d1-80b4-00c04fd430c8'),
        ('uuid_ns_x500', '6ba7b814-9dad-11d1-80b4-00c04fd430c8')
    ) AS constants(name, value) LOOP
        EXECUTE pg_catalog.format('CREATE FUNCTION %I() RETURNS uuid AS %L IMMUTABLE STRICT LANGUAGE sql PARALLEL SAFE',
            f.name, pg_catalog.format('SELECT %L::pg_catalog.uuid', f.value));
    END LOOP;
END
$do$;

-- Version 1: the time in 100 ns steps since 1582-10-15 (clock_timestamp() has microseconds), a random
-- 14-bit clock sequence and a random node with the multicast bit set (RFC 9562 6.10: a node that is not a
-- MAC address). The random bits are gen_random_uuid()'s, which come from pg_strong_random().
-- uuid_generate_v1mc() is version 1 with a random multicast, locally administered node, as uuid-ossp's own
-- makes it: 0x03 in the node's first octet where v1 sets 0x01, their one difference (bits, below).
DO $do$
DECLARE
    f record;
BEGIN
    FOR f IN SELECT * FROM (VALUES ('uuid_generate_v1', 1), ('uuid_generate_v1mc', 3)) AS node(name, bits) LOOP
        EXECUTE pg_catalog.format('CREATE FUNCTION %I() RETURNS uuid AS %L VOLATILE STRICT LANGUAGE plpgsql PARALLEL SAFE',
            f.name, pg_catalog.format($body$
DECLARE
    t bigint := (EXTRACT(EPOCH FROM pg_catalog.clock_timestamp()) * 10000000)::bigint + 122192928000000000;
    r bytea := pg_catalog.uuid_send(pg_catalog.gen_random_uuid());
BEGIN
    RETURN (pg_catalog.lpad(pg_catalog.to_hex(t & 4294967295), 8, '0')
        || pg_catalog.lpad(pg_catalog.to_hex((t >> 32) & 65535), 4, '0')
        || pg_catalog.lpad(pg_catalog.to_hex(((t >> 48) & 4095) | 4096), 4, '0')
        || pg_catalog.lpad(pg_catalog.to_hex(((pg_catalog.get_byte(r, 8) & 63) | 128) * 256 + pg_catalog.get_byte(r, 9)), 4, '0')
        || pg_catalog.lpad(pg_catalog.to_hex(pg_catalog.get_byte(r, 0) | %s), 2, '0')
        || pg_catalog.encode(pg_catalog.substr(r, 2, 5), 'hex'))::pg_catalog.uuid;
END
$body$, f.bits));
    END LOOP;
END
$do$;

-- Version 3: MD5 of the namespace's 16 bytes and the name's bytes (in the database's encoding, as the C
-- version reads them), version and variant bits set.
CREATE FUNCTION uuid_generate_v3(namespace uuid, name text)
RETURNS uuid
AS $$
DECLARE
    h bytea := pg_catalog.decode(pg_catalog.md5(pg_catalog.uuid_send(namespace)
        || pg_catalog.convert_to(name, pg_catalog.getdatabaseencoding())), 'hex');
BEGIN
    h := pg_catalog.set_byte(h, 6, (pg_catalog.get_byte(h, 6) & 15) | 48);
    h := pg_catalog.set_byte(h, 8, (pg_catalog.get_byte(h, 8) & 63) | 128);
    RETURN pg_catalog.encode(h, 'hex')::pg_catalog.uuid;
END
$$
IMMUTABLE STRICT LANGUAGE plpgsql PARALLEL SAFE;

CREATE FUNCTION uuid_generate_v4()
RETURNS uuid
AS $$SELECT pg_catalog.gen_random_uuid()$$
VOLATILE STRICT LANGUAGE sql PARALLEL SAFE;

-- Version 5: SHA-1 (FIPS 180-4, which core PostgreSQL does not have) of the namespace's 16 bytes and the
-- name's bytes, truncated to 16 bytes, version and variant bits set.
CREATE FUNCTION uuid_generate_v5(namespace uuid, name text)
RETURNS uuid
AS $$
DECLARE
    msg bytea := pg_catalog.uuid_send(namespace) || pg_catalog.convert_to(name, pg_catalog.getdatabaseencoding());
    len bigint := pg_catalog.length(msg);
-- treefork: sha1 state
    h bytea;
BEGIN
-- treefork: sha1 rounds
    h := pg_catalog.decode(pg_catalog.lpad(pg_catalog.to_hex(h0), 8, '0') || pg_catalog.lpad(pg_catalog.to_hex(h1), 8, '0')
        || pg_catalog.lpad(pg_catalog.to_hex(h2), 8, '0') || pg_catalog.lpad(pg_catalog.to_hex(h3), 8, '0'), 'hex');
    h := pg_catalog.set_byte(h, 6, (pg_catalog.get_byte(h, 6) & 15) | 80);
    h := pg_catalog.set_byte(h, 8, (pg_catalog.get_byte(h, 8) & 63) | 128);
    RETURN pg_catalog.encode(h, 'hex')::pg_catalog.uuid;
END
$$
IMMUTABLE STRICT LANGUAGE plpgsql PARALLEL SAFE;
