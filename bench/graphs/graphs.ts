/**
 * The graphs every bench target runs: the servers load them through bench/langgraph.json,
 * the in-process floor compiles the same builders with its own checkpointer.
 *
 * - `trivial`: one node, a few bytes of state. Measures the platform, not the graph.
 * - `tenstep`: ten nodes in a row; each rewrites a ~10 KB string, so every step's
 *   checkpoint carries a new ~10 KB blob (not compressible: TOAST would hide the cost).
 */
import { Annotation, END, START, StateGraph } from "@langchain/langgraph";

const TrivialState = Annotation.Root({
  n: Annotation<number>({ reducer: (_a, b) => b, default: () => 0 }),
});

export const trivialBuilder = new StateGraph(TrivialState)
  .addNode("one", (s) => ({ n: s.n + 1 }))
  .addEdge(START, "one")
  .addEdge("one", END);

export const trivial = trivialBuilder.compile();

/** ~10 KB of pseudo-random base64 (fixed seed): rotating it gives a new, incompressible value. */
const PAYLOAD_BYTES = 10 * 1024;
const BASE = (() => {
  let x = 0x2545f491;
  const bytes = Buffer.alloc((PAYLOAD_BYTES * 3) / 4);
  for (let i = 0; i < bytes.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes.toString("base64");
})();
const rotate = (s: string, k: number) => s.slice(k % s.length) + s.slice(0, k % s.length);

const TenStepState = Annotation.Root({
  step: Annotation<number>({ reducer: (_a, b) => b, default: () => 0 }),
  payload: Annotation<string>({ reducer: (_a, b) => b, default: () => "" }),
});

const STEPS = 10;
let tenBuilder = new StateGraph(TenStepState) as unknown as StateGraph<typeof TenStepState.spec, any, any, string>;
for (let i = 1; i <= STEPS; i++) {
  tenBuilder = tenBuilder.addNode(`s${i}`, (s: { step: number }) => ({ step: s.step + 1, payload: rotate(BASE, (s.step + 1) * 97) }));
}
tenBuilder = tenBuilder.addEdge(START, "s1");
for (let i = 1; i < STEPS; i++) tenBuilder = tenBuilder.addEdge(`s${i}`, `s${i + 1}`);
tenBuilder = tenBuilder.addEdge(`s${STEPS}`, END);

export const tenstepBuilder = tenBuilder;
export const tenstep = tenstepBuilder.compile();

export const GRAPH_STEPS = { trivial: 1, tenstep: STEPS } as const;
export const PAYLOAD_SIZE = BASE.length;
