-- 00002: an index for short search terms in scripts written without spaces.
-- pg_trgm finds a term only from three characters on; in Chinese and
-- Japanese a word is often two (開門), and a rare one would be found only by
-- reading every row. devtrack_bigrams lists the distinct two-character
-- substrings of the lower-cased message that hold a non-ASCII character and
-- no white space; a search for such a term looks it up here (then ILIKE
-- checks the row). ASCII-only messages, most logs, cost one regex test and
-- an empty array.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION devtrack_bigrams(m text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN m ~ '[^\x01-\x7f]' THEN (
        SELECT coalesce(array_agg(DISTINCT b), '{}')
        FROM (SELECT substr(lower(m), i, 2) AS b FROM generate_series(1, length(m) - 1) AS i) s
        WHERE b ~ '[^\x01-\x7f]' AND b !~ '\s'
    ) ELSE '{}'::text[] END
$$;
-- +goose StatementEnd
CREATE INDEX logs_message_bigrams ON logs USING gin (devtrack_bigrams(message));

-- +goose Down
DROP INDEX logs_message_bigrams;
DROP FUNCTION devtrack_bigrams(text);
