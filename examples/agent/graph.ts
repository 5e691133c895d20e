/**
 * Example graphs served by `npm start`. No API keys needed: the "model" is a
 * deterministic fake that streams its reply token by token, so every stream
 * mode (values, updates, messages-tuple) has something to show.
 */
import { AIMessage } from "@langchain/core/messages";
import type { BaseMessage } from "@langchain/core/messages";
import { FakeListChatModel } from "@langchain/core/utils/testing";
import { Annotation, END, MessagesAnnotation, START, StateGraph } from "@langchain/langgraph";

const lastText = (messages: BaseMessage[]): string => {
  const last = messages.at(-1);
  return typeof last?.content === "string" ? last.content : JSON.stringify(last?.content ?? "");
};

/** A chat agent that echoes the last message back. */
export const graph = new StateGraph(MessagesAnnotation)
  .addNode("agent", async (state, config) => {
    const model = new FakeListChatModel({ responses: [`You said: ${lastText(state.messages)}`] });
    const reply = await model.invoke(state.messages, config);
    return { messages: [new AIMessage({ content: reply.content, id: reply.id })] };
  })
  .addEdge(START, "agent")
  .addEdge("agent", END)
  .compile();

const CounterState = Annotation.Root({
  count: Annotation<number>({ reducer: (a, b) => a + b, default: () => 0 }),
  steps: Annotation<string[]>({ reducer: (a, b) => [...a, ...b], default: () => [] }),
});

/** Three steps that each add to a counter: handy to watch `updates` and checkpoints. */
export const counter = new StateGraph(CounterState)
  .addNode("one", () => ({ count: 1, steps: ["one"] }))
  .addNode("two", () => ({ count: 1, steps: ["two"] }))
  .addNode("three", () => ({ count: 1, steps: ["three"] }))
  .addEdge(START, "one")
  .addEdge("one", "two")
  .addEdge("two", "three")
  .addEdge("three", END)
  .compile();
