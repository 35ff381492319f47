-- Two indexes that every write of a media row paid for and no read needed:
--
-- media_delete_leased (00029) is media_delete_lease (00010) again, column
-- and predicate alike: every delete lease and every release wrote both.
--
-- run_media_unfinished (00006) holds the same rows as
-- run_media_message_unfinished (00016), whose leading column is the same
-- run_id: "is anything of this run left?" (runLeftToDo) reads the wider
-- index as cheaply, at any run size. Each listed media (a pending row)
-- was one more index entry to write, and one more on the commit of each
-- archived media a run deletes.

-- +goose Up
DROP INDEX media_delete_leased;
DROP INDEX run_media_unfinished;

-- +goose Down
CREATE INDEX run_media_unfinished ON run_media (run_id)
    WHERE state = 'pending' OR (delete_wanted AND state = 'archived');
CREATE INDEX media_delete_leased ON media (delete_lease_until) WHERE delete_lease_until IS NOT NULL;
