-- Run creation in one round trip (it was BEGIN, lock, insert, COMMIT: three).
-- A function because the in-flight check must see runs committed while this
-- call waited for the thread's lock: in READ COMMITTED each statement of a
-- plpgsql function takes a new snapshot, where one plain statement (a CTE)
-- would keep the snapshot it started with and let two `reject` runs in.
-- The call is one statement: all or nothing. Versioned by name, so a rolling
-- upgrade can run old and new code against one database.
CREATE FUNCTION openplane_create_run_v1(
  p_run_id uuid,
  p_thread_id uuid,
  p_assistant_id uuid,
  p_graph_id text,
  p_metadata jsonb,
  p_kwargs jsonb,
  p_multitask_strategy text,
  p_after_seconds float8,
  p_create_thread boolean
)
-- outcome: 'created' (the run's columns are set), 'missing' (no such thread
-- and not asked to create it) or 'conflict' (multitask `reject` with runs in
-- flight, listed in `inflight`). Nothing is written unless 'created'.
RETURNS TABLE (
  outcome text,
  inflight text[],
  run_id uuid,
  thread_id uuid,
  assistant_id uuid,
  created_at timestamptz,
  updated_at timestamptz,
  status text,
  metadata jsonb,
  kwargs jsonb,
  multitask_strategy text
)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
  v_thread_meta jsonb := jsonb_build_object('graph_id', p_graph_id, 'assistant_id', p_assistant_id);
  v_inflight text[];
BEGIN
  IF p_create_thread THEN
    INSERT INTO thread (thread_id, metadata) VALUES (p_thread_id, v_thread_meta)
    ON CONFLICT (thread_id) DO NOTHING;
  END IF;
  -- The thread's lock serialises run creation on it (and the in-flight check below).
  PERFORM 1 FROM thread t WHERE t.thread_id = p_thread_id FOR UPDATE;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'missing'::text, '{}'::text[], NULL::uuid, NULL::uuid, NULL::uuid, NULL::timestamptz,
      NULL::timestamptz, NULL::text, NULL::jsonb, NULL::jsonb, NULL::text;
    RETURN;
  END IF;
  -- Through the two partial indexes: cheap however many runs the thread has had.
  SELECT coalesce(array_agg(r.run_id::text), '{}') INTO v_inflight FROM (
    SELECT x.run_id FROM run x WHERE x.thread_id = p_thread_id AND x.status = 'running'
    UNION ALL
    SELECT x.run_id FROM run x WHERE x.thread_id = p_thread_id AND x.status = 'pending') r;
  IF p_multitask_strategy = 'reject' AND cardinality(v_inflight) > 0 THEN
    RETURN QUERY SELECT 'conflict'::text, v_inflight, NULL::uuid, NULL::uuid, NULL::uuid, NULL::timestamptz,
      NULL::timestamptz, NULL::text, NULL::jsonb, NULL::jsonb, NULL::text;
    RETURN;
  END IF;
  UPDATE thread t SET status = 'busy', updated_at = now(), metadata = t.metadata || v_thread_meta
  WHERE t.thread_id = p_thread_id;
  RETURN QUERY
  INSERT INTO run AS r (run_id, thread_id, assistant_id, created_at, metadata, kwargs, multitask_strategy)
  VALUES (p_run_id, p_thread_id, p_assistant_id, now() + make_interval(secs => p_after_seconds),
    p_metadata, p_kwargs, p_multitask_strategy)
  RETURNING 'created'::text, v_inflight, r.run_id, r.thread_id, r.assistant_id, r.created_at, r.updated_at,
    r.status, r.metadata, r.kwargs, r.multitask_strategy;
END;
$$;
