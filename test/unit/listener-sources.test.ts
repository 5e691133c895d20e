/**
 * The pure parts of the desired-state sources: a YAML manifest and the
 * control plane's v2 resources, each turned into DesiredDeployments.
 */
import { describe, expect, it } from "vitest";
import { pickRevision, revisionSource, routeName, toDesired } from "../../src/listener/sources/control-plane-model.js";
import { defaultDeployment } from "../../src/listener/sources/langgraph-json.js";
import { parseManifest } from "../../src/listener/sources/manifest.js";

describe("manifest", () => {
  const text = `
deployments:
  - name: agent
    source: { directory: ./agent }
    env: { LOG_LEVEL: debug, N_JOBS_PER_WORKER: 2 }
    secrets: { OPENAI_API_KEY: sk-123456 }
    hosts: [agent.example.com]
  - name: packed
    revision: 7
    source: { tarball: https://example.com/packed.tgz, config: app/langgraph.json }
  - name: boxed
    source: { image: ghcr.io/acme/boxed:1 }
`;

  it("maps each entry to a deployment; relative paths resolve against the manifest's directory", () => {
    const [agent, packed, boxed] = parseManifest(text, "/etc/openplane");
    expect(agent).toMatchObject({
      id: "agent",
      name: "agent",
      source: { kind: "directory", path: "/etc/openplane/agent", configFile: "langgraph.json" },
      env: { LOG_LEVEL: "debug", N_JOBS_PER_WORKER: "2", OPENAI_API_KEY: "sk-123456" },
      secretNames: ["OPENAI_API_KEY"],
      hosts: ["agent.example.com"],
      root: false,
      inheritEnv: false,
    });
    expect(packed).toMatchObject({ revisionId: "packed@7", source: { kind: "tarball", url: "https://example.com/packed.tgz", configFile: "app/langgraph.json" } });
    expect(boxed!.source).toEqual({ kind: "image", imageUri: "ghcr.io/acme/boxed:1" });
  });

  it("without an explicit revision, any change of source, env or secrets makes a new revision id; none keeps it", () => {
    const base = parseManifest(text, "/m")[0]!.revisionId;
    expect(parseManifest(text, "/m")[0]!.revisionId).toBe(base);
    expect(parseManifest(text.replace("sk-123456", "sk-654321"), "/m")[0]!.revisionId).not.toBe(base);
    expect(parseManifest(text.replace("debug", "info"), "/m")[0]!.revisionId).not.toBe(base);
    expect(base).toMatch(/^agent@[0-9a-f]{12}$/);
    expect(base).not.toContain("sk-");
  });

  it("an explicit empty list is an empty desired state; an empty file is an error (it may be half-written)", () => {
    expect(parseManifest("deployments: []", "/m")).toEqual([]);
    expect(() => parseManifest("", "/m")).toThrow(/empty/);
    expect(() => parseManifest("# nothing\n", "/m")).toThrow(/deployments/);
  });

  it.each([
    ["a duplicate name", "deployments: [{name: a, source: {directory: x}}, {name: a, source: {directory: y}}]", /unique/],
    ["a name that would shadow an API path", "deployments: [{name: threads, source: {directory: x}}]", /deployments.0.name/],
    ["an upper-case name", "deployments: [{name: Agent, source: {directory: x}}]", /deployments.0.name/],
    ["two sources", "deployments: [{name: a, source: {directory: x, image: y}}]", /exactly one/],
    ["an unknown key", "deployments: [{name: a, source: {directory: x}, replicas: 3}]", /replicas|Unrecognized/],
    ["not YAML", "deployments: [", /.+/],
  ])("rejects %s (so the last good state stays)", (_n, bad, message) => {
    expect(() => parseManifest(bad, "/m")).toThrow(message);
  });
});

describe("control-plane resources", () => {
  const deployment = {
    id: "0b38e236-c02b-4553-bf4e-fa07454c7d50",
    name: "My Agent",
    source: "internal_source",
    source_config: { listener_id: "L1", custom_url: "https://agent.example.com/" },
    source_revision_config: { source_tarball_path: "https://files.example.com/a.tgz?sig=abc" },
    secrets: [{ name: "OPENAI_API_KEY", value: "sk-x" }],
    latest_revision_id: "r2",
  };

  it("maps a deployment at a revision: secrets become env (and are marked secret), custom_url a Host route", () => {
    const d = toDesired(deployment, { id: "r2", source_revision_config: { source_tarball_path: "https://files.example.com/b.tgz" } });
    expect(d).toEqual({
      id: deployment.id,
      name: "my-agent",
      revisionId: "r2",
      source: { kind: "tarball", url: "https://files.example.com/b.tgz", configFile: "langgraph.json" },
      env: { OPENAI_API_KEY: "sk-x" },
      secretNames: ["OPENAI_API_KEY"],
      hosts: ["agent.example.com"],
      root: false,
      inheritEnv: false,
    });
  });

  it.each([
    [{ image_uri: "docker.io/acme/agent:2" }, { kind: "image", imageUri: "docker.io/acme/agent:2" }],
    [{ source_tarball_path: "/srv/a.tgz", langgraph_config_path: "sub/langgraph.json" }, { kind: "tarball", url: "/srv/a.tgz", configFile: "sub/langgraph.json" }],
    [{ langgraph_config_path: "/srv/agent/langgraph.json" }, { kind: "directory", path: "/srv/agent", configFile: "langgraph.json" }],
  ])("revision config %j → %j", (config, expected) => {
    expect(revisionSource(config)).toEqual(expected);
  });

  it("a revision with nothing runnable is unsupported, with a reason", () => {
    expect(revisionSource({ repo_ref: "main", langgraph_config_path: "langgraph.json" })).toMatchObject({ kind: "unsupported", reason: expect.stringMatching(/source_tarball_path/) });
  });

  it("runs the deployment's latest revision, else the newest listed", () => {
    const revs = [{ id: "r3" }, { id: "r2" }, { id: "r1" }];
    expect(pickRevision(deployment, revs)!.id).toBe("r2");
    expect(pickRevision({ ...deployment, latest_revision_id: null }, revs)!.id).toBe("r3");
    expect(pickRevision(deployment, [])).toBeNull();
  });

  it.each([
    ["agent", "agent"],
    ["My Agent v2", "my-agent-v2"],
    ["threads", "threads-app"],
    ["---", "deployment"],
  ])("route name of %j is %j", (name, expected) => expect(routeName(name)).toBe(expected));
});

describe("the default deployment (./langgraph.json)", () => {
  it("is served at the root, inherits the environment, and keeps its revision for the same file", () => {
    const d = defaultDeployment("/work/app/langgraph.json");
    expect(d).toMatchObject({ id: "default", name: "default", root: true, inheritEnv: true, env: {}, source: { kind: "directory", path: "/work/app", configFile: "langgraph.json" } });
    expect(defaultDeployment("/work/app/langgraph.json").revisionId).toBe(d.revisionId);
  });
});
