-- Seeds :members members in one statement (psql -v members=N -f bench/seed.sql), on a database
-- the server's migrations already created. Member n (1-based) gets:
--   id             a UUID v7 shape: 48-bit milliseconds (from 2023-11-14, one ms apart), version 7,
--                  variant 8, and n in the last 48 bits, so ids grow with n like real v7 ids;
--   phone          '+7900' || n on seven digits (valid Russian mobile numbers);
--   referral_code  n * 1000003 mod 36^6 in base 36 over A-Z0-9 (a bijection: unique codes);
--   created_at     the time in the id.
-- bench/src/identities.rs computes the same phones and codes: keep the two in step.
-- No personal workspaces: seeded members only make the tables as large as a real deployment's.
\set ON_ERROR_STOP on
SET synchronous_commit = off;

INSERT INTO members (id, phone, first_name, referral_code, created_at)
SELECT
    (lpad(to_hex(1700000000000 + n), 12, '0') || '7000' || '8000' || lpad(to_hex(n), 12, '0'))::uuid,
    '+7900' || lpad(n::text, 7, '0'),
    'Seeded',
    substr(a, (c / 60466176 % 36)::int + 1, 1)
        || substr(a, (c / 1679616 % 36)::int + 1, 1)
        || substr(a, (c / 46656 % 36)::int + 1, 1)
        || substr(a, (c / 1296 % 36)::int + 1, 1)
        || substr(a, (c / 36 % 36)::int + 1, 1)
        || substr(a, (c % 36)::int + 1, 1),
    to_timestamp((1700000000000 + n) / 1000.0)
FROM generate_series(1::bigint, :members::bigint) AS n,
     LATERAL (SELECT n * 1000003 % 2176782336 AS c,
                     'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'::text AS a) AS k;

VACUUM ANALYZE members;

-- Write the seed's dirty pages out now, so that the checkpoint they would otherwise cause
-- (flushing a few hundred MB and making every page touched after it log a full-page image)
-- does not land inside the first scenarios: the bench measures a database in steady state,
-- not the tail of a bulk load. (It needs a superuser or pg_checkpoint; without, it is skipped.)
\set ON_ERROR_STOP off
CHECKPOINT;
