-- 0003: crons (scheduled runs). Append-only: never edit, add a new file.

-- A cron is the source of truth for a BullMQ job scheduler of the same id:
-- the scheduler only says "fire cron X now"; the fire re-reads this row.
CREATE TABLE cron (
  cron_id          uuid PRIMARY KEY,
  -- A cron goes with its assistant.
  assistant_id     uuid NOT NULL REFERENCES assistant ON DELETE CASCADE,
  -- Thread crons die with their thread; stateless crons have none.
  thread_id        uuid REFERENCES thread ON DELETE CASCADE,
  -- Stateless crons: what happens to each fire's thread (delete | keep).
  on_run_completed text,
  end_time         timestamptz,
  schedule         text NOT NULL,
  -- IANA zone the schedule is read in; NULL = UTC.
  timezone         text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  -- The run to create on each fire (a run-create body).
  payload          jsonb NOT NULL DEFAULT '{}',
  user_id          text,
  next_run_date    timestamptz,
  metadata         jsonb NOT NULL DEFAULT '{}',
  enabled          boolean NOT NULL DEFAULT true,
  -- Internal: the authenticated user who created the cron (stamped into its runs' config).
  auth_user        jsonb,
  -- Internal: the scheduled time (epoch ms) of the last fire handled, so a fire
  -- delivered twice (a stalled job retried) creates one run.
  last_fire_ms     bigint
);
CREATE INDEX cron_assistant_id ON cron (assistant_id);
CREATE INDEX cron_thread_id ON cron (thread_id) WHERE thread_id IS NOT NULL;
CREATE INDEX cron_metadata ON cron USING gin (metadata jsonb_path_ops);
