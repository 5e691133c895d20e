import { createHash, timingSafeEqual } from "node:crypto";
import { AuthRejection } from "./errors.js";
import type { AuthContext, AuthProvider } from "./types.js";

/** SHA-256 of a key, hex: what the configuration keeps instead of the key itself. */
export const apiKeyDigest = (key: string): string => createHash("sha256").update(key, "utf8").digest("hex");

/**
 * LANGGRAPH_AUTH_TYPE=api_key: every request (except the open routes) must
 * carry one of OPENPLANE_API_KEYS in `x-api-key` or `Authorization: Bearer`.
 * Keys are compared as SHA-256 digests with timingSafeEqual, against every
 * configured key, so neither a key's length nor its position leaks through
 * timing. The user is `api-key-<n>` (the key's position in the list), never
 * the key. No authorization handlers: an accepted key may do everything.
 */
export function createApiKeyAuth(digestsHex: readonly string[]): AuthProvider {
  const digests = digestsHex.map((d) => Buffer.from(d, "hex"));
  return {
    kind: "api_key",
    async authenticate(request: Request): Promise<AuthContext> {
      const presented = keyOf(request);
      if (!presented) throw new AuthRejection(401, "Missing API key: send it in the x-api-key header or as Authorization: Bearer <key>");
      const candidate = createHash("sha256").update(presented, "utf8").digest();
      let match = -1;
      digests.forEach((d, i) => {
        if (timingSafeEqual(d, candidate) && match < 0) match = i;
      });
      if (match < 0) throw new AuthRejection(401, "Invalid API key");
      const identity = `api-key-${match + 1}`;
      return { user: { identity, display_name: identity, permissions: [], is_authenticated: true }, permissions: [] };
    },
    async authorize() {
      return null;
    },
  };
}

function keyOf(request: Request): string | null {
  const header = request.headers.get("x-api-key")?.trim();
  if (header) return header;
  const authorization = request.headers.get("authorization")?.trim() ?? "";
  const m = /^Bearer\s+(.+)$/i.exec(authorization);
  return m?.[1]?.trim() || null;
}
