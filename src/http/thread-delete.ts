import type { AppDeps } from "./deps.js";

/**
 * Deletes a thread with its runs (cascade) and checkpoints; a run executing
 * on it is told to stop. Returns false when the thread did not exist.
 */
export async function deleteThread(deps: AppDeps, threadId: string): Promise<boolean> {
  const running = await deps.runs.running(threadId);
  if (!(await deps.threads.delete(threadId))) return false;
  await Promise.all(running.map((id) => deps.bus.sendControl(id, "interrupt")));
  await deps.deleteCheckpoints(threadId);
  return true;
}
