-- Run creation, v2 of openplane_create_run_v1 (kept for a rolling upgrade).
-- Two additions, each saving the hot path a round trip:
-- - p_assistant_token: the assistant row's xmin as the caller read it (from
--   its cache); when the row changed or is gone since, nothing is written and
--   the outcome is 'stale' (the caller reads the assistant again). NULL skips
--   the check.
-- - p_claim_owner / p_lease_secs: a worker in the caller's process has a free
--   slot. When the thread has nothing in flight and the run is due now, the
--   run is inserted already claimed by that worker (as runs.claimNext would
--   claim it: status running, attempt 1, a lease), so no claim and no ring
--   follow. FIFO per thread and one running run per thread hold: the thread is
--   locked and has no pending or running run.
CREATE FUNCTION openplane_create_run_v2(
  p_run_id uuid,
  p_thread_id uuid,
  p_assistant_id uuid,
  p_graph_id text,
  p_metadata jsonb,
  p_kwargs jsonb,
  p_multitask_strategy text,
  p_after_seconds float8,
  p_create_thread boolean,
  p_assistant_token text,
  p_claim_owner text,
  p_lease_secs float8
)
-- outcome: 'created', 'missing', 'conflict' as in v1, or 'stale'.
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
  multitask_strategy text,
  attempt integer,
  lease_owner text,
  lease_expires_at timestamptz,
  cancel_action text
)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
  v_thread_meta jsonb := jsonb_build_object('graph_id', p_graph_id, 'assistant_id', p_assistant_id);
  v_inflight text[];
  v_claim boolean;
BEGIN
  IF p_assistant_token IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM assistant a WHERE a.assistant_id = p_assistant_id AND a.xmin::text = p_assistant_token
  ) THEN
    RETURN QUERY SELECT 'stale'::text, '{}'::text[], NULL::uuid, NULL::uuid, NULL::uuid, NULL::timestamptz,
      NULL::timestamptz, NULL::text, NULL::jsonb, NULL::jsonb, NULL::text, NULL::integer, NULL::text,
      NULL::timestamptz, NULL::text;
    RETURN;
  END IF;
  IF p_create_thread THEN
    INSERT INTO thread (thread_id, metadata) VALUES (p_thread_id, v_thread_meta)
    ON CONFLICT (thread_id) DO NOTHING;
  END IF;
  -- The thread's lock serialises run creation on it (and the in-flight check below).
  PERFORM 1 FROM thread t WHERE t.thread_id = p_thread_id FOR UPDATE;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'missing'::text, '{}'::text[], NULL::uuid, NULL::uuid, NULL::uuid, NULL::timestamptz,
      NULL::timestamptz, NULL::text, NULL::jsonb, NULL::jsonb, NULL::text, NULL::integer, NULL::text,
      NULL::timestamptz, NULL::text;
    RETURN;
  END IF;
  SELECT coalesce(array_agg(r.run_id::text), '{}') INTO v_inflight FROM (
    SELECT x.run_id FROM run x WHERE x.thread_id = p_thread_id AND x.status = 'running'
    UNION ALL
    SELECT x.run_id FROM run x WHERE x.thread_id = p_thread_id AND x.status = 'pending') r;
  IF p_multitask_strategy = 'reject' AND cardinality(v_inflight) > 0 THEN
    RETURN QUERY SELECT 'conflict'::text, v_inflight, NULL::uuid, NULL::uuid, NULL::uuid, NULL::timestamptz,
      NULL::timestamptz, NULL::text, NULL::jsonb, NULL::jsonb, NULL::text, NULL::integer, NULL::text,
      NULL::timestamptz, NULL::text;
    RETURN;
  END IF;
  v_claim := p_claim_owner IS NOT NULL AND cardinality(v_inflight) = 0 AND p_after_seconds <= 0;
  UPDATE thread t SET status = 'busy', updated_at = now(), metadata = t.metadata || v_thread_meta
  WHERE t.thread_id = p_thread_id;
  RETURN QUERY
  INSERT INTO run AS r (run_id, thread_id, assistant_id, created_at, metadata, kwargs, multitask_strategy,
    status, attempt, lease_owner, lease_expires_at, started_at)
  VALUES (p_run_id, p_thread_id, p_assistant_id, now() + make_interval(secs => p_after_seconds),
    p_metadata, p_kwargs, p_multitask_strategy,
    CASE WHEN v_claim THEN 'running' ELSE 'pending' END,
    CASE WHEN v_claim THEN 1 ELSE 0 END,
    CASE WHEN v_claim THEN p_claim_owner END,
    CASE WHEN v_claim THEN now() + make_interval(secs => p_lease_secs) END,
    CASE WHEN v_claim THEN now() END)
  RETURNING 'created'::text, v_inflight, r.run_id, r.thread_id, r.assistant_id, r.created_at, r.updated_at,
    r.status, r.metadata, r.kwargs, r.multitask_strategy, r.attempt, r.lease_owner, r.lease_expires_at,
    r.cancel_action;
END;
$$;
