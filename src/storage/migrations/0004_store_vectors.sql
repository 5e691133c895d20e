-- 0004: vectors for semantic search in the store (langgraph.json store.index). Append-only: never edit, add a new file.

-- One row per indexed text of an item: `field` is the JSON path it came from
-- ("$", "a.b", "tags[0]", ...; a wildcard path gives one row per match).
-- Vectors are stored unit-length as float8[] (no pgvector needed), so cosine
-- similarity is a dot product. Rows go with their item (ON DELETE CASCADE),
-- and a PUT replaces them.
CREATE TABLE store_vector (
  prefix     text NOT NULL,
  key        text NOT NULL,
  field      text NOT NULL,
  embedding  float8[] NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (prefix, key, field),
  FOREIGN KEY (prefix, key) REFERENCES store_item (prefix, key) ON DELETE CASCADE
);
