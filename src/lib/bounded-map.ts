/**
 * Sets `key` as the most recent entry of `map` and drops the oldest entries past `max`:
 * a Map used this way (set on every use) is a small LRU cache.
 */
export function boundedSet<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) for (const k of map.keys()) {
    map.delete(k);
    if (map.size <= max) break;
  }
}
