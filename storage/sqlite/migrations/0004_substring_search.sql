-- +goose Up
-- 0004: log search finds any substring, in every language (storage.SearchTerms).
--
-- The unicode61 index of 0001 found whole words only: not 開門 inside
-- 設備開門失敗, not fail inside failed. It is replaced by a trigram index, in
-- which every run of three characters of a message is a token, so that a
-- term of three or more characters is a phrase of trigrams and matches
-- exactly where it occurs as a substring.
--
-- What is indexed is devtrack_fold(message), the message in lower case by
-- Go's unicode.ToLower (storage.Fold, a function the store registers on
-- every connection), with the tokenizer's own folding off (case_sensitive 1).
-- SQLite's folding is not Go's (it leaves U+0130 İ, Georgian Mtavruli and
-- most letters outside the BMP alone, which Go lowers), and an index folded
-- its way would miss messages that the search rules say match. Folded text
-- is not what logs.message holds, so the table cannot be an external-content
-- one (a 'delete' there must repeat the indexed text, and 'rebuild' would
-- index the raw column): it is contentless with contentless_delete, so that
-- a row leaves the index by rowid alone. Rows are still indexed by SaveBatch
-- with one INSERT ... SELECT per batch (see 0001 for why not a trigger);
-- deletes (retention, export) and updates are kept in step by the triggers.
--
-- Existing rows are indexed here, in the migration's transaction.

DROP TRIGGER logs_fts_delete;
DROP TRIGGER logs_fts_update;
DROP TABLE logs_fts;

CREATE VIRTUAL TABLE logs_fts USING fts5 (
    message,
    content = '',
    contentless_delete = 1,
    tokenize = 'trigram case_sensitive 1'
);

INSERT INTO logs_fts (rowid, message) SELECT seq, devtrack_fold(message) FROM logs;

-- +goose StatementBegin
CREATE TRIGGER logs_fts_delete AFTER DELETE ON logs BEGIN
    DELETE FROM logs_fts WHERE rowid = old.seq;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER logs_fts_update AFTER UPDATE OF message ON logs BEGIN
    DELETE FROM logs_fts WHERE rowid = old.seq;
    INSERT INTO logs_fts (rowid, message) VALUES (new.seq, devtrack_fold(new.message));
END;
-- +goose StatementEnd
