-- A run's end in one round trip, with the thread locked first. As one plain
-- statement (a CTE) the next-pending read kept the snapshot the statement
-- started with: a run created on the thread while the finish waited for the
-- thread's lock was not seen, so the thread was marked idle with a run
-- pending and nobody rang for it. Here every statement after the lock takes a
-- new snapshot (READ COMMITTED), as in openplane_create_run_v1.
CREATE FUNCTION openplane_finish_run_v1(
  p_run_id uuid,
  p_owner text,
  p_status text,
  p_set_values boolean,
  p_values jsonb,
  p_interrupts jsonb,
  p_error jsonb,
  p_has_pending_next boolean
)
-- No row: this owner no longer holds the run. Otherwise the thread and its
-- next pending run (null when none), which the caller rings for.
RETURNS TABLE (thread_id uuid, next_run_id uuid, next_attempt integer, next_delay_ms integer)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
  v_thread uuid;
  v_next record;
BEGIN
  SELECT r.thread_id INTO v_thread FROM run r WHERE r.run_id = p_run_id;
  IF v_thread IS NULL THEN
    RETURN;
  END IF;
  PERFORM 1 FROM thread t WHERE t.thread_id = v_thread FOR UPDATE;
  UPDATE run r SET status = p_status, ended_at = now(), updated_at = now(), lease_owner = NULL, lease_expires_at = NULL
  WHERE r.run_id = p_run_id AND r.lease_owner = p_owner AND r.status = 'running';
  IF NOT FOUND THEN
    RETURN;
  END IF;
  SELECT x.run_id, x.attempt, greatest(0, extract(epoch FROM x.created_at - now()) * 1000)::integer AS delay_ms
  INTO v_next
  FROM run x WHERE x.thread_id = v_thread AND x.status = 'pending'
  ORDER BY x.created_at, x.run_id LIMIT 1;
  -- Busy while runs remain, else error, interrupted or idle.
  UPDATE thread t SET
    status = CASE
      WHEN v_next.run_id IS NOT NULL THEN 'busy'
      WHEN p_status IN ('error', 'timeout') THEN 'error'
      WHEN p_has_pending_next THEN 'interrupted'
      ELSE 'idle' END,
    updated_at = now(),
    "values" = CASE WHEN p_set_values THEN p_values ELSE t."values" END,
    state_updated_at = CASE WHEN p_set_values THEN now() ELSE t.state_updated_at END,
    interrupts = p_interrupts,
    error = p_error
  WHERE t.thread_id = v_thread;
  RETURN QUERY SELECT v_thread, v_next.run_id, v_next.attempt, v_next.delay_ms;
END;
$$;
