-- 0001: assistants, threads, runs. Append-only: never edit, add a new file.

CREATE TABLE assistant (
  assistant_id uuid PRIMARY KEY,
  graph_id     text NOT NULL,
  config       jsonb NOT NULL DEFAULT '{}',
  context      jsonb NOT NULL DEFAULT '{}',
  metadata     jsonb NOT NULL DEFAULT '{}',
  name         text NOT NULL,
  description  text,
  version      integer NOT NULL DEFAULT 1,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX assistant_graph_id ON assistant (graph_id);
CREATE INDEX assistant_metadata ON assistant USING gin (metadata jsonb_path_ops);

CREATE TABLE assistant_version (
  assistant_id uuid NOT NULL REFERENCES assistant ON DELETE CASCADE,
  version      integer NOT NULL,
  graph_id     text NOT NULL,
  config       jsonb NOT NULL DEFAULT '{}',
  context      jsonb NOT NULL DEFAULT '{}',
  metadata     jsonb NOT NULL DEFAULT '{}',
  name         text NOT NULL,
  description  text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (assistant_id, version)
);

CREATE TABLE thread (
  thread_id        uuid PRIMARY KEY,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  state_updated_at timestamptz NOT NULL DEFAULT now(),
  metadata         jsonb NOT NULL DEFAULT '{}',
  config           jsonb NOT NULL DEFAULT '{}',
  status           text NOT NULL DEFAULT 'idle',
  "values"         jsonb,
  interrupts       jsonb NOT NULL DEFAULT '{}',
  error            jsonb
);
CREATE INDEX thread_created_at ON thread (created_at DESC);
CREATE INDEX thread_metadata ON thread USING gin (metadata jsonb_path_ops);

CREATE TABLE run (
  run_id             uuid PRIMARY KEY,
  thread_id          uuid NOT NULL REFERENCES thread ON DELETE CASCADE,
  assistant_id       uuid NOT NULL,
  -- The time the run becomes eligible (creation time + after_seconds).
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  status             text NOT NULL DEFAULT 'pending',
  metadata           jsonb NOT NULL DEFAULT '{}',
  kwargs             jsonb NOT NULL,
  multitask_strategy text NOT NULL DEFAULT 'enqueue',
  attempt            integer NOT NULL DEFAULT 0,
  lease_owner        text,
  lease_expires_at   timestamptz,
  cancel_action      text,
  started_at         timestamptz,
  ended_at           timestamptz
);
-- The database itself guarantees at most one executing run per thread.
CREATE UNIQUE INDEX run_one_running_per_thread ON run (thread_id) WHERE status = 'running';
CREATE INDEX run_pending_by_thread ON run (thread_id, created_at, run_id) WHERE status = 'pending';
CREATE INDEX run_pending_by_time ON run (created_at) WHERE status = 'pending';
CREATE INDEX run_lease ON run (lease_expires_at) WHERE status = 'running';
CREATE INDEX run_thread_created ON run (thread_id, created_at DESC);
