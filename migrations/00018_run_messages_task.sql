-- A listed page queues its messages a few to a message task (issue #14),
-- under the ID of the task's first message. The reconciler re-queues a
-- stale message under that same ID, so that a message whose batch still
-- waits in the queue (or runs) is not queued a second time on its own.
-- NULL: the message's task is its own.
-- +goose Up
ALTER TABLE run_messages ADD COLUMN task_sid text;

-- +goose Down
ALTER TABLE run_messages DROP COLUMN task_sid;
