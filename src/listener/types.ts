/**
 * The listener's vocabulary: what a source says should run (desired), what the
 * driver and gateway report (actual), and the actions `plan()` derives from
 * the two. Pure data; no I/O here.
 */

/** Where a revision's code comes from. */
export type RevisionSource =
  /** A local directory holding the project; `configFile` is relative to it (default langgraph.json). */
  | { kind: "directory"; path: string; configFile: string }
  /** A .tar.gz (or .tar) at an http(s):// or file:// URL or an absolute path; fetched, unpacked, `npm ci` if locked. */
  | { kind: "tarball"; url: string; configFile: string }
  /** A container image: not runnable by the process driver (reported as DEPLOY_FAILED). */
  | { kind: "image"; imageUri: string }
  /** Nothing this driver can run (e.g. no source given): fails with `reason`. */
  | { kind: "unsupported"; reason: string };

export interface DesiredDeployment {
  /** Stable id (the control plane's deployment id, the manifest name, or "default"). */
  id: string;
  /** URL-safe name: the gateway serves the deployment under /<name>/. */
  name: string;
  /** The revision that should serve. A new id means a new server (rolling change). */
  revisionId: string;
  source: RevisionSource;
  /** Environment of the revision, secrets included. Never logged, never on argv. */
  env: Record<string, string>;
  /** Names in `env` whose values are secret (their values are redacted from logs and messages). */
  secretNames: string[];
  /** Host names that route to this deployment (whole path forwarded). */
  hosts: string[];
  /** Also served at the gateway's root path (the default deployment made from ./langgraph.json). */
  root: boolean;
  /** The server inherits the listener's own environment (default deployment only). */
  inheritEnv: boolean;
}

/** Where a deployment's data lives. */
export type DatabaseChoice =
  /** A database we create on the listener's PostgreSQL (and may drop after deletion + retention). */
  | { kind: "managed"; name: string }
  /** The deployment's own POSTGRES_URI_CUSTOM: never created or dropped by us. */
  | { kind: "custom" }
  /** The listener's PostgreSQL URI as given (the default deployment: what `npm start` always used). */
  | { kind: "listener" };

export type WorkloadState =
  /** Preparing the source, spawned, or waiting for /ok. */
  | "starting"
  /** Answers /ok: may receive traffic. */
  | "healthy"
  /** Exited unexpectedly; waiting out the backoff before the next start. */
  | "restarting"
  /** Draining after SIGTERM. */
  | "stopping"
  /** Gave up (repeated failures or a deterministic error); `message` says why. */
  | "failed";

/** One running (or trying to run) server of one revision, as the driver sees it. */
export interface WorkloadStatus {
  deploymentId: string;
  revisionId: string;
  state: WorkloadState;
  /** Base URL of the server while it has one (http://127.0.0.1:<port>). */
  url: string | null;
  pid: number | null;
  /** Restarts after unexpected exits, since the workload was started. */
  restarts: number;
  message: string | null;
}

/** What the gateway does for one deployment. */
export interface RouteSpec {
  deploymentId: string;
  name: string;
  hosts: string[];
  root: boolean;
  /** The revision receiving traffic (null: none). */
  revisionId: string | null;
  /** Upstream base URL; null with `unavailable` null = hold requests until one is set. */
  upstream: string | null;
  /** Set: answer 503 with this message instead of holding. */
  unavailable: string | null;
}

export interface ScheduledDrop {
  deploymentId: string;
  database: string;
  /** Epoch ms after which the database may be dropped. */
  dropAt: number;
}

/** Revision statuses we write back (a subset of the control plane's). */
export type RevisionStatus = "DEPLOYING" | "DEPLOYED" | "DEPLOY_FAILED";
/** Deployment statuses we write back. */
export type DeploymentStatus = "AWAITING_DATABASE" | "READY" | "UNKNOWN";

export interface ActualState {
  now: number;
  workloads: WorkloadStatus[];
  routes: RouteSpec[];
  /** Databases we created, by deployment id. */
  databases: Record<string, { name: string }>;
  drops: ScheduledDrop[];
  /** Revisions given up on, with the reason. */
  failed: Record<string, string>;
  /** Last status written back per key ("rev:<id>", "dep:<id>") → signature. */
  reported: Record<string, string>;
  /** Per deployment, the last revision that served healthy: the fallback when a newer one fails. */
  active: Record<string, DesiredDeployment>;
}

export interface PlanOptions {
  /** How long a deleted deployment's database is kept. */
  retentionMs: number;
  /** Deployment ids whose servers cannot overlap (no Redis: one process per database). */
  exclusive: ReadonlySet<string>;
}

export type Action =
  | { type: "ensure-database"; deploymentId: string; database: string }
  | { type: "start"; deployment: DesiredDeployment }
  | { type: "stop"; deploymentId: string; revisionId: string; reason: string }
  | { type: "set-route"; route: RouteSpec }
  | { type: "remove-route"; deploymentId: string }
  | { type: "mark-failed"; revisionId: string; message: string }
  | { type: "report-revision"; deploymentId: string; revisionId: string; status: RevisionStatus; message: string; signature: string }
  | { type: "report-deployment"; deploymentId: string; status: DeploymentStatus; activeRevisionId: string | null; message: string; signature: string }
  | { type: "schedule-drop"; drop: ScheduledDrop }
  | { type: "cancel-drop"; deploymentId: string }
  | { type: "drop-database"; deploymentId: string; database: string }
  | { type: "remember-active"; deployment: DesiredDeployment }
  | { type: "forget-active"; deploymentId: string };
