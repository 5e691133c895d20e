-- The claim (runs.claimNext, openplane_finish_run_v2) orders pending runs by
-- (created_at, run_id) and takes the first eligible one. On an index of
-- created_at alone PostgreSQL read every pending run and sorted them for
-- each claim, so a claim cost grew with the backlog; on this one it reads in
-- order and stops at the first run it can take. The build scans the run table
-- once; writers to it wait until it is done.
CREATE INDEX run_pending_fifo ON run (created_at, run_id) WHERE status = 'pending';
DROP INDEX run_pending_by_time;
