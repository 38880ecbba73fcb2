-- +goose Up
-- 0005: search terms of one or two characters use the index too.
--
-- A term of three or more characters is a phrase of trigrams (0004); a
-- shorter one has no trigram of its own, so until now every such search
-- (開門, 42, 鎖) read the logs one by one: 8 s for a rare one at 10M logs.
-- Such a term is the start of a trigram wherever it occurs, but at the end
-- of a message: so the index now holds the folded message followed by two
-- U+0001 (devtrack_fts_text), and a term of one or two characters is found
-- as the trigrams that start with it, which the vocabulary below lists
-- (search.go, prefixTrigrams). The padding only adds trigrams: every search
-- of 0004 finds what it found, and devtrack_match still checks each row.
--
-- The index is rebuilt from logs, in the migration's transaction, as 0004
-- made it: 77 s at 10M logs on a 2-core machine (Migrate keeps the statement
-- journal of the rebuild in a file, not in memory).

DROP TRIGGER logs_fts_delete;
DROP TRIGGER logs_fts_update;
DROP TABLE logs_fts;

CREATE VIRTUAL TABLE logs_fts USING fts5 (
    message,
    content = '',
    contentless_delete = 1,
    tokenize = 'trigram case_sensitive 1'
);

INSERT INTO logs_fts (rowid, message) SELECT seq, devtrack_fts_text(message) FROM logs;

-- +goose StatementBegin
CREATE TRIGGER logs_fts_delete AFTER DELETE ON logs BEGIN
    DELETE FROM logs_fts WHERE rowid = old.seq;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER logs_fts_update AFTER UPDATE OF message ON logs BEGIN
    DELETE FROM logs_fts WHERE rowid = old.seq;
    INSERT INTO logs_fts (rowid, message) VALUES (new.seq, devtrack_fts_text(new.message));
END;
-- +goose StatementEnd

-- The trigrams of the index, in order (a read of the index's own b-tree:
-- nothing is stored twice).
CREATE VIRTUAL TABLE logs_fts_terms USING fts5vocab (logs_fts, row);
