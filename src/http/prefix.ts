/** MOUNT_PREFIX as a base path: "/api/" → "/api"; "" and "/" → "" (no prefix). */
export function normalizePrefix(p: string): string {
  const trimmed = p.trim().replace(/\/+$/, "");
  if (!trimmed) return "";
  return trimmed.startsWith("/") ? trimmed : `/${trimmed}`;
}
