/**
 * In-memory state of the control-plane emulator: listeners, deployments,
 * revisions, and every status the listener wrote back (in order).
 */
import { randomUUID } from "node:crypto";

export interface SecretInput {
  name: string;
  value: string;
}

export interface RevisionConfig {
  image_uri?: string | null;
  source_tarball_path?: string | null;
  langgraph_config_path?: string | null;
  repo_ref?: string | null;
}

export interface Deployment {
  id: string;
  tenant_id: string;
  name: string;
  source: string;
  source_config: { listener_id: string | null; custom_url?: string | null; [k: string]: unknown };
  source_revision_config: RevisionConfig;
  secrets: SecretInput[];
  status: string;
  status_message: string | null;
  latest_revision_id: string | null;
  active_revision_id: string | null;
  image_version: string | null;
  created_at: string;
  updated_at: string;
}

export interface Revision {
  id: string;
  deployment_id: string;
  status: string;
  status_message: string | null;
  observed_at: string | null;
  source: string;
  source_revision_config: RevisionConfig;
  created_at: string;
  updated_at: string;
}

export interface Listener {
  id: string;
  compute_type: "k8s";
  compute_id: string;
  compute_config: { k8s_namespaces: string[] };
  version: string | null;
  created_at: string;
  updated_at: string;
}

export interface StatusReport {
  kind: "revision" | "deployment";
  deployment_id: string;
  revision_id: string | null;
  status: string;
  message: string;
  active_revision_id?: string | null;
  observed_at: string;
  listener_id: string;
  received_at: number;
}

export interface CreateDeploymentInput {
  name: string;
  source?: string;
  source_config: { listener_id: string | null; custom_url?: string | null };
  source_revision_config: RevisionConfig;
  secrets?: SecretInput[];
}

export interface PatchDeploymentInput {
  source_revision_config?: RevisionConfig;
  secrets?: SecretInput[];
}

const now = () => new Date().toISOString();

export class EmulatorStore {
  readonly listeners = new Map<string, Listener>();
  readonly deployments = new Map<string, Deployment>();
  readonly revisions = new Map<string, Revision[]>();
  readonly reports: StatusReport[] = [];
  /** When each revision was created (ms), to measure created → serving. */
  readonly revisionCreatedAt = new Map<string, number>();

  constructor(readonly tenantId: string) {}

  addListener(id: string = randomUUID(), computeId = "openplane"): Listener {
    const l: Listener = { id, compute_type: "k8s", compute_id: computeId, compute_config: { k8s_namespaces: ["default"] }, version: null, created_at: now(), updated_at: now() };
    this.listeners.set(id, l);
    return l;
  }

  createDeployment(input: CreateDeploymentInput): Deployment {
    const d: Deployment = {
      id: randomUUID(),
      tenant_id: this.tenantId,
      name: input.name,
      source: input.source ?? "internal_source",
      source_config: { ...input.source_config },
      source_revision_config: { ...input.source_revision_config },
      secrets: [...(input.secrets ?? [])],
      status: "AWAITING_DATABASE",
      status_message: null,
      latest_revision_id: null,
      active_revision_id: null,
      image_version: null,
      created_at: now(),
      updated_at: now(),
    };
    this.deployments.set(d.id, d);
    this.revisions.set(d.id, []);
    this.newRevision(d);
    return d;
  }

  /** A changed source_revision_config or new secrets make a new revision (as the real API does). */
  patchDeployment(id: string, patch: PatchDeploymentInput): Deployment | null {
    const d = this.deployments.get(id);
    if (!d) return null;
    const config = patch.source_revision_config;
    const changesRevision = Object.values(config ?? {}).some((v) => v !== null && v !== undefined) || patch.secrets !== undefined;
    if (config) d.source_revision_config = { ...d.source_revision_config, ...config };
    if (patch.secrets) d.secrets = [...patch.secrets];
    d.updated_at = now();
    if (changesRevision) this.newRevision(d);
    return d;
  }

  deleteDeployment(id: string): boolean {
    this.revisions.delete(id);
    return this.deployments.delete(id);
  }

  private newRevision(d: Deployment): Revision {
    const r: Revision = {
      id: randomUUID(),
      deployment_id: d.id,
      status: "AWAITING_DEPLOY",
      status_message: null,
      observed_at: null,
      source: d.source,
      source_revision_config: { ...d.source_revision_config },
      created_at: now(),
      updated_at: now(),
    };
    this.revisions.get(d.id)!.unshift(r);
    this.revisionCreatedAt.set(r.id, Date.now());
    d.latest_revision_id = r.id;
    return r;
  }

  revision(deploymentId: string, revisionId: string): Revision | null {
    return this.revisions.get(deploymentId)?.find((r) => r.id === revisionId) ?? null;
  }
}
