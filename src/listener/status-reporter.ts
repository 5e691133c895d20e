/**
 * Status write-back. With a control plane, our own small contract (see
 * docs/listener.md, "Write-back contract"):
 *
 *   PUT {base}/v2/deployments/{id}/revisions/{revision_id}/status
 *       {status, message, observed_at, listener_id}
 *   PUT {base}/v2/deployments/{id}/status
 *       {status, active_revision_id, message, observed_at, listener_id}
 *
 * Both are keyed by the ids in the path and safe to repeat. A 404 means the
 * deployment or revision is gone: nothing left to report. Without a control
 * plane, status changes are logged.
 */
import type { Logger } from "../lib/logger.js";
import type { ControlPlaneClient } from "./sources/control-plane.js";
import type { DeploymentStatus, RevisionStatus } from "./types.js";

export interface StatusReporter {
  revision(deploymentId: string, revisionId: string, status: RevisionStatus, message: string): Promise<void>;
  deployment(deploymentId: string, status: DeploymentStatus, activeRevisionId: string | null, message: string): Promise<void>;
}

export function controlPlaneReporter(client: ControlPlaneClient, listenerId: string, now: () => Date = () => new Date()): StatusReporter {
  const enc = encodeURIComponent;
  const put = async (path: string, body: Record<string, unknown>) => {
    try {
      await client.call("PUT", path, { ...body, observed_at: now().toISOString(), listener_id: listenerId });
    } catch (err) {
      if ((err as { status?: number }).status === 404) return;
      throw err;
    }
  };
  return {
    revision: (d, r, status, message) => put(`/v2/deployments/${enc(d)}/revisions/${enc(r)}/status`, { status, message }),
    deployment: (d, status, active, message) =>
      put(`/v2/deployments/${enc(d)}/status`, { status, active_revision_id: active, message }),
  };
}

export function logReporter(logger: Logger): StatusReporter {
  return {
    async revision(deployment, revision, status, message) {
      const fields = { deployment, revision, status, ...(message ? { message } : {}) };
      if (status === "DEPLOY_FAILED") logger.warn(fields, "revision status");
      else logger.info(fields, "revision status");
    },
    async deployment(deployment, status, active, message) {
      logger.info({ deployment, status, active_revision: active, ...(message ? { message } : {}) }, "deployment status");
    },
  };
}
