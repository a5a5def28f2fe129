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
    m CONSTANT bigint := 4294967295;
    h0 bigint := 1732584193;
    h1 bigint := 4023233417;
    h2 bigint := 2562383102;
    h3 bigint := 271733878;
    h4 bigint := 3285377520;
    w bigint[] := pg_catalog.array_fill(0::bigint, ARRAY[80], ARRAY[0]);
    a bigint; b bigint; c bigint; d bigint; e bigint; f bigint; k bigint; t bigint; x bigint;
    h bytea;
BEGIN
    msg := msg || pg_catalog.decode('80', 'hex') || pg_catalog.decode(pg_catalog.repeat('00', ((55 - len % 64) + 64)::int % 64), 'hex')
        || pg_catalog.decode(pg_catalog.lpad(pg_catalog.to_hex(len * 8), 16, '0'), 'hex');
    FOR blk IN 0 .. pg_catalog.length(msg) / 64 - 1 LOOP
        FOR i IN 0 .. 15 LOOP
            w[i] := (pg_catalog.get_byte(msg, blk * 64 + i * 4)::bigint << 24)
                | (pg_catalog.get_byte(msg, blk * 64 + i * 4 + 1) << 16)
                | (pg_catalog.get_byte(msg, blk * 64 + i * 4 + 2) << 8)
                | pg_catalog.get_byte(msg, blk * 64 + i * 4 + 3);
        END LOOP;
        FOR i IN 16 .. 79 LOOP
            x := w[i - 3] # w[i - 8] # w[i - 14] # w[i - 16];
            w[i] := ((x << 1) | (x >> 31)) & m;
        END LOOP;
        a := h0; b := h1; c := h2; d := h3; e := h4;
        FOR i IN 0 .. 79 LOOP
            IF i < 20 THEN
                f := (b & c) | ((~b) & d); k := 1518500249;
            ELSIF i < 40 THEN
                f := b # c # d; k := 1859775393;
            ELSIF i < 60 THEN
                f := (b & c) | (b & d) | (c & d); k := 2400959708;
            ELSE
                f := b # c # d; k := 3395469782;
            END IF;
            t := ((((a << 5) | (a >> 27)) & m) + f + e + k + w[i]) & m;
            e := d; d := c; c := ((b << 30) | (b >> 2)) & m; b := a; a := t;
        END LOOP;
        h0 := (h0 + a) & m; h1 := (h1 + b) & m; h2 := (h2 + c) & m; h3 := (h3 + d) & m; h4 := (h4 + e) & m;
    END LOOP;
    h := pg_catalog.decode(pg_catalog.lpad(pg_catalog.to_hex(h0), 8, '0') || pg_catalog.lpad(pg_catalog.to_hex(h1), 8, '0')
        || pg_catalog.lpad(pg_catalog.to_hex(h2), 8, '0') || pg_catalog.lpad(pg_catalog.to_hex(h3), 8, '0'), 'hex');
    h := pg_catalog.set_byte(h, 6, (pg_catalog.get_byte(h, 6) & 15) | 80);
    h := pg_catalog.set_byte(h, 8, (pg_catalog.get_byte(h, 8) & 63) | 128);
    RETURN pg_catalog.encode(h, 'hex')::pg_catalog.uuid;
END
$$
IMMUTABLE STRICT LANGUAGE plpgsql PARALLEL SAFE;
