/**
 * Removes secret values from text bound for logs or status messages.
 * Short values (under 4 characters) are left alone: replacing "1" or "ok"
 * everywhere would garble messages without protecting anything.
 */
export function createRedactor(secrets: Iterable<string>): (text: string) => string {
  const values = [...new Set([...secrets].filter((s) => s.length >= 4))].sort((a, b) => b.length - a.length);
  if (values.length === 0) return (text) => text;
  const pattern = new RegExp(values.map(escapeRegExp).join("|"), "g");
  return (text) => text.replace(pattern, "***");
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The secret values of a deployment's env: the listed secret names, plus anything that looks like a credential. */
export function secretValues(env: Record<string, string>, secretNames: readonly string[]): string[] {
  const names = new Set(secretNames);
  return Object.entries(env)
    .filter(([k]) => names.has(k) || /KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|_URI|_URL|DSN/i.test(k))
    .flatMap(([, v]) => [v, ...uriPasswords(v)]);
}

/** A URI's password alone also counts (it may be logged without the rest). */
function uriPasswords(value: string): string[] {
  try {
    const u = new URL(value);
    return u.password ? [decodeURIComponent(u.password), u.password] : [];
  } catch {
    return [];
  }
}
