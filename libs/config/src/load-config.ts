import { z } from 'zod';

/** Raised once, at start-up, listing every bad variable (not just the first). */
export class ConfigError extends Error {
  readonly issues: readonly string[];

  constructor(app: string, issues: readonly string[]) {
    super(`Invalid configuration for ${app}:\n${issues.map((i) => `  - ${i}`).join('\n')}`);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/**
 * Parses an environment once (in main.ts, before Nest starts) and returns the typed config.
 * Empty strings count as unset, so `FOO=` falls back to the default like a missing variable.
 */
export function loadConfig<S extends z.ZodType>(app: string, schema: S, env: Record<string, string | undefined> = process.env): z.infer<S> {
  const cleaned: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && value !== '') cleaned[key] = value;
  }
  const result = schema.safeParse(cleaned);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => {
    const name = issue.path.join('.') || '(root)';
    return `${name}: ${issue.message}`;
  });
  throw new ConfigError(app, issues);
}
