/** The page, order and projection of a search (threads, crons): api.md's shared search fields. */
export interface SearchPage<SortField extends string, Field extends string> {
  limit: number;
  offset: number;
  sort_by: SortField;
  sort_order: "asc" | "desc";
  select?: readonly Field[];
}
