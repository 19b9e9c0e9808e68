-- Binary I/O of the embedding type (embedding_send / embedding_recv).
-- embedding_recv is reached through COPY ... (FORMAT binary) from files whose
-- bytes are crafted here (written into the data directory with lo_export), so
-- the real receive path, typmod included, meets truncated and corrupt input.
CREATE TABLE embedding_binary_t (e embedding);
CREATE TABLE embedding_binary_t2 (e embedding(2));

-- A COPY BINARY file holding one row with one field of the given bytes.
CREATE FUNCTION embedding_binary_file(payload bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
	SELECT '\x5047434f50590aff0d0a00'::bytea	-- signature
		|| '\x0000000000000000'::bytea		-- flags, header extension length
		|| '\x0001'::bytea || int4send(length(payload)) || payload
		|| '\xffff'::bytea					-- trailer
$$;

-- Load payload into tab through COPY FROM ... (FORMAT binary); 'ok' or the error.
CREATE FUNCTION embedding_binary_load(payload bytea, tab text DEFAULT 'embedding_binary_t')
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	f text := current_setting('data_directory') || '/embedding_binary.copy';
	lo oid := lo_from_bytea(0, embedding_binary_file(payload));
	detail text;
BEGIN
	PERFORM lo_export(lo, f);
	PERFORM lo_unlink(lo);
	EXECUTE format('COPY %I FROM %L (FORMAT binary)', tab, f);
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
	RETURN SQLSTATE || ': ' || SQLERRM || coalesce(' (' || nullif(detail, '') || ')', '');
END $$;

-- float4 values in network byte order
CREATE FUNCTION embedding_binary_f(VARIADIC v real[]) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
	SELECT string_agg(float4send(x), ''::bytea ORDER BY i) FROM unnest(v) WITH ORDINALITY u(x, i)
$$;

-- the format: version 1, name length 0 (no model), dim, side_dim, floats
SELECT embedding_send('[1,2]|[3]'::embedding);
SELECT embedding_send('[-1.5,0.1]'::embedding);

-- well-formed messages
SELECT embedding_binary_load('\x01'::bytea || '\x0000' || '\x0002' || '\x0000'::bytea || embedding_binary_f(1, 2));
SELECT embedding_binary_load('\x01'::bytea || '\x0000' || '\x0002' || '\x0001'::bytea || embedding_binary_f(1.5, -2, 0.25));
SELECT embedding_binary_load('\x01'::bytea || '\x0000' || '\x0001' || '\x0000'::bytea || '\x80000000'::bytea);	-- -0
SELECT embedding_binary_load('\x01'::bytea || '\x0000' || '\x0001' || '\x0000'::bytea || '\x00000001'::bytea);	-- 1e-45
SELECT e, fct_vector(e), fct_side(e) FROM embedding_binary_t ORDER BY e;

-- send -> recv round trip through COPY TO / FROM (FORMAT binary)
TRUNCATE embedding_binary_t;
INSERT INTO embedding_binary_t VALUES ('[0.1,1e-45,3.4028235e38]|[-7,0]'), ('[1]'), ('[1,2,3]|[4]');
SELECT current_setting('data_directory') || '/embedding_binary_rt.copy' AS rt \gset
COPY embedding_binary_t TO :'rt' (FORMAT binary);
CREATE TABLE embedding_binary_rt (e embedding);
COPY embedding_binary_rt FROM :'rt' (FORMAT binary);
SELECT (SELECT array_agg(e ORDER BY e) FROM embedding_binary_t)
     = (SELECT array_agg(e ORDER BY e) FROM embedding_binary_rt) AS same,
       (SELECT count(*) FROM embedding_binary_rt) AS n;
TRUNCATE embedding_binary_t;

-- corrupt or truncated messages are errors, never crashes
SELECT embedding_binary_load('\x');											-- empty
SELECT embedding_binary_load('\x01');										-- version only
SELECT embedding_binary_load('\x0100');										-- half a name length
SELECT embedding_binary_load('\x02'::bytea || '\x0000' || '\x0001' || '\x0000'::bytea || embedding_binary_f(1));	-- unknown version
SELECT embedding_binary_load('\x00'::bytea || '\x0000' || '\x0001' || '\x0000'::bytea || embedding_binary_f(1));	-- version 0
SELECT embedding_binary_load('\x01'::bytea || '\xffff' || '\x0001' || '\x0000'::bytea || embedding_binary_f(1));	-- name length -1
SELECT embedding_binary_load('\x01'::bytea || '\x0040'::bytea || convert_to(repeat('a', 64), 'UTF8') || '\x0001' || '\x0000'::bytea || embedding_binary_f(1));	-- name length 64
SELECT embedding_binary_load('\x01'::bytea || '\x0005' || '\x616263'::bytea);		-- name cut short
SELECT embedding_binary_load('\x01'::bytea || '\x0003' || '\x612062' || '\x0001' || '\x0000'::bytea || embedding_binary_f(1));	-- 'a b'
SELECT embedding_binary_load('\x01'::bytea || '\x0002' || '\x6100' || '\x0001' || '\x0000'::bytea || embedding_binary_f(1));	-- NUL in name
SELECT embedding_binary_load('\x01'::bytea || '\x0000' || '\x0000' || '\x0000'::bytea);	-- dim 0
SELECT embedding_binary_load('\x01'::bytea || '\x0000' || '\x00' ::bytea);			-- dim cut short
SELECT embedding_binary_load('\x01'::bytea || '\x0000' || '\x0002'::bytea);		-- no side_dim
SELECT embedding_binary_load('\x01'::bytea || '\x0000' || '\x3e81' || '\x0000'::bytea || embedding_binary_f(1));	-- dim 16001
SELECT embedding_binary_load('\x01'::bytea || '\x0000' || '\xffff' || '\xffff'::bytea);	-- dim 65535
SELECT embedding_binary_load('\x01'::bytea || '\x0000' || '\x0001' || '\x1001'::bytea || embedding_binary_f(1));	-- side 4097
SELECT embedding_binary_load('\x01'::bytea || '\x0000' || '\x0003' || '\x0000'::bytea || embedding_binary_f(1, 2));	-- 2 of 3 floats
SELECT embedding_binary_load('\x01'::bytea || '\x0000' || '\x0002' || '\x0001'::bytea || embedding_binary_f(1, 2) || '\x0000'::bytea);	-- half a float
SELECT embedding_binary_load('\x01'::bytea || '\x0000' || '\x0001' || '\x0000'::bytea || embedding_binary_f(1, 2));	-- trailing bytes
SELECT embedding_binary_load('\x01'::bytea || '\x0000' || '\x0002' || '\x0000'::bytea || embedding_binary_f(1) || '\x7fc00000'::bytea);	-- NaN
SELECT embedding_binary_load('\x01'::bytea || '\x0000' || '\x0001' || '\x0001'::bytea || embedding_binary_f(1) || '\xff800000'::bytea);	-- -inf in side
-- every proper prefix of a valid message is an error
SELECT count(*) FILTER (WHERE r = 'ok') AS accepted, count(*) AS prefixes,
       array_agg(DISTINCT left(r, 5) ORDER BY left(r, 5)) AS codes
FROM (SELECT embedding_binary_load(substr(m, 1, n)) AS r
      FROM (SELECT embedding_send('[1,2,3]|[4,5]'::embedding) AS m) s,
           generate_series(0, length(m) - 1) n) t;
-- random bytes overwritten in valid messages: accepted, or one of the
-- documented errors, and the session survives
SELECT count(*) FILTER (WHERE left(r, 5) NOT IN ('ok', '22P03', '08P01', '54000', '22003', '22000', '42704')) AS unexpected,
       count(*) AS tried
FROM (SELECT embedding_binary_load(overlay(m PLACING decode(lpad(to_hex((random() * 255)::int), 2, '0'), 'hex')
                                           FROM 1 + (random() * (length(m) - 1))::int)) AS r
      FROM (SELECT embedding_send('[1,-2.5,3e-3,4]|[5,6]'::embedding) AS m) s,
           generate_series(1, 400) g) t;
SELECT 1 AS alive;
TRUNCATE embedding_binary_t;

-- typmod of the target column
SELECT embedding_binary_load('\x01'::bytea || '\x0000' || '\x0002' || '\x0000'::bytea || embedding_binary_f(1, 2), 'embedding_binary_t2');
SELECT embedding_binary_load('\x01'::bytea || '\x0000' || '\x0003' || '\x0000'::bytea || embedding_binary_f(1, 2, 3), 'embedding_binary_t2');
-- nothing corrupt got in
SELECT count(*) FROM embedding_binary_t;
SELECT * FROM embedding_binary_t2;

DROP TABLE embedding_binary_t, embedding_binary_t2, embedding_binary_rt;
DROP FUNCTION embedding_binary_load(bytea, text), embedding_binary_file(bytea), embedding_binary_f(real[]);
