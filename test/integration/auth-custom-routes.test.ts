/**
 * langgraph.json `http` (test/fixtures/auth/custom-routes): a Hono app whose
 * routes come before the built-in ones (a new route, one taking over a
 * built-in path) and whose middleware wraps the built-in routes too;
 * `disable_*`, `cors` merged with the environment; custom routes are
 * authenticated only with `enable_custom_route_auth`, and `auth_first` runs
 * auth before the custom middleware without authenticating custom routes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCustomAuth } from "../../src/auth/load.js";
import type { AuthProvider } from "../../src/auth/types.js";
import { readLanggraphConfig } from "../../src/graphs/config-file.js";
import type { LanggraphConfig } from "../../src/graphs/config-file.js";
import { createApp } from "../../src/http/app.js";
import { loadCustomApp } from "../../src/http/custom-app.js";
import type { CustomRoutes } from "../../src/http/deps.js";
import { createTestStack } from "../helpers/app.js";
import type { TestStack } from "../helpers/app.js";
import { createTestDatabase } from "../helpers/services.js";
import type { TestDatabase } from "../helpers/services.js";

const CONFIG = "test/fixtures/auth/custom-routes/langgraph.json";
const ALICE = { Authorization: "Bearer alice-token" };

let db: TestDatabase;
let stack: TestStack;
let file: LanggraphConfig;
let auth: AuthProvider;
let customApp: CustomRoutes["app"];

beforeAll(async () => {
  db = await createTestDatabase("auth_routes");
  stack = await createTestStack({ postgresUri: db.uri, configPath: CONFIG, worker: false });
  file = await readLanggraphConfig(CONFIG);
  auth = await loadCustomAuth(file.auth!.module!.file, file.auth!.module!.exportName);
  customApp = await loadCustomApp(file.http!.app!.file, file.http!.app!.exportName);
});
afterAll(async () => {
  await stack?.close();
  await db?.drop();
});

/** The app as src/bin builds it from the fixture's langgraph.json, with overrides. */
function appWith(opts: { enableCustomRouteAuth?: boolean; middlewareOrder?: "middleware_first" | "auth_first"; withAuth?: boolean; prefix?: string } = {}) {
  const h = file.http!;
  return createApp({
    ...stack.deps,
    auth: opts.withAuth === false ? null : auth,
    http: {
      mountPrefix: opts.prefix ?? "",
      corsAllowOrigins: ["https://env.example"],
      corsAllowCredentials: false,
      allowPrivateNetwork: false,
      enableTruncate: false,
      disable: h.disable,
      cors: h.cors,
      custom: {
        app: customApp,
        enableCustomRouteAuth: opts.enableCustomRouteAuth ?? h.enableCustomRouteAuth,
        middlewareOrder: opts.middlewareOrder ?? h.middlewareOrder,
      },
    },
  });
}

describe("custom routes (http.app)", () => {
  it("serves new routes; takes over a built-in path; unknown paths stay 404 JSON", async () => {
    const app = appWith({ withAuth: false });
    const hello = await app.request("/custom/hello");
    expect(hello.status).toBe(200);
    expect(await hello.json()).toEqual({ hello: "world", user: null });
    const search = await app.request("/threads/search", { method: "POST", body: "{}" });
    expect(await search.json()).toEqual([{ overridden: true }]);
    // Other built-in routes are untouched.
    expect((await app.request("/threads/count", { method: "POST", body: "{}" })).status).toBe(200);
    const missing = await app.request("/nothing/here");
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ detail: "Not Found" });
  });

  it("the custom middleware wraps built-in routes (a header on /info) and can answer for them", async () => {
    const app = appWith({ withAuth: false });
    const info = await app.request("/info");
    expect(info.headers.get("x-custom-middleware")).toBe("yes");
    expect(await info.json()).toMatchObject({ flags: { crons: true } });
    expect(await (await app.request("/info?interrupt")).json()).toEqual({ interrupted: true });
    expect((await app.request("/nothing/here")).headers.get("x-custom-middleware")).toBe("yes");
  });

  it("works under MOUNT_PREFIX", async () => {
    const app = appWith({ withAuth: false, prefix: "/lg" });
    expect(await (await app.request("/lg/custom/hello")).json()).toMatchObject({ hello: "world" });
    expect((await app.request("/lg/info")).headers.get("x-custom-middleware")).toBe("yes");
    expect((await app.request("/custom/hello")).status).toBe(404);
  });

  it("http.disable_store switches the store routes off", async () => {
    const app = appWith({ withAuth: false });
    expect((await app.request("/store/items/search", { method: "POST", body: "{}" })).status).toBe(404);
    expect((await app.request("/assistants/search", { method: "POST", body: "{}" })).status).toBe(200);
  });

  it("http.cors is merged over the environment: its origins, our exposed headers plus its own", async () => {
    const app = appWith({ withAuth: false });
    const res = await app.request("/info", { headers: { Origin: "https://file.example" } });
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe("https://file.example");
    const exposed = res.headers.get("Access-Control-Expose-Headers") ?? "";
    expect(exposed).toContain("Content-Location");
    expect(exposed).toContain("x-custom-middleware");
    const other = await app.request("/info", { headers: { Origin: "https://env.example" } });
    expect(other.headers.get("Access-Control-Allow-Origin")).toBeNull();
  });
});

describe("custom routes and auth", () => {
  it("by default custom routes are not authenticated; built-in routes are", async () => {
    const app = appWith();
    expect((await app.request("/custom/hello")).status).toBe(200);
    expect((await app.request("/threads/count", { method: "POST", body: "{}" })).status).toBe(401);
    expect((await app.request("/threads/count", { method: "POST", body: "{}", headers: ALICE })).status).toBe(200);
    expect((await app.request("/info")).status).toBe(200);
  });

  it("enable_custom_route_auth authenticates custom routes too", async () => {
    const app = appWith({ enableCustomRouteAuth: true });
    const res = await app.request("/custom/hello");
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ detail: "Missing bearer token" });
    const ok = await app.request("/custom/hello", { headers: ALICE });
    expect(await ok.json()).toMatchObject({ hello: "world", user: { user: { identity: "alice" } } });
  });

  it("auth_first authenticates before the custom middleware, still without closing custom routes", async () => {
    const app = appWith({ middlewareOrder: "auth_first" });
    // The custom route answers, and sees the user when the credentials were good.
    expect(await (await app.request("/custom/hello")).json()).toMatchObject({ user: null });
    expect(await (await app.request("/custom/hello", { headers: ALICE })).json()).toMatchObject({ user: { user: { identity: "alice" } } });
    const refused = await app.request("/threads/count", { method: "POST", body: "{}" });
    expect(refused.status).toBe(401);
    expect(await refused.json()).toEqual({ detail: "Missing bearer token" });
  });
});
