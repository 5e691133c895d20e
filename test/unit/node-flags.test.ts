import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SERVER_NODE_FLAGS, serverNodeFlags } from "../../src/lib/node-flags.js";
import { REPO_ROOT } from "../helpers/cli.js";

describe("the Node flags of our servers", () => {
  it("are added when NODE_OPTIONS does not set them", () => {
    expect(serverNodeFlags(undefined)).toEqual([...SERVER_NODE_FLAGS]);
    expect(serverNodeFlags("")).toEqual([...SERVER_NODE_FLAGS]);
    expect(serverNodeFlags("--max-old-space-size=4096 --enable-source-maps")).toEqual([...SERVER_NODE_FLAGS]);
  });

  it("leave out a flag NODE_OPTIONS sets, in either spelling (the operator's value wins)", () => {
    expect(serverNodeFlags("--max-semi-space-size=16")).toEqual([]);
    expect(serverNodeFlags("  --enable-source-maps   --max_semi_space_size=8 ")).toEqual([]);
    // A prefix of another flag's name is not that flag.
    expect(serverNodeFlags("--max-semi-space-size-x=1")).toEqual([...SERVER_NODE_FLAGS]);
  });

  it("are the image's NODE_OPTIONS", () => {
    const dockerfile = readFileSync(join(REPO_ROOT, "Dockerfile"), "utf8");
    const set = /NODE_OPTIONS="([^"]*)"/.exec(dockerfile)?.[1];
    expect(set?.split(/\s+/)).toEqual([...SERVER_NODE_FLAGS]);
  });
});
