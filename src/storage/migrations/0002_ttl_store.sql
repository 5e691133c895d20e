-- 0002: thread TTLs and the long-term memory store. Append-only: never edit, add a new file.

-- A thread with a TTL expires ttl_minutes after its last activity. Every write
-- that moves updated_at (runs, state updates, patches) pushes ttl_expires_at
-- forward through the trigger below, so no caller has to remember to.
ALTER TABLE thread
  ADD COLUMN ttl_minutes    double precision,
  ADD COLUMN ttl_strategy   text,
  ADD COLUMN ttl_expires_at timestamptz;
CREATE INDEX thread_ttl_expires_at ON thread (ttl_expires_at) WHERE ttl_expires_at IS NOT NULL;

-- Recomputes the expiry when the TTL changes or the thread sees activity.
-- Other updates leave ttl_expires_at alone, so the sweeper can clear it after
-- a keep_latest prune and it stays clear until the next activity.
CREATE FUNCTION openplane_thread_ttl() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.ttl_minutes IS NULL THEN
    NEW.ttl_expires_at := NULL;
  ELSIF TG_OP = 'INSERT'
     OR NEW.updated_at IS DISTINCT FROM OLD.updated_at
     OR NEW.ttl_minutes IS DISTINCT FROM OLD.ttl_minutes
     OR NEW.ttl_strategy IS DISTINCT FROM OLD.ttl_strategy THEN
    NEW.ttl_expires_at := NEW.updated_at + NEW.ttl_minutes * interval '1 minute';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER thread_ttl BEFORE INSERT OR UPDATE ON thread
  FOR EACH ROW EXECUTE FUNCTION openplane_thread_ttl();

-- Threads created for an assistant (delete_threads=true finds them by metadata).
CREATE INDEX thread_assistant_id ON thread ((metadata->>'assistant_id'));

-- Store items. `prefix` is the namespace labels joined with '.' (labels may
-- not contain '.'), so a namespace prefix is a string prefix of `prefix`.
CREATE TABLE store_item (
  prefix      text NOT NULL,
  key         text NOT NULL,
  namespace   text[] NOT NULL,
  value       jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  ttl_minutes double precision,
  expires_at  timestamptz,
  PRIMARY KEY (prefix, key)
);
CREATE INDEX store_item_prefix ON store_item (prefix text_pattern_ops);
CREATE INDEX store_item_updated_at ON store_item (updated_at DESC);
CREATE INDEX store_item_expires_at ON store_item (expires_at) WHERE expires_at IS NOT NULL;
