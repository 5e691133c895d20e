import postgres from "postgres";

export type Sql = postgres.Sql<{}>;

/**
 * Our own pool (postgres.js). The checkpointer has its own `pg` pool; both are
 * sized together from LANGGRAPH_POSTGRES_POOL_MAX_SIZE by the caller.
 */
export function createSql(uri: string, max: number): Sql {
  return postgres(uri, {
    max,
    idle_timeout: 30,
    connect_timeout: 10,
    onnotice: () => {},
    // jsonb stays parsed; timestamps come back as ISO strings for the API.
    types: {
      date: {
        to: 1184,
        from: [1082, 1114, 1184],
        serialize: (x: Date | string) => (x instanceof Date ? x.toISOString() : x),
        parse: (x: string) => new Date(x).toISOString(),
      },
    },
  }) as unknown as Sql;
}
