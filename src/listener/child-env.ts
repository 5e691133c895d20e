/**
 * The environment of a managed server (`openplane serve`). Everything a
 * revision needs, secrets included, travels here and never on argv, so it
 * does not show in process listings. Pure: the parent environment is a parameter.
 */
import type { DesiredDeployment } from "./types.js";

/** Variables of the listener itself: never handed to a server, not even the default one. */
export const LISTENER_ONLY = [
  "OPENPLANE_CONTROL_PLANE_URL",
  "OPENPLANE_CONTROL_PLANE_API_KEY",
  "OPENPLANE_TENANT_ID",
  "OPENPLANE_LISTENER_ID",
  "OPENPLANE_MANIFEST",
];

/** Store variables the platform sets (reserved, as on the official platform): a revision's own values are replaced. */
const PLATFORM_STORES = ["POSTGRES_URI", "DATABASE_URI", "REDIS_URI"];

/** What a server of a control-plane or manifest deployment gets from the listener's own environment. */
const BASE_PASSTHROUGH = [
  "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TMP", "TEMP",
  "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "SSL_CERT_DIR",
  "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
];

export interface PlatformEnv {
  /** URI of the deployment's database; null when it brings POSTGRES_URI_CUSTOM. */
  postgresUri: string | null;
  /** The listener's Redis (null: none); ignored when the revision brings REDIS_URI_CUSTOM. */
  redisUri: string | null;
  /** Key prefix on the shared Redis. */
  redisKeyPrefix: string;
  logLevel: string;
  logJson: boolean;
  shutdownGraceSecs: number;
}

export function buildChildEnv(parent: Record<string, string | undefined>, d: DesiredDeployment, p: PlatformEnv): Record<string, string> {
  const env: Record<string, string> = {};
  const inherited = d.inheritEnv ? Object.keys(parent) : BASE_PASSTHROUGH.concat(Object.keys(parent).filter((k) => k.startsWith("LC_")));
  for (const k of inherited) {
    const v = parent[k];
    if (v !== undefined && !LISTENER_ONLY.includes(k)) env[k] = v;
  }
  if (!d.inheritEnv) {
    env.LOG_LEVEL = p.logLevel;
    env.LOG_JSON = String(p.logJson);
    env.BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS = String(p.shutdownGraceSecs);
  }
  for (const k of ["POSTGRES_URI_CUSTOM", "REDIS_URI_CUSTOM", ...PLATFORM_STORES]) delete env[k];
  Object.assign(env, d.env);
  for (const k of PLATFORM_STORES) delete env[k];
  if (p.postgresUri !== null && !env.POSTGRES_URI_CUSTOM) env.POSTGRES_URI = p.postgresUri;
  if (!env.REDIS_URI_CUSTOM && p.redisUri) {
    env.REDIS_URI = p.redisUri;
    env.REDIS_KEY_PREFIX = p.redisKeyPrefix;
  }
  return env;
}
